//! [`Broker`]: the state every request handler may touch (topics, producer ids, groups,
//! metrics), behind one `Arc`. The protocol handlers, the admin port and the TCP server all use
//! it; none of them owns it. [`Broker::open`] is the one place it is assembled from a data
//! directory, for the node, the embedded broker and the fuzz targets alike.

use std::path::Path;
use std::sync::Arc;

use shared::shutdown::Tasks;
use thiserror::Error;

use crate::clock::SystemClock;
use crate::config::{NodeConfig, CLUSTER_ID, NODE_ID};
use crate::group::{GroupCoordinator, OffsetStore};
use crate::log::LogError;
use crate::metrics::Metrics;
use crate::producer_ids::{ProducerIdAllocator, ProducerIdError};
use crate::topics::{TopicError, TopicRegistry};

/// Identity and protocol settings of this broker, as handlers need them.
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

/// Why a data directory could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("topics: {0}")]
    Topics(#[from] TopicError),
    #[error("producer ids: {0}")]
    ProducerIds(#[from] ProducerIdError),
    #[error("committed offsets: {0}")]
    Offsets(#[from] LogError),
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

impl Broker {
    /// Opens the data directory of `config` (topics, committed offsets, producer ids) and
    /// assembles the state. `advertised` is what Metadata announces; `tasks` runs the group
    /// coordinator's timers, which stop with it.
    pub fn open(
        config: &NodeConfig,
        advertised: (String, u16),
        tasks: &Tasks,
    ) -> Result<Arc<Broker>, OpenError> {
        let dir: &Path = &config.data_dir;
        let topics = TopicRegistry::open(dir, config.log.clone(), Arc::new(SystemClock))?;
        let producer_ids = ProducerIdAllocator::open(dir)?;
        let offsets = OffsetStore::open(dir, config.log.flush, Arc::new(SystemClock))?;
        let groups = GroupCoordinator::new(config.groups.clone(), offsets, tasks.clone());
        Ok(Arc::new(Broker {
            config: BrokerConfig {
                node_id: NODE_ID,
                advertised_host: advertised.0,
                advertised_port: advertised.1,
                cluster_id: CLUSTER_ID.into(),
                auto_create_topics: config.auto_create_topics,
                default_partitions: config.default_partitions,
                max_frame_bytes: config.max_frame_bytes,
                max_connections: config.max_connections,
            },
            topics,
            producer_ids,
            metrics: Metrics::new(),
            groups,
        }))
    }

    /// Flushes every log and the committed offsets (clean shutdown); logs what fails.
    pub fn flush_all(&self) {
        if let Err(e) = self.topics.flush_all() {
            tracing::error!(error = %e, "final flush failed");
        }
        if let Err(e) = self.groups.offsets().flush() {
            tracing::error!(error = %e, "final flush of committed offsets failed");
        }
    }
}
