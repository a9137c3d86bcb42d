//! Named listeners, configured the way Kafka users configure them: `listeners`
//! (`INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094`), `advertised.listeners` (the address
//! clients are told, per listener) and `listener.security.protocol.map`
//! (`INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL`). One broker can so serve containers on an internal
//! network and clients on the host or the internet at other addresses, each with its own
//! security.
//!
//! Invariants of a parsed list (checked by [`parse`]): names are unique and upper-case (Kafka
//! normalises them so), ports other than 0 are unique, every listener has a security protocol,
//! and every advertised name is a listener. A connection keeps the listener it came in on: its
//! Metadata, FindCoordinator and DescribeCluster answers advertise that listener's address, and
//! its protocol decides whether TLS and SASL run on it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use crate::config::InvalidNodeConfig;

/// Kafka's four security protocols: TLS or not, SASL or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The connection is TLS from its first byte.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// The client must authenticate with SASL before any request but ApiVersions.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The protocol a single listener (`--listen`) gets from what is configured.
    pub fn from_parts(tls: bool, sasl: bool) -> Self {
        match (tls, sasl) {
            (false, false) => SecurityProtocol::Plaintext,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        }
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = InvalidNodeConfig;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name() == upper)
            .ok_or_else(|| {
                InvalidNodeConfig(format!(
                    "unknown security protocol {s:?} (known: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
                ))
            })
    }
}

/// One listener: where it binds, what it advertises, how it is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Upper-case name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Where to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// `host:port` clients of this listener are told in Metadata; `None`: the bound address.
    pub advertised: Option<(String, u16)>,
    pub protocol: SecurityProtocol,
}

/// What a connection knows of the listener it came in on: the address its clients are told
/// (Metadata, FindCoordinator, DescribeCluster) and whether SASL runs on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub protocol: SecurityProtocol,
}

impl ListenerConfig {
    /// The endpoint of this listener once bound to `local`: its advertised address, or the
    /// bound one.
    pub fn endpoint(&self, local: SocketAddr) -> Endpoint {
        let (host, port) = self
            .advertised
            .clone()
            .unwrap_or_else(|| (local.ip().to_string(), local.port()));
        Endpoint {
            name: self.name.clone(),
            host,
            port,
            protocol: self.protocol,
        }
    }
}

/// The one listener of `--listen ADDR [--advertised HOST:PORT]`, named after its protocol.
pub fn single(
    bind: SocketAddr,
    advertised: Option<&str>,
    protocol: SecurityProtocol,
) -> Result<Vec<ListenerConfig>, InvalidNodeConfig> {
    Ok(vec![ListenerConfig {
        name: protocol.name().to_string(),
        bind,
        advertised: advertised.map(parse_advertised_host_port).transpose()?,
        protocol,
    }])
}

/// Parses Kafka's three listener settings. `map` `None` is Kafka's default map, each protocol
/// name standing for itself (`PLAINTEXT:PLAINTEXT,SSL:SSL,...`); a given map replaces it.
pub fn parse(
    listeners: &str,
    advertised: Option<&str>,
    map: Option<&str>,
) -> Result<Vec<ListenerConfig>, InvalidNodeConfig> {
    let bad = |m: String| Err(InvalidNodeConfig(m));
    let protocols: Vec<(String, SecurityProtocol)> = match map {
        None => SecurityProtocol::ALL
            .into_iter()
            .map(|p| (p.name().to_string(), p))
            .collect(),
        Some(map) => entries(map)
            .map(|e| {
                let (name, proto) = e.split_once(':').ok_or_else(|| {
                    InvalidNodeConfig(format!(
                        "listener security protocol map entry {e:?} is not NAME:PROTOCOL"
                    ))
                })?;
                Ok((listener_name(name)?, proto.parse()?))
            })
            .collect::<Result<_, InvalidNodeConfig>>()?,
    };
    let mut out: Vec<ListenerConfig> = Vec::new();
    for e in entries(listeners) {
        let (name, host, port) = split_listener(e)?;
        let Some(&(_, protocol)) = protocols.iter().find(|(n, _)| *n == name) else {
            return bad(format!(
                "listener {name} has no security protocol: add {name}:PROTOCOL to the listener security protocol map"
            ));
        };
        if out.iter().any(|l| l.name == name) {
            return bad(format!("listener {name} is named twice"));
        }
        if port != 0 && out.iter().any(|l| l.bind.port() == port) {
            return bad(format!(
                "listener {name} uses port {port}, as another listener does: each needs its own"
            ));
        }
        out.push(ListenerConfig {
            name,
            bind: resolve_bind(&host, port, e)?,
            advertised: None,
            protocol,
        });
    }
    if out.is_empty() {
        return bad("no listener configured".into());
    }
    for e in advertised.into_iter().flat_map(entries) {
        let (name, host, port) = split_listener(e)?;
        let Some(l) = out.iter_mut().find(|l| l.name == name) else {
            return bad(format!(
                "advertised listener {name} is not one of the listeners"
            ));
        };
        if l.advertised.is_some() {
            return bad(format!("advertised listener {name} is named twice"));
        }
        l.advertised = Some(check_advertised(&host, port, e)?);
    }
    Ok(out)
}

/// Comma-separated entries, blanks dropped.
fn entries(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty())
}

fn listener_name(name: &str) -> Result<String, InvalidNodeConfig> {
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(InvalidNodeConfig(format!(
            "listener name {name:?} must be letters, digits, '_' or '-'"
        )));
    }
    Ok(name.to_ascii_uppercase())
}

/// `NAME://host:port` into its parts; the host may be empty (every interface), a name, an IPv4
/// address or a bracketed IPv6 address.
fn split_listener(e: &str) -> Result<(String, String, u16), InvalidNodeConfig> {
    let (name, rest) = e
        .split_once("://")
        .ok_or_else(|| InvalidNodeConfig(format!("listener {e:?} is not NAME://HOST:PORT")))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| InvalidNodeConfig(format!("listener {e:?} has no port")))?;
    let port = port
        .parse()
        .map_err(|_| InvalidNodeConfig(format!("listener {e:?}: {port:?} is not a port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((listener_name(name)?, host.to_string(), port))
}

fn resolve_bind(host: &str, port: u16, e: &str) -> Result<SocketAddr, InvalidNodeConfig> {
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| InvalidNodeConfig(format!("listener {e:?}: cannot resolve {host:?}")))
}

fn check_advertised(host: &str, port: u16, e: &str) -> Result<(String, u16), InvalidNodeConfig> {
    if host.is_empty() || port == 0 {
        return Err(InvalidNodeConfig(format!(
            "advertised listener {e:?} needs a host and a port other than 0"
        )));
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Err(InvalidNodeConfig(format!(
            "advertised listener {e:?} uses {host}, which no client can connect to"
        )));
    }
    Ok((host.to_string(), port))
}

/// `host:port` of `--advertised` (the host may be a name, an IPv4 address or a bracketed IPv6
/// address).
pub fn parse_advertised_host_port(s: &str) -> Result<(String, u16), InvalidNodeConfig> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| InvalidNodeConfig(format!("advertised address {s:?} is not host:port")))?;
    let port = port
        .parse()
        .map_err(|_| InvalidNodeConfig(format!("advertised port in {s:?} is not a port")))?;
    if host.is_empty() {
        return Err(InvalidNodeConfig(format!(
            "advertised address {s:?} has no host"
        )));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Vec<ListenerConfig>, InvalidNodeConfig>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn kafka_style_listeners_with_a_map_and_advertised_addresses() {
        let l = parse(
            "internal://0.0.0.0:9092, EXTERNAL://127.0.0.1:9094",
            Some("INTERNAL://broker:9092,EXTERNAL://localhost:9094"),
            Some("INTERNAL:PLAINTEXT,EXTERNAL:sasl_ssl"),
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "INTERNAL");
        assert_eq!(l[0].bind, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(l[0].advertised, Some(("broker".into(), 9092)));
        assert_eq!(l[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[1].advertised, Some(("localhost".into(), 9094)));
        assert_eq!(l[1].protocol, SecurityProtocol::SaslSsl);
        assert!(l[1].protocol.tls() && l[1].protocol.sasl());
    }

    #[test]
    fn the_default_map_names_each_protocol_after_itself_and_hosts_may_be_empty_or_v6() {
        let l = parse(
            "PLAINTEXT://:9092,SSL://[::1]:0,SASL_SSL://localhost:0",
            None,
            None,
        )
        .unwrap();
        assert_eq!(l[0].bind, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(l[0].advertised, None);
        assert_eq!(l[1].bind, "[::1]:0".parse().unwrap());
        assert_eq!(l[1].protocol, SecurityProtocol::Ssl);
        assert!(l[2].bind.ip().is_loopback());
    }

    #[test]
    fn each_mistake_is_named() {
        let says = |r, what: &str| {
            let e = err(r);
            assert!(e.contains(what), "{e:?} does not say {what:?}");
        };
        says(parse("", None, None), "no listener");
        says(parse("127.0.0.1:9092", None, None), "NAME://HOST:PORT");
        says(
            parse("INTERNAL://:9092", None, None),
            "no security protocol",
        );
        says(parse("PLAINTEXT://:x", None, None), "not a port");
        says(
            parse("PLAINTEXT://:1,plaintext://:2", None, None),
            "named twice",
        );
        says(parse("PLAINTEXT://:1,SSL://:1", None, None), "its own");
        says(
            parse("PLAINTEXT://:1", Some("OTHER://h:1"), None),
            "not one of the listeners",
        );
        says(
            parse("PLAINTEXT://:1", Some("PLAINTEXT://0.0.0.0:1"), None),
            "no client can connect",
        );
        says(
            parse("PLAINTEXT://:1", Some("PLAINTEXT://:1"), None),
            "needs a host",
        );
        says(parse("A://:1", None, Some("A=PLAINTEXT")), "NAME:PROTOCOL");
        says(
            parse("A://:1", None, Some("A:TLS")),
            "unknown security protocol",
        );
        says(parse("A B://:1", None, Some("A B:SSL")), "letters, digits");
    }

    #[test]
    fn a_single_listener_is_named_after_its_protocol() {
        let l = single(
            "127.0.0.1:9092".parse().unwrap(),
            Some("kafka.example:9093"),
            SecurityProtocol::from_parts(true, true),
        )
        .unwrap();
        assert_eq!(l[0].name, "SASL_SSL");
        assert_eq!(l[0].advertised, Some(("kafka.example".into(), 9093)));
        assert!(single(
            "127.0.0.1:1".parse().unwrap(),
            Some("nohost"),
            SecurityProtocol::Plaintext
        )
        .is_err());
    }
}
