//! [`Broker`]: the state every request handler may touch (topics, producer ids, groups,
//! metrics), behind one `Arc`. The protocol handlers, the admin port and the TCP server all use
//! it; none of them owns it. [`Broker::open`] is the one place it is assembled from a data
//! directory, for the node, the embedded broker and the fuzz targets alike.

use std::path::Path;
use std::sync::Arc;

use shared::shutdown::Tasks;
use thiserror::Error;

use crate::acl::{AclStoreError, Authorizer};
use crate::auth::SaslConfig;
use crate::clock::SystemClock;
use crate::config::{NodeConfig, CLUSTER_ID, NODE_ID};
use crate::durable;
use crate::group::offset_store::TopicNow;
use crate::group::{GroupCoordinator, OffsetStore};
use crate::log::{LogError, SyncOnOpen};
use crate::metrics::Metrics;
use crate::producer_ids::{ProducerIdAllocator, ProducerIdError};
use crate::topics::{TopicError, TopicRegistry};

/// Identity and protocol settings of this broker, as handlers need them.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub cluster_id: String,
    /// Create unknown topics asked for in Metadata (Kafka's `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    /// Largest request frame accepted; a larger announced size closes the connection unread.
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub max_unauthenticated_connections_per_address: usize,
    /// How long a failed login waits before its answer.
    pub failed_authentication_delay: std::time::Duration,
    /// A connection without a request for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Caps on a Fetch answer's record bytes, in all and per partition (see `NodeConfig`).
    pub fetch_max_bytes: usize,
    pub fetch_partition_max_bytes: usize,
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
    #[error("ACLs: {0}")]
    Acls(#[from] AclStoreError),
    #[error("clean-shutdown marker {path}: {source}")]
    Marker {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Written in the data directory once a clean shutdown has flushed everything, and removed
/// (durably) by the next start before it serves anything. When a start finds it, the last stop
/// flushed every log, so recovery need not sync what it opens again ([`SyncOnOpen::Repaired`]):
/// on a broker with thousands of sealed segments that saves a sync of each at every restart.
/// Without it (a crash, a kill, a failed final flush) everything is synced ([`SyncOnOpen::All`]).
pub const CLEAN_SHUTDOWN_MARKER: &str = "clean-shutdown";

/// Removes the marker, durably, and says how to open the logs.
fn take_clean_shutdown_marker(dir: &Path) -> Result<SyncOnOpen, OpenError> {
    let path = dir.join(CLEAN_SHUTDOWN_MARKER);
    let err = |source| OpenError::Marker {
        path: path.clone(),
        source,
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {
            durable::sync_dir(dir).map_err(err)?;
            Ok(SyncOnOpen::Repaired)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncOnOpen::All),
        Err(e) => Err(err(e)),
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    data_dir: std::path::PathBuf,
    pub topics: TopicRegistry,
    pub producer_ids: ProducerIdAllocator,
    pub metrics: Metrics,
    pub groups: Arc<GroupCoordinator>,
    /// Users and mechanisms of the SASL listeners; `None`: no listener uses SASL.
    pub sasl: Option<Arc<SaslConfig>>,
    /// The ACLs and super users, when SASL users are configured; `None`: every client may do
    /// everything.
    pub authorizer: Option<Arc<Authorizer>>,
}

impl Broker {
    /// Opens the data directory of `config` (topics, committed offsets, producer ids) and
    /// assembles the state. `tasks` runs the group coordinator's timers, which stop with it.
    pub fn open(config: &NodeConfig, tasks: &Tasks) -> Result<Arc<Broker>, OpenError> {
        let dir: &Path = &config.data_dir;
        let sync = take_clean_shutdown_marker(dir)?;
        if sync == SyncOnOpen::All {
            tracing::info!("no clean-shutdown marker: syncing everything recovery finds");
        }
        let topics =
            TopicRegistry::open_with(dir, config.log.clone(), Arc::new(SystemClock), sync)?
                .with_limits(config.topic_limits);
        let producer_ids = ProducerIdAllocator::open(dir)?;
        let topic_now = |name: &str| match topics.get(name) {
            Some(t) => TopicNow::Exists(t.id),
            None if topics.unavailable_reason(name).is_some() => TopicNow::Unavailable,
            None => TopicNow::Absent,
        };
        let offsets = OffsetStore::open(
            dir,
            config.log.flush,
            Arc::new(SystemClock),
            sync,
            &topic_now,
        )?;
        let groups = GroupCoordinator::new(
            config.groups.clone(),
            offsets,
            crate::group::Membership::open(dir),
            tasks.clone(),
        );
        let authorizer = match &config.sasl {
            None => None,
            Some(sasl) => {
                let a = &config.authorization;
                let super_users = a
                    .super_users
                    .iter()
                    .cloned()
                    .chain(sasl.users.admins().map(|n| format!("User:{n}")))
                    .collect();
                Some(Arc::new(Authorizer::open(
                    dir,
                    super_users,
                    a.allow_everyone_if_no_acl_found,
                    &a.acls,
                )?))
            }
        };
        Ok(Arc::new(Broker {
            config: BrokerConfig {
                node_id: NODE_ID,
                cluster_id: CLUSTER_ID.into(),
                auto_create_topics: config.auto_create_topics,
                default_partitions: config.default_partitions,
                max_frame_bytes: config.max_frame_bytes,
                max_connections: config.max_connections,
                max_connections_per_address: config.max_connections_per_address,
                max_unauthenticated_connections_per_address: config
                    .max_unauthenticated_connections_per_address,
                failed_authentication_delay: config.failed_authentication_delay,
                idle_timeout: config.idle_timeout,
                fetch_max_bytes: config.fetch_max_bytes,
                fetch_partition_max_bytes: config.fetch_partition_max_bytes,
            },
            data_dir: dir.to_path_buf(),
            topics,
            producer_ids,
            metrics: Metrics::new(),
            groups,
            sasl: config.sasl.clone(),
            authorizer,
        }))
    }

    /// The data directory (DescribeLogDirs names it as the one log dir).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Flushes every log and the committed offsets (clean shutdown); logs what fails. Once all
    /// of it succeeded, writes the clean-shutdown marker, so the next start need not sync it all
    /// again. Call it only when nothing writes any more.
    pub fn flush_all(&self) {
        let mut clean = true;
        if let Err(e) = self.topics.flush_all() {
            tracing::error!(error = %e, "final flush failed");
            clean = false;
        }
        if let Err(e) = self.groups.offsets().flush() {
            tracing::error!(error = %e, "final flush of committed offsets failed");
            clean = false;
        }
        if clean {
            let marker = self.data_dir.join(CLEAN_SHUTDOWN_MARKER);
            if let Err(e) = durable::write_atomically(&marker, b"flushed\n") {
                tracing::warn!(error = %e, "cannot write the clean-shutdown marker; the next start syncs everything");
            }
        }
    }
}
