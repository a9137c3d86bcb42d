//! The broker process: shared state (config, topics) and the TCP server that serves the Kafka
//! protocol on it.
//!
//! - [`Broker`]: everything a request handler may touch, behind one `Arc`.
//! - `listener`: accept loop, connection limit, graceful shutdown.
//! - `connection`: one client: frames in, answers out, strictly in order.
//! - [`embedded`]: the same server inside another process (perf tools, service tests, demo).

mod connection;
pub mod embedded;
mod listener;

pub use embedded::EmbeddedBroker;
pub use listener::serve;

use std::sync::Arc;

use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIdAllocator;
use crate::topics::TopicRegistry;

/// Identity and protocol settings of this broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// Host and port clients are told to connect to (Metadata).
    pub advertised_host: String,
    pub advertised_port: u16,
    pub cluster_id: String,
    /// Create unknown topics asked for in Metadata (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    /// Largest request frame accepted; a larger announced size closes the connection unread.
    pub max_frame_bytes: usize,
    pub max_connections: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            cluster_id: "seckill-mq-cluster-001".into(),
            auto_create_topics: true,
            default_partitions: 1,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
        }
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub topics: TopicRegistry,
    pub producer_ids: ProducerIdAllocator,
    pub metrics: Metrics,
    pub groups: Arc<GroupCoordinator>,
}
