//! The broker inside another process: a [`Node`] (the same composition root as the `broker`
//! binary) on its own runtime thread, on free loopback ports. Service tests, the perf tools and
//! the demo use it so they need no separate broker process. Dropping it shuts the node down the
//! way SIGTERM shuts down the binary: connections finish, tasks end, logs are flushed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::node::{Node, NodeError};
use crate::state::Broker;

/// A broker serving on its own runtime thread until dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// The first listener's address.
    pub addr: String,
    /// Every listener's name and bound address, in the configured order.
    pub listeners: Vec<(String, SocketAddr)>,
    pub admin_addr: SocketAddr,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("start the embedded broker's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the embedded broker's thread ended before it was ready")]
    Gone,
}

impl EmbeddedBroker {
    /// Opens and starts a node with `config` (usually [`NodeConfig::local`] with changes).
    pub fn start(config: NodeConfig) -> Result<Self, EmbeddedError> {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("embedded-broker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EmbeddedError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Node::bind(config, token).await {
                        Ok(node) => {
                            let info = (
                                node.listener_addrs(),
                                node.admin_addr(),
                                node.broker().clone(),
                            );
                            let _ = ready_tx.send(Ok(info));
                            node.run().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                        }
                    }
                });
            })
            .map_err(EmbeddedError::Runtime)?;
        let (listeners, admin_addr, broker) =
            ready_rx.recv().map_err(|_| EmbeddedError::Gone)??;
        Ok(EmbeddedBroker {
            addr: listeners
                .first()
                .map(|(_, a)| a.to_string())
                .unwrap_or_default(),
            listeners,
            admin_addr,
            broker,
            shutdown,
            thread: Some(thread),
        })
    }

    /// `host:port` of the listener named `name` (upper-case, as configured).
    pub fn listener(&self, name: &str) -> Option<String> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.to_string())
    }

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
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
