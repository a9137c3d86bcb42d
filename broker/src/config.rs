//! What a broker node is opened with: addresses, data directory, storage defaults, protocol
//! limits and group settings. The binary fills it from flags, the embedded broker from
//! [`NodeConfig::local`]; [`NodeConfig::validate`] is the one place the values are checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::acl::Acl;
use crate::auth::SaslConfig;
use crate::group::CoordinatorConfig;
use crate::listeners::{ListenerConfig, SecurityProtocol};
use crate::log::LogConfig;
use crate::tls::TlsFiles;
use crate::topics::{TopicLimits, MAX_PARTITIONS};

/// Node id this single-node broker announces (Metadata, FindCoordinator).
pub const NODE_ID: i32 = 1;
/// Cluster id announced in Metadata.
pub const CLUSTER_ID: &str = "seckill-mq-cluster-001";
/// Kafka's `fetch.max.bytes` default: 55 MiB per Fetch answer.
pub const DEFAULT_FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
/// Kafka's `replica.fetch.response.max.bytes` default: 10 MiB.
pub const DEFAULT_FETCH_PARTITION_MAX_BYTES: usize = 10 * 1024 * 1024;
/// A Fetch answer is one frame, whose size is an i32; keep well below it.
pub const MAX_FETCH_BYTES: usize = 1 << 30;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Directory of topics, committed offsets and producer ids.
    pub data_dir: PathBuf,
    /// Where Kafka clients connect, each listener with its own advertised address and security
    /// protocol (`listeners`). The first one is the node's [`Node::addr`](crate::Node::addr).
    pub listeners: Vec<ListenerConfig>,
    /// Address of the admin HTTP port: `/healthz`, `/metrics`, `/groups`.
    pub admin_listen: SocketAddr,
    /// Log settings topics start from (a CreateTopics request may override them per topic).
    pub log: LogConfig,
    /// Create unknown topics asked for in Metadata (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics with -1.
    pub default_partitions: i32,
    /// Largest request frame accepted; a larger announced size closes the connection unread.
    pub max_frame_bytes: usize,
    /// Concurrent client connections; more wait in the accept queue.
    pub max_connections: usize,
    /// Concurrent connections from one IP address; more are closed at once (so one client
    /// opening sockets in a loop cannot take every slot of `max_connections`).
    pub max_connections_per_address: usize,
    /// Connections from one IP address that have not authenticated yet, on SASL listeners;
    /// more are closed at once. With `failed_authentication_delay` it bounds how fast one
    /// address can guess passwords: at most this many guesses per delay.
    pub max_unauthenticated_connections_per_address: usize,
    /// How long a failed login waits before its answer (Kafka's
    /// `connection.failed.authentication.delay.ms`): a guesser's connection is held, and with
    /// the cap above one address gets few guesses a second.
    pub failed_authentication_delay: Duration,
    /// A connection with no request for this long is closed (Kafka's
    /// `connections.max.idle.ms`, 10 minutes): clients reconnect when they need to, and a
    /// forgotten or half-open socket does not hold a slot forever.
    pub idle_timeout: Duration,
    /// Caps on topics and partitions that clients may create.
    pub topic_limits: TopicLimits,
    /// Most record bytes in one Fetch answer, whatever the client asks for (Kafka's
    /// `fetch.max.bytes`, 55 MiB). The first batch is always whole (KIP-74), so an answer can
    /// exceed it by at most one batch (`max.message.bytes`).
    pub fetch_max_bytes: usize,
    /// Most record bytes for one partition in one Fetch answer (like Kafka's
    /// `replica.fetch.response.max.bytes`, 10 MiB), whatever the client asks for.
    pub fetch_partition_max_bytes: usize,
    pub groups: CoordinatorConfig,
    /// How often retention runs over every partition.
    pub retention_check: Duration,
    /// SASL authentication (users, mechanisms), used on the `SASL_PLAINTEXT` and `SASL_SSL`
    /// listeners; there must be one if such a listener is configured, and such a listener if it
    /// is set. Clients of the other listeners are served unauthenticated and may use the admin
    /// APIs: those listeners belong on a trusted network.
    pub sasl: Option<Arc<SaslConfig>>,
    /// Certificate, key and client CA of the `SSL` and `SASL_SSL` listeners; as with `sasl`,
    /// set exactly when such a listener is configured.
    pub tls: Option<TlsFiles>,
    /// Who may do what, once SASL users are configured (`crate::acl`).
    pub authorization: AuthorizationConfig,
}

/// The authorizer's settings (Kafka's `super.users` and `allow.everyone.if.no.acl.found`, and
/// ACLs to have from the start). Used only when SASL users are configured: without them every
/// client is trusted.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationConfig {
    /// Principals (`User:alice`) that may do everything, besides every user of role admin.
    pub super_users: Vec<String>,
    /// A resource without any ACL is open to everyone (Kafka's default: refused).
    pub allow_everyone_if_no_acl_found: bool,
    /// Added to the stored ACLs at start when missing (`--acl`).
    pub acls: Vec<Acl>,
}

#[derive(Debug, Error)]
#[error("invalid broker configuration: {0}")]
pub struct InvalidNodeConfig(pub String);

impl NodeConfig {
    /// A node on loopback with free ports: what tests, the perf tools and the demo run.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listeners: vec![ListenerConfig {
                name: SecurityProtocol::Plaintext.name().into(),
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                advertised: None,
                protocol: SecurityProtocol::Plaintext,
            }],
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: LogConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 1000,
            max_unauthenticated_connections_per_address: 50,
            failed_authentication_delay: Duration::from_millis(1000),
            idle_timeout: Duration::from_secs(600),
            topic_limits: TopicLimits::default(),
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_partition_max_bytes: DEFAULT_FETCH_PARTITION_MAX_BYTES,
            groups: CoordinatorConfig::default(),
            retention_check: Duration::from_secs(60),
            sasl: None,
            tls: None,
            authorization: AuthorizationConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidNodeConfig> {
        let bad = |m: String| Err(InvalidNodeConfig(m));
        if let Err(e) = self.log.validate() {
            return bad(format!("log settings: {e}"));
        }
        if !(1..=MAX_PARTITIONS).contains(&self.default_partitions) {
            return bad(format!(
                "default partitions must be within 1..={MAX_PARTITIONS}, not {}",
                self.default_partitions
            ));
        }
        if self.max_frame_bytes < 1024 {
            return bad("max frame bytes must be >= 1024".into());
        }
        if self.max_connections == 0 {
            return bad("max connections must be >= 1".into());
        }
        if self.max_connections_per_address == 0 {
            return bad("max connections per address must be >= 1".into());
        }
        if self.max_unauthenticated_connections_per_address == 0 {
            return bad("max unauthenticated connections per address must be >= 1".into());
        }
        if self.idle_timeout < Duration::from_secs(1) {
            return bad("the idle connection timeout must be >= 1 s".into());
        }
        // Only logins are delayed: without SASL users the delay never applies.
        if self.sasl.is_some() && self.failed_authentication_delay >= self.idle_timeout {
            return bad("the failed authentication delay must be below the idle timeout".into());
        }
        if self.topic_limits.max_topics == 0 || self.topic_limits.max_partitions == 0 {
            return bad("the topic and partition limits must be >= 1".into());
        }
        if (self.default_partitions as usize) > self.topic_limits.max_partitions {
            return bad(format!(
                "default partitions ({}) exceed the partition limit ({})",
                self.default_partitions, self.topic_limits.max_partitions
            ));
        }
        if !(1024..=MAX_FETCH_BYTES).contains(&self.fetch_max_bytes) {
            return bad(format!(
                "fetch max bytes must be within 1024..={MAX_FETCH_BYTES}, not {}",
                self.fetch_max_bytes
            ));
        }
        if !(1024..=self.fetch_max_bytes).contains(&self.fetch_partition_max_bytes) {
            return bad(format!(
                "fetch partition max bytes must be within 1024..=fetch max bytes ({}), not {}",
                self.fetch_max_bytes, self.fetch_partition_max_bytes
            ));
        }
        if self.retention_check.is_zero() {
            return bad("the retention check interval must be >= 1 ms".into());
        }
        if self.listeners.is_empty() {
            return bad("no listener configured".into());
        }
        let sasl_listener = self.listeners.iter().find(|l| l.protocol.sasl());
        match (sasl_listener, &self.sasl) {
            (Some(l), None) => {
                return bad(format!(
                    "listener {} uses {} but no SASL users are configured",
                    l.name, l.protocol
                ))
            }
            (None, Some(_)) => {
                return bad(
                    "SASL users are configured but no listener uses SASL_PLAINTEXT or SASL_SSL"
                        .into(),
                )
            }
            _ => {}
        }
        let tls_listener = self.listeners.iter().find(|l| l.protocol.tls());
        match (tls_listener, &self.tls) {
            (Some(l), None) => {
                return bad(format!(
                    "listener {} uses {} but no certificate and key are configured",
                    l.name, l.protocol
                ))
            }
            (None, Some(_)) => {
                return bad(
                    "a TLS certificate is configured but no listener uses SSL or SASL_SSL".into(),
                )
            }
            _ => {}
        }
        let a = &self.authorization;
        if self.sasl.is_none() && (!a.super_users.is_empty() || !a.acls.is_empty()) {
            return bad("super users or ACLs are configured but no SASL users: without users no authorizer runs and every client may do everything".into());
        }
        for u in &self.authorization.super_users {
            if !u.starts_with("User:") || u.len() == "User:".len() {
                return bad(format!("super user {u:?} is not User:NAME"));
            }
        }
        if let Some(sasl) = &self.sasl {
            if sasl.users.is_empty() {
                return bad("SASL is on but no users are configured".into());
            }
            if sasl.mechanisms.is_empty() {
                return bad("SASL is on but no mechanism is enabled".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_setting() {
        let ok = NodeConfig::local("/tmp/x");
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.default_partitions = 0;
        assert!(c.validate().unwrap_err().0.contains("default partitions"));
        let refused = |f: &dyn Fn(&mut NodeConfig), says: &str| {
            let mut c = ok.clone();
            f(&mut c);
            let e = c.validate().unwrap_err().0;
            assert!(e.contains(says), "{e}");
        };
        refused(
            &|c| c.max_connections_per_address = 0,
            "max connections per address",
        );
        refused(
            &|c| c.idle_timeout = Duration::from_millis(10),
            "idle connection timeout",
        );
        refused(
            &|c| c.topic_limits.max_topics = 0,
            "topic and partition limits",
        );
        refused(
            &|c| c.max_unauthenticated_connections_per_address = 0,
            "max unauthenticated connections",
        );
        refused(
            &|c| {
                c.failed_authentication_delay = Duration::from_secs(600);
                c.listeners[0].protocol = SecurityProtocol::SaslPlaintext;
                let mut users = crate::auth::Users::empty();
                users.add_entries(["a:user:pw"], "test").unwrap();
                c.sasl = Some(Arc::new(SaslConfig {
                    users,
                    mechanisms: vec![crate::auth::Mechanism::Plain],
                }));
            },
            "failed authentication delay",
        );
        // Without SASL users the delay never applies: a 1 s idle timeout is fine.
        let mut c = ok.clone();
        c.idle_timeout = Duration::from_secs(1);
        assert!(c.validate().is_ok());
        refused(
            &|c| c.authorization.super_users = vec!["alice".into()],
            "no SASL users",
        );
        refused(
            &|c| c.topic_limits.max_partitions = 0,
            "topic and partition limits",
        );
        refused(
            &|c| {
                c.default_partitions = 8;
                c.topic_limits.max_partitions = 4;
            },
            "exceed the partition limit",
        );
        refused(&|c| c.listeners.clear(), "no listener");
        refused(
            &|c| c.listeners[0].protocol = SecurityProtocol::SaslSsl,
            "no SASL users",
        );
        refused(
            &|c| c.listeners[0].protocol = SecurityProtocol::Ssl,
            "no certificate and key",
        );
        refused(
            &|c| {
                c.tls = Some(TlsFiles {
                    certificate: "c.pem".into(),
                    key: "k.pem".into(),
                    client_ca: None,
                    client_auth: crate::tls::ClientAuth::None,
                })
            },
            "no listener uses SSL",
        );
    }
}
