//! Runs the real broker (the same server code as the `broker` binary) inside the perf tool's
//! process on a free loopback port, so a perf run needs no separate setup and can measure the
//! storage engine on the same disk in the same run.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use broker::clock::SystemClock;
use broker::log::LogConfig;
use broker::metrics::Metrics;
use broker::producer_ids::ProducerIdAllocator;
use broker::server::{serve, Broker, BrokerConfig};
use broker::topics::TopicRegistry;
use tokio::sync::oneshot;

/// A broker serving on its own runtime thread until dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    pub addr: String,
    broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    pub fn start(data_dir: &Path, defaults: LogConfig) -> anyhow::Result<Self> {
        let defaults_flush = defaults.flush;
        let topics = TopicRegistry::open(data_dir, defaults, Arc::new(SystemClock))
            .context("open broker data dir")?;
        let producer_ids = ProducerIdAllocator::open(data_dir)?;
        let offsets =
            broker::group::OffsetStore::open(data_dir, defaults_flush, Arc::new(SystemClock))?;
        let groups = broker::group::GroupCoordinator::new(Default::default(), offsets);
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
