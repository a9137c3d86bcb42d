//! What a broker node is opened with: addresses, data directory, storage defaults, protocol
//! limits and group settings. The binary fills it from flags, the embedded broker from
//! [`NodeConfig::local`]; [`NodeConfig::validate`] is the one place the values are checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::auth::SaslConfig;
use crate::group::CoordinatorConfig;
use crate::log::LogConfig;
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
    /// Address for Kafka clients (port 0: any free port).
    pub listen: SocketAddr,
    /// Address of the admin HTTP port: `/healthz`, `/metrics`, `/groups`.
    pub admin_listen: SocketAddr,
    /// `host:port` clients are told to use in Metadata; `None`: the bound listen address.
    pub advertised: Option<String>,
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
    /// SASL authentication (users, mechanisms); `None` (the default): off, every client is
    /// served unauthenticated and may use the admin APIs.
    pub sasl: Option<Arc<SaslConfig>>,
}

#[derive(Debug, Error)]
#[error("invalid broker configuration: {0}")]
pub struct InvalidNodeConfig(pub String);

impl NodeConfig {
    /// A node on loopback with free ports: what tests, the perf tools and the demo run.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised: None,
            log: LogConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 1000,
            idle_timeout: Duration::from_secs(600),
            topic_limits: TopicLimits::default(),
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_partition_max_bytes: DEFAULT_FETCH_PARTITION_MAX_BYTES,
            groups: CoordinatorConfig::default(),
            retention_check: Duration::from_secs(60),
            sasl: None,
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
        if self.idle_timeout < Duration::from_secs(1) {
            return bad("the idle connection timeout must be >= 1 s".into());
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
        if let Some(a) = &self.advertised {
            parse_host_port(a)?;
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

/// `host:port` (the host may be a name, an IPv4 address or a bracketed IPv6 address).
pub fn parse_host_port(s: &str) -> Result<(String, u16), InvalidNodeConfig> {
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
        let mut c = ok.clone();
        c.advertised = Some("nohostport".into());
        assert!(c.validate().unwrap_err().0.contains("host:port"));
        let mut c = ok;
        c.advertised = Some("kafka.example:9093".into());
        assert!(c.validate().is_ok());
        assert_eq!(
            parse_host_port("kafka.example:9093").unwrap(),
            ("kafka.example".to_string(), 9093)
        );
    }
}
