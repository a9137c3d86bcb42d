//! [`Api`]: the API process's composition root. It builds the shared state (the producer, the
//! token keys, the reply router), binds the HTTP port, and runs every task of the API (the HTTP
//! server, the item refresh, the inference-reply reader) until its shutdown token is cancelled;
//! then it stops accepting, finishes the requests in flight and waits for every task. The
//! `order-api` binary, the tests, the demo and the benchmarks all start the API here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::shutdown::Tasks;
use sqlx::PgPool;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::state::{ApiConfig, AppState, InvalidApiConfig};
use crate::kafka::{ensure_topics_patiently, TopicSpec};

#[derive(Debug, Error)]
pub enum ApiStartError {
    #[error(transparent)]
    Config(#[from] InvalidApiConfig),
    #[error("create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The API with its state built and its port bound, ready to [`Api::run`].
#[derive(Debug)]
pub struct Api {
    state: Arc<AppState>,
    listener: TcpListener,
}

impl Api {
    /// Validates `config`, builds the state over `pool` and binds `config.listen`.
    pub async fn bind(config: ApiConfig, pool: PgPool) -> Result<Api, ApiStartError> {
        config.validate()?;
        let addr = config.listen;
        let state = AppState::new(config, pool).await?;
        // Room for the crowd that connects when a sale opens (see `shared::listener`).
        let listener =
            shared::listener::bind(addr).map_err(|source| ApiStartError::Bind { addr, source })?;
        Ok(Api { state, listener })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight and waits for
    /// every task of the API.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ApiStartError> {
        let Api { state, listener } = self;
        let tasks = Tasks::new(shutdown.clone());
        tasks.spawn(state.clone().run_item_refresh(shutdown.clone()));
        tasks.spawn(state.replies.clone().run(shutdown.clone()));
        // The order topic, unless it exists: nothing relies on the broker creating it. Until it
        // exists, buys are answered 503 not_accepted (the producer cannot place them).
        tasks.spawn({
            let (state, stop) = (state.clone(), shutdown.clone());
            async move {
                let topic = [TopicSpec::new(&state.config.topic, state.config.topic_partitions)];
                tokio::select! {
                    _ = stop.cancelled() => {}
                    r = ensure_topics_patiently(&state.config.bootstrap, &topic, Duration::from_secs(86_400)) => {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "could not create the order topic");
                        }
                    }
                }
            }
        });
        tasks.spawn(super::dashboard::Dashboard::run(
            state.clone(),
            shutdown.clone(),
        ));
        tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "order API listening");
        super::connections::serve(
            listener,
            super::app(state.clone()),
            state.config.connections,
            {
                let (shutdown, stopping) = (shutdown.clone(), state.stopping.clone());
                async move {
                    shutdown.cancelled().await;
                    // Ends the event streams, which would otherwise hold the stop up.
                    stopping.cancel();
                }
            },
        )
        .await;
        tasks.shutdown().await;
        Ok(())
    }

    /// Runs the API as a task: what the tests, the demo and the benchmarks use.
    pub fn spawn(self) -> RunningApi {
        let shutdown = CancellationToken::new();
        let addr = self.addr();
        let state = self.state.clone();
        let task = tokio::spawn(self.run(shutdown.clone()));
        RunningApi {
            addr,
            state,
            shutdown,
            task: Some(task),
        }
    }
}

/// An API running as a task; stopped by [`RunningApi::stop`] or when dropped.
#[derive(Debug)]
pub struct RunningApi {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), ApiStartError>>>,
}

impl RunningApi {
    /// `http://<addr>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the API and waits until it has: requests in flight finished, tasks ended.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "API stopped with an error"),
                Err(e) => tracing::error!(error = %e, "API task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
