//! How the services secure their Kafka connections: Kafka's four security protocols
//! (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), SASL PLAIN or SCRAM, and TLS with a CA file and an
//! optional client certificate. Read from the environment (or the same-named flags) by every
//! service binary, checked once at start, then applied to every client
//! [`client_config`](super::client_config) builds.
//!
//! librdkafka is built with OpenSSL (the `rdkafka` crate's `ssl` feature): that is what gives it
//! TLS and the SCRAM mechanisms. It checks the broker's certificate against the CA and its name
//! against the host it connects to (`ssl.endpoint.identification.algorithm=https`, librdkafka's
//! default), so a certificate for another host is refused.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rdkafka::config::ClientConfig;
use thiserror::Error;

/// The `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*` and `KAFKA_SSL_*` variables, flattened into
/// every service binary's arguments. Default: plaintext, no SASL.
#[derive(Clone, Default, clap::Args)]
pub struct KafkaSecurity {
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", default_value = "PLAINTEXT")]
    pub kafka_security_protocol: String,
    /// PLAIN (the default with SASL), SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, env = "KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// PEM file of the CAs the broker's certificate must chain to (SSL, SASL_SSL); default:
    /// the system's CAs.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// PEM client certificate, for a broker that asks for one (mutual TLS).
    #[arg(long, env = "KAFKA_SSL_CERTIFICATE_LOCATION")]
    pub kafka_ssl_certificate_location: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "KAFKA_SSL_KEY_LOCATION")]
    pub kafka_ssl_key_location: Option<PathBuf>,
}

impl std::fmt::Debug for KafkaSecurity {
    // The password stays out of logs and `{:?}` of the binaries' arguments.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.kafka_security_protocol)
            .field("mechanism", &self.kafka_sasl_mechanism)
            .field("username", &self.kafka_sasl_username)
            .field(
                "password",
                &self.kafka_sasl_password.as_ref().map(|_| "<set>"),
            )
            .field("ssl_ca", &self.kafka_ssl_ca_location)
            .field("ssl_certificate", &self.kafka_ssl_certificate_location)
            .field("ssl_key", &self.kafka_ssl_key_location)
            .finish()
    }
}

/// A Kafka security setting that cannot work, named.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KafkaSecurityError {
    #[error(
        "KAFKA_SECURITY_PROTOCOL={0:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
    )]
    Protocol(String),
    #[error("KAFKA_SECURITY_PROTOCOL={protocol} needs both KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (missing: {missing})")]
    HalfSet {
        protocol: &'static str,
        missing: &'static str,
    },
    #[error("KAFKA_SASL_{setting} is set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SASL_PLAINTEXT or SASL_SSL, or unset it")]
    SaslWithoutProtocol {
        setting: &'static str,
        protocol: &'static str,
    },
    #[error("KAFKA_SSL_{setting} is set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SSL or SASL_SSL, or unset it")]
    SslWithoutProtocol {
        setting: &'static str,
        protocol: &'static str,
    },
    #[error(
        "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (missing: {0})"
    )]
    HalfClientCertificate(&'static str),
    #[error("KAFKA_SSL_{setting}={path}: {reason}")]
    Unreadable {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("KAFKA_SASL_MECHANISM={0:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")]
    Mechanism(String),
    #[error("the Kafka security settings were already installed")]
    AlreadyInstalled,
}

/// Validated settings.
#[derive(Clone, Debug)]
struct Security {
    protocol: &'static str,
    sasl: Option<SaslCredentials>,
    ssl: Option<SslFiles>,
}

#[derive(Clone)]
struct SaslCredentials {
    mechanism: &'static str,
    username: String,
    password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default)]
struct SslFiles {
    ca: Option<PathBuf>,
    /// Certificate and key, together or not at all.
    client: Option<(PathBuf, PathBuf)>,
}

/// The settings every client of this process uses, set once by [`KafkaSecurity::install`].
/// Process-wide rather than threaded through every constructor: the bootstrap string already
/// reaches a dozen places (producers, consumers, admin clients, the dashboard's reader), and the
/// security settings are the same for all of them.
static SECURITY: OnceLock<Security> = OnceLock::new();

const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl KafkaSecurity {
    /// Checks the combination: SASL settings only with a SASL protocol, and then both username
    /// and password; TLS files only with a TLS protocol, readable, certificate and key together.
    fn validated(&self) -> Result<Security, KafkaSecurityError> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let given = self.kafka_security_protocol.trim().to_ascii_uppercase();
        let protocol = match given.as_str() {
            "" => "PLAINTEXT",
            p => PROTOCOLS
                .into_iter()
                .find(|known| *known == p)
                .ok_or_else(|| {
                    KafkaSecurityError::Protocol(self.kafka_security_protocol.clone())
                })?,
        };
        let (sasl_on, tls_on) = (protocol.starts_with("SASL_"), protocol.ends_with("SSL"));

        let sasl = if sasl_on {
            let mechanism = match self.kafka_sasl_mechanism.as_deref().map(str::trim) {
                None | Some("") => "PLAIN",
                Some(m) => MECHANISMS
                    .into_iter()
                    .find(|known| known.eq_ignore_ascii_case(m))
                    .ok_or_else(|| KafkaSecurityError::Mechanism(m.to_string()))?,
            };
            let missing = match (
                set(&self.kafka_sasl_username),
                set(&self.kafka_sasl_password),
            ) {
                (true, true) => None,
                (false, true) => Some("KAFKA_SASL_USERNAME"),
                (true, false) => Some("KAFKA_SASL_PASSWORD"),
                (false, false) => Some("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
            };
            if let Some(missing) = missing {
                return Err(KafkaSecurityError::HalfSet { protocol, missing });
            }
            Some(SaslCredentials {
                mechanism,
                username: self.kafka_sasl_username.clone().unwrap_or_default(),
                password: self.kafka_sasl_password.clone().unwrap_or_default(),
            })
        } else {
            for (setting, v) in [
                ("MECHANISM", &self.kafka_sasl_mechanism),
                ("USERNAME", &self.kafka_sasl_username),
                ("PASSWORD", &self.kafka_sasl_password),
            ] {
                if set(v) {
                    return Err(KafkaSecurityError::SaslWithoutProtocol { setting, protocol });
                }
            }
            None
        };

        let files = [
            ("CA_LOCATION", &self.kafka_ssl_ca_location),
            ("CERTIFICATE_LOCATION", &self.kafka_ssl_certificate_location),
            ("KEY_LOCATION", &self.kafka_ssl_key_location),
        ];
        let ssl = if tls_on {
            for (setting, path) in files {
                if let Some(path) = path {
                    readable(setting, path)?;
                }
            }
            let client = match (
                &self.kafka_ssl_certificate_location,
                &self.kafka_ssl_key_location,
            ) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(KafkaSecurityError::HalfClientCertificate(
                        "KAFKA_SSL_KEY_LOCATION",
                    ))
                }
                (None, Some(_)) => {
                    return Err(KafkaSecurityError::HalfClientCertificate(
                        "KAFKA_SSL_CERTIFICATE_LOCATION",
                    ))
                }
            };
            Some(SslFiles {
                ca: self.kafka_ssl_ca_location.clone(),
                client,
            })
        } else {
            if let Some((setting, _)) = files.iter().find(|(_, p)| p.is_some()) {
                return Err(KafkaSecurityError::SslWithoutProtocol { setting, protocol });
            }
            None
        };
        Ok(Security {
            protocol,
            sasl,
            ssl,
        })
    }

    /// Validates and installs the settings for every client
    /// [`client_config`](super::client_config) builds from now on. Call once, at start, before
    /// any client is made.
    pub fn install(&self) -> Result<(), KafkaSecurityError> {
        let security = self.validated()?;
        if security.protocol != "PLAINTEXT" {
            tracing::info!(
                protocol = security.protocol,
                mechanism = security.sasl.as_ref().map(|s| s.mechanism),
                username = security.sasl.as_ref().map(|s| s.username.as_str()),
                "Kafka clients use {}",
                security.protocol
            );
        }
        SECURITY
            .set(security)
            .map_err(|_| KafkaSecurityError::AlreadyInstalled)
    }
}

/// A file librdkafka will read later: found unreadable now, at start, with the setting named.
fn readable(setting: &'static str, path: &Path) -> Result<(), KafkaSecurityError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| KafkaSecurityError::Unreadable {
            setting,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Adds the installed settings (if any) to a client's configuration.
pub(super) fn apply(c: &mut ClientConfig) {
    let Some(s) = SECURITY.get() else { return };
    set(c, s);
}

fn set(c: &mut ClientConfig, s: &Security) {
    if s.protocol == "PLAINTEXT" {
        return;
    }
    c.set("security.protocol", s.protocol);
    if let Some(sasl) = &s.sasl {
        c.set("sasl.mechanism", sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", &sasl.password);
    }
    if let Some(ssl) = &s.ssl {
        if let Some(ca) = &ssl.ca {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some((cert, key)) = &ssl.client {
            c.set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(p: &str, m: Option<&str>, u: Option<&str>, pw: Option<&str>) -> KafkaSecurity {
        KafkaSecurity {
            kafka_security_protocol: p.into(),
            kafka_sasl_mechanism: m.map(Into::into),
            kafka_sasl_username: u.map(Into::into),
            kafka_sasl_password: pw.map(Into::into),
            ..KafkaSecurity::default()
        }
    }

    #[test]
    fn security_settings_are_all_or_nothing() {
        let plain = sec("PLAINTEXT", None, None, None).validated().unwrap();
        assert!(plain.sasl.is_none() && plain.ssl.is_none());
        let ok = sec("SASL_PLAINTEXT", None, Some("svc"), Some("pw"))
            .validated()
            .unwrap()
            .sasl
            .unwrap();
        assert_eq!((ok.mechanism, ok.username.as_str()), ("PLAIN", "svc"));
        assert!(!format!("{ok:?}").contains("pw"));
        assert_eq!(
            sec("SASL_PLAINTEXT", Some("PLAIN"), Some("svc"), None)
                .validated()
                .unwrap_err(),
            KafkaSecurityError::HalfSet {
                protocol: "SASL_PLAINTEXT",
                missing: "KAFKA_SASL_PASSWORD"
            }
        );
        assert_eq!(
            sec("SASL_SSL", None, None, Some("pw"))
                .validated()
                .unwrap_err(),
            KafkaSecurityError::HalfSet {
                protocol: "SASL_SSL",
                missing: "KAFKA_SASL_USERNAME"
            }
        );
        assert_eq!(
            sec("PLAINTEXT", None, Some("svc"), None)
                .validated()
                .unwrap_err(),
            KafkaSecurityError::SaslWithoutProtocol {
                setting: "USERNAME",
                protocol: "PLAINTEXT"
            }
        );
        assert_eq!(
            sec("SSL", Some("PLAIN"), None, None)
                .validated()
                .unwrap_err(),
            KafkaSecurityError::SaslWithoutProtocol {
                setting: "MECHANISM",
                protocol: "SSL"
            }
        );
        let scram = sec("sasl_ssl", Some("scram-sha-512"), Some("svc"), Some("pw"))
            .validated()
            .unwrap();
        assert_eq!(scram.protocol, "SASL_SSL");
        assert_eq!(scram.sasl.unwrap().mechanism, "SCRAM-SHA-512");
        assert!(matches!(
            sec("SASL_SSL", Some("GSSAPI"), Some("svc"), Some("pw")).validated(),
            Err(KafkaSecurityError::Mechanism(_))
        ));
        assert!(matches!(
            sec("TLS", None, None, None).validated(),
            Err(KafkaSecurityError::Protocol(_))
        ));
    }

    #[test]
    fn tls_files_must_be_readable_paired_and_used() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let mut s = sec("SSL", None, None, None);
        s.kafka_ssl_ca_location = Some(ca.clone());
        let ok = s.validated().unwrap();
        let mut c = ClientConfig::new();
        set(&mut c, &ok);
        assert_eq!(c.get("security.protocol"), Some("SSL"));
        assert_eq!(c.get("ssl.ca.location"), Some(ca.to_str().unwrap()));
        assert_eq!(c.get("sasl.mechanism"), None);

        s.kafka_ssl_certificate_location = Some(ca.clone());
        assert_eq!(
            s.validated().unwrap_err(),
            KafkaSecurityError::HalfClientCertificate("KAFKA_SSL_KEY_LOCATION")
        );
        s.kafka_ssl_key_location = Some(dir.path().join("missing.pem"));
        assert!(matches!(
            s.validated().unwrap_err(),
            KafkaSecurityError::Unreadable {
                setting: "KEY_LOCATION",
                ..
            }
        ));
        let mut p = sec("SASL_PLAINTEXT", None, Some("u"), Some("p"));
        p.kafka_ssl_ca_location = Some(ca);
        assert_eq!(
            p.validated().unwrap_err(),
            KafkaSecurityError::SslWithoutProtocol {
                setting: "CA_LOCATION",
                protocol: "SASL_PLAINTEXT"
            }
        );
    }
}
