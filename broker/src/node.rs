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

use crate::config::{parse_host_port, InvalidNodeConfig, NodeConfig};
use crate::server;
use crate::state::{Broker, OpenError};

/// How often members whose session ran out are removed.
const EXPIRY_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] InvalidNodeConfig),
    #[error("bind {what} {addr}: {source}")]
    Bind {
        what: &'static str,
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
#[derive(Debug)]
pub struct Node {
    broker: Arc<Broker>,
    listener: TcpListener,
    admin: TcpListener,
    config: NodeConfig,
    tasks: Tasks,
}

impl Node {
    /// Validates `config`, binds both ports and opens the data directory. The node runs until
    /// `shutdown` is cancelled.
    pub async fn bind(config: NodeConfig, shutdown: CancellationToken) -> Result<Node, NodeError> {
        config.validate()?;
        // Room for every client of a restarted broker reconnecting at once (`shared::listener`).
        let bind = |what, addr| {
            shared::listener::bind(addr).map_err(|source| NodeError::Bind { what, addr, source })
        };
        let listener = bind("listener", config.listen)?;
        let admin = bind("admin port", config.admin_listen)?;
        let local = listener.local_addr().map_err(|source| NodeError::Bind {
            what: "listener",
            addr: config.listen,
            source,
        })?;
        let advertised = match &config.advertised {
            Some(a) => parse_host_port(a)?,
            None => (local.ip().to_string(), local.port()),
        };
        let tasks = Tasks::new(shutdown);
        let broker =
            Broker::open(&config, advertised, &tasks).map_err(|source| NodeError::Open {
                dir: config.data_dir.display().to_string(),
                source,
            })?;
        Ok(Node {
            broker,
            listener,
            admin,
            config,
            tasks,
        })
    }

    /// The Kafka listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
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
            listener,
            admin,
            config,
            tasks,
        } = self;
        let token = tasks.token().clone();
        tracing::info!(
            listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = %admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port),
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

        server::serve(listener, broker.clone(), &tasks).await;
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
