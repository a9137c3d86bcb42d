//! Runs the broker (the same server code as the `broker` binary) inside another process on a
//! free loopback port: the perf tools measure against it, and service tests and the demo use it
//! so they need no separate broker process.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{serve, Broker, BrokerConfig};
use crate::clock::SystemClock;
use crate::group::{CoordinatorConfig, GroupCoordinator, OffsetStore};
use crate::log::LogConfig;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIdAllocator;
use crate::topics::{TopicError, TopicRegistry};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Topics(#[from] TopicError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A broker serving on its own runtime thread until dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    pub addr: String,
    broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    pub fn start(data_dir: &Path, defaults: LogConfig) -> Result<Self, EmbeddedError> {
        Self::start_with(data_dir, defaults, CoordinatorConfig::default())
    }

    pub fn start_with(
        data_dir: &Path,
        defaults: LogConfig,
        groups: CoordinatorConfig,
    ) -> Result<Self, EmbeddedError> {
        let flush = defaults.flush;
        let topics = TopicRegistry::open(data_dir, defaults, Arc::new(SystemClock))?;
        let producer_ids =
            ProducerIdAllocator::open(data_dir).map_err(|e| EmbeddedError::Other(e.to_string()))?;
        let offsets = OffsetStore::open(data_dir, flush, Arc::new(SystemClock))
            .map_err(|e| EmbeddedError::Other(e.to_string()))?;
        let groups = GroupCoordinator::new(groups, offsets);
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let broker = Arc::new(Broker {
            config: BrokerConfig {
                advertised_host: local.ip().to_string(),
                advertised_port: local.port(),
                ..BrokerConfig::default()
            },
            topics,
            producer_ids,
            metrics: Metrics::new(),
            groups: groups.clone(),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shared = broker.clone();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "embedded broker runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    let (expiry_stop, expiry_rx) = oneshot::channel::<()>();
                    let expiry = tokio::spawn(groups.run_expiry(
                        std::time::Duration::from_millis(250),
                        async {
                            let _ = expiry_rx.await;
                        },
                    ));
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(listener) => {
                            serve(listener, broker, async {
                                let _ = stop_rx.await;
                            })
                            .await
                        }
                        Err(e) => tracing::error!(error = %e, "embedded broker listener"),
                    }
                    let _ = expiry_stop.send(());
                    let _ = expiry.await;
                });
            })?;
        Ok(EmbeddedBroker {
            addr: local.to_string(),
            broker: shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl EmbeddedBroker {
    /// The running broker's state (topics, groups, metrics).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Total seconds the broker spent answering requests of `api` (from its `/metrics`
    /// histogram sum): the broker's own share of a run's wall-clock time.
    pub fn busy_seconds(&self, api: &str) -> f64 {
        let prefix = format!("broker_request_duration_seconds_sum{{api=\"{api}\"}} ");
        self.broker
            .metrics
            .render(&self.broker.topics, &self.broker.groups)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
