//! [`Node`]: one broker process's composition root. It opens the data directory, binds the
//! Kafka listener and the admin port, and runs every task of the broker (connections, the admin
//! HTTP server, retention, group-session expiry and the coordinator's rebalance timers) until
//! its shutdown token is cancelled. Then it stops accepting, lets every connection finish the
//! request it is on, waits for every task, and flushes the logs.
//!
//! The `broker` binary, the embedded broker of the tests, perf tools and demo, and the fuzz
//! targets (through [`Broker::open`]) all build the broker here, so they cannot drift apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::shutdown::Tasks;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{InvalidNodeConfig, NodeConfig};
use crate::server::{self, Bound};
use crate::state::{Broker, OpenError};
use crate::tls::{self, TlsError};

/// How often members whose session ran out are removed.
const EXPIRY_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] InvalidNodeConfig),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("bind {what} {addr}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("open data dir {dir}: {source}")]
    Open {
        dir: String,
        #[source]
        source: OpenError,
    },
}

/// A broker whose data directory is open and whose ports are bound, ready to [`Node::run`].
pub struct Node {
    broker: Arc<Broker>,
    /// In the order of `config.listeners`.
    listeners: Vec<Bound>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    admin: TcpListener,
    config: NodeConfig,
    tasks: Tasks,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("listeners", &self.listener_addrs())
            .field("admin", &self.admin)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Validates `config`, loads the TLS certificate, binds every port and opens the data
    /// directory. The node runs until `shutdown` is cancelled.
    pub async fn bind(config: NodeConfig, shutdown: CancellationToken) -> Result<Node, NodeError> {
        config.validate()?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        // Room for every client of a restarted broker reconnecting at once (`shared::listener`).
        let bind = |what: String, addr| {
            let socket = shared::listener::bind(addr).map_err(|source| NodeError::Bind {
                what: what.clone(),
                addr,
                source,
            })?;
            let local =
                socket
                    .local_addr()
                    .map_err(|source| NodeError::Bind { what, addr, source })?;
            Ok::<_, NodeError>((socket, local))
        };
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for l in &config.listeners {
            let (socket, local) = bind(format!("listener {}", l.name), l.bind)?;
            listeners.push(Bound {
                socket,
                endpoint: Arc::new(l.endpoint(local)),
            });
        }
        let (admin, _) = bind("admin port".into(), config.admin_listen)?;
        let tasks = Tasks::new(shutdown);
        let broker = Broker::open(&config, &tasks).map_err(|source| NodeError::Open {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        Ok(Node {
            broker,
            listeners,
            tls,
            admin,
            config,
            tasks,
        })
    }

    /// The first listener's address (the only one, unless several are configured).
    pub fn addr(&self) -> SocketAddr {
        self.listener_addrs()
            .first()
            .map(|(_, a)| *a)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Every listener's name and bound address, in the configured order.
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|l| Some((l.endpoint.name.clone(), l.socket.local_addr().ok()?)))
            .collect()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_listen)
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The node's task set: empty once [`Node::run`] returned.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Serves until the shutdown token is cancelled, then drains connections, waits for every
    /// task and flushes. Returns once nothing of the node runs any more.
    pub async fn run(self) {
        let Node {
            broker,
            listeners,
            tls,
            admin,
            config,
            tasks,
        } = self;
        let token = tasks.token().clone();
        for l in &listeners {
            tracing::info!(
                listener = %l.endpoint.name,
                protocol = %l.endpoint.protocol,
                listen = %l.socket.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                advertised = %format!("{}:{}", l.endpoint.host, l.endpoint.port),
                "listening"
            );
        }
        tracing::info!(
            admin = %admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            data_dir = %config.data_dir.display(),
            flush = %config.log.flush,
            "broker listening"
        );

        let router = crate::admin::router(broker.clone());
        let stop = token.clone().cancelled_owned();
        tasks.spawn(async move {
            if let Err(e) = axum::serve(admin, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "admin server failed");
            }
        });
        tasks.spawn(retention_loop(
            broker.clone(),
            config.retention_check,
            token.clone(),
        ));
        tasks.spawn_until_cancelled(broker.groups.clone().run_expiry(EXPIRY_EVERY));
        tasks.spawn_until_cancelled(broker.groups.clone().run_membership_writer());

        server::serve(listeners, tls, broker.clone(), &tasks).await;
        tracing::info!("shutting down: finishing in-flight requests");
        // Parked JoinGroup/SyncGroup requests would otherwise wait for timers that no longer run.
        broker.groups.close();
        tasks.shutdown().await;
        broker.flush_all();
        tracing::info!("broker stopped");
    }
}

/// Applies retention every `every`. A pass in progress finishes before the loop looks at the
/// token again, so no deletion is abandoned half-way.
async fn retention_loop(broker: Arc<Broker>, every: Duration, token: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = token.cancelled() => return,
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || b.topics.enforce_retention()).await;
    }
}
