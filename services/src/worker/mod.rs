//! The batch worker: one loop for every worker of this project. It joins a consumer group,
//! takes a batch of whatever is ready, hands it to a [`BatchHandler`] (the only part each kind
//! of worker writes), and commits the batch's offsets only after the handler returned `Ok`:
//! whatever the handler's effects are (rows in PostgreSQL, replies, dead letters), they are
//! durable before the queue forgets the messages that caused them.
//!
//! - `handler`: the [`BatchHandler`] trait and the [`WorkerContext`] a handler works with
//!   (dead-lettering, retries with backoff, the shutdown token).
//! - `queue`: the Kafka side: group consumer, durable producer, batches, commits, dead letters.
//! - `acks`: the sends a handled batch still waits for; the worker handles the next batch
//!   meanwhile and commits in batch order.
//! - `metrics`: the counters every worker has, and its `/healthz` + `/metrics` port.
//! - `pace`: an optional ceiling on events per second, for a database shared with others.
//!
//! Shutdown: when the token is cancelled the worker finishes the batch in hand (a handler
//! waiting in a retry stops instead, and that batch stays uncommitted), waits for the
//! acknowledgements of the batches it handled, commits, leaves the group, stops its metrics
//! port and returns.

mod acks;
mod handler;
mod metrics;
pub mod pace;
pub mod queue;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use shared::shutdown::Tasks;
use sqlx::PgPool;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::kafka::TopicSpec;

use crate::telemetry::{check_broker, check_database, ready_response, ReadinessCheck};
pub use acks::PendingAcks;
pub use handler::{is_permanent, BatchHandler, DbFailure, HandlerError, WorkerContext};
pub use metrics::WorkerMetrics;

/// Where a worker reads from and how.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap: String,
    pub group_id: String,
    pub topic: String,
    pub dead_letter_topic: String,
    /// Largest batch handed to the handler.
    pub max_batch: usize,
    pub session_timeout_ms: u32,
    /// Static group membership (KIP-345): a worker that restarts with the same id gets its
    /// partitions back at once instead of after its old session timed out. Must be unique
    /// per running worker; `None` joins as a dynamic member.
    pub instance_id: Option<String>,
    /// `/healthz` and `/metrics`; `None` serves none (tests, the demo).
    pub metrics_listen: Option<SocketAddr>,
    /// Events per second at most (see [`pace`]); `None`: as fast as the handler goes.
    pub max_rate: Option<u32>,
    /// Partitions of the topic when this worker creates it (see [`crate::kafka`]).
    pub topic_partitions: i32,
}

impl WorkerConfig {
    /// The order worker's defaults: group `order-workers` on `seckill`, batches of 1000.
    pub fn orders(bootstrap: &str) -> Self {
        WorkerConfig {
            bootstrap: bootstrap.into(),
            group_id: "order-workers".into(),
            topic: shared::topics::SECKILL_ORDERS.into(),
            dead_letter_topic: shared::topics::SECKILL_DEAD_LETTER.into(),
            max_batch: 1000,
            session_timeout_ms: 10_000,
            instance_id: None,
            metrics_listen: None,
            max_rate: None,
            topic_partitions: 6,
        }
    }

    /// The inference worker's defaults: group `inference-workers` on `inference.requests`,
    /// micro-batches of 32.
    pub fn inference(bootstrap: &str) -> Self {
        WorkerConfig {
            group_id: "inference-workers".into(),
            topic: shared::topics::INFERENCE_REQUESTS.into(),
            dead_letter_topic: shared::topics::INFERENCE_DEAD_LETTER.into(),
            max_batch: 32,
            ..WorkerConfig::orders(bootstrap)
        }
    }
}

/// The static member id a worker binary uses unless told otherwise: this host's name and the
/// worker's metrics port, which no other worker on the host can share (it would fail to bind).
/// `flag` is the `--instance-id` given: an empty one means dynamic membership.
pub fn instance_id(flag: Option<&str>, metrics_listen: SocketAddr) -> Option<String> {
    match flag {
        Some("") => None,
        Some(id) => Some(id.to_string()),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "localhost".into());
            Some(format!("{host}:{}", metrics_listen.port()))
        }
    }
}

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("bind the metrics port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the batch handler failed: {0}")]
    Handler(#[source] HandlerError),
}

/// `/readyz` of a worker: the broker (through the worker's producer) and the handler's database.
fn readiness(producer: FutureProducer, pool: Option<PgPool>) -> ReadinessCheck {
    Arc::new(move || {
        let (producer, pool) = (producer.clone(), pool.clone());
        Box::pin(async move {
            let broker =
                check_broker(move |t| producer.client().fetch_metadata(None, t).map(|_| ())).await;
            let mut checks = vec![("broker", broker)];
            if let Some(pool) = &pool {
                checks.push(("database", check_database(pool).await));
            }
            ready_response(checks)
        })
    })
}

/// A worker ready to run: its group consumer exists, its metrics port is bound.
pub struct Worker<H: BatchHandler> {
    config: WorkerConfig,
    consumer: StreamConsumer,
    context: WorkerContext,
    handler: H,
    metrics_port: Option<TcpListener>,
}

impl<H: BatchHandler> std::fmt::Debug for Worker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("handler", &H::METRICS_PREFIX)
            .finish_non_exhaustive()
    }
}

/// How long a starting worker waits for its broker to create its topics.
const TOPICS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl<H: BatchHandler> Worker<H> {
    /// Binds the metrics port and joins the group. The handler is ready (a model loaded, a pool
    /// connected) before the worker takes any partition.
    pub async fn start(config: WorkerConfig, handler: H) -> Result<Self, WorkerError> {
        let metrics_port = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| WorkerError::Bind { addr, source })?,
            ),
            None => None,
        };
        // Before subscribing: a consumer that subscribes to a topic not there yet sees it only
        // at its next metadata refresh.
        crate::kafka::ensure_topics_patiently(
            &config.bootstrap,
            &[
                TopicSpec::new(&config.topic, config.topic_partitions),
                TopicSpec::new(&config.dead_letter_topic, 1),
            ],
            TOPICS_PATIENCE,
        )
        .await?;
        let consumer = queue::group_consumer(&config)?;
        let producer = queue::durable_producer(&config.bootstrap)?;
        let context = WorkerContext::new(
            producer,
            config.dead_letter_topic.clone(),
            Arc::new(WorkerMetrics::default()),
        );
        Ok(Worker {
            config,
            consumer,
            context,
            handler,
            metrics_port,
        })
    }

    /// The counters every worker has (batches, events, dead letters, retries).
    pub fn metrics(&self) -> &Arc<WorkerMetrics> {
        self.context.metrics()
    }

    /// The address of the `/metrics` port, if one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_port.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled, then commits what it finished and leaves the group.
    /// Returns once every task it started has ended.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let Worker {
            config,
            consumer,
            mut context,
            mut handler,
            metrics_port,
        } = self;
        let tasks = Tasks::new(shutdown.clone());
        context.set_shutdown(shutdown.clone());
        if let Some(listener) = metrics_port {
            let mut registry = Registry::default();
            {
                let sub = registry.sub_registry_with_prefix(H::METRICS_PREFIX);
                context.metrics().register(sub);
                handler.register_metrics(sub);
            }
            metrics::serve(
                listener,
                Arc::new(registry),
                readiness(context.producer().clone(), handler.database()),
                &tasks,
            );
        }
        tracing::info!(group = %config.group_id, topic = %config.topic, "worker running");
        let mut pace = config.max_rate.map(pace::Pace::new);
        let max_batch = pace
            .as_ref()
            .map_or(config.max_batch, |p| p.batch(config.max_batch));
        let mut consumer = consumer;
        let mut rejoins = Rejoins::default();
        let result = loop {
            match serve(
                &consumer,
                &mut handler,
                &context,
                &mut pace,
                max_batch,
                &shutdown,
            )
            .await
            {
                Err(WorkerError::Kafka(e)) if is_fenced(&e) && rejoins.allow() => {
                    // See [`Rejoins`]: the membership is taken again with a new consumer; what
                    // this one handled but could not commit comes back, and is applied once.
                    tracing::warn!(error = %e, "fenced in the group; rejoining with a new consumer");
                    context.metrics().rejoined();
                    drop(consumer);
                    consumer = queue::group_consumer(&config)?;
                }
                other => break other,
            }
        };
        tracing::info!(group = %config.group_id, "worker stopping");
        // What was committed asynchronously is flushed by a final synchronous commit.
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit (nothing to commit?)");
        }
        drop(consumer);
        tasks.shutdown().await;
        result
    }
}

/// Takes batches from `consumer`, hands them to the handler and commits them, until `shutdown`
/// (`Ok`) or an error the loop cannot go on from.
async fn serve<H: BatchHandler>(
    consumer: &StreamConsumer,
    handler: &mut H,
    context: &WorkerContext,
    pace: &mut Option<pace::Pace>,
    max_batch: usize,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    // The last handled batch while its acknowledgements are out; at most one, so batches are
    // committed in the order they came.
    let mut in_flight: Option<InFlight> = None;
    let result = loop {
        let next = tokio::select! {
            // Acknowledged while no new batch came: commit it now, not at the next batch.
            () = acknowledged(&mut in_flight), if in_flight.is_some() => None,
            received = queue::recv_batch(consumer, max_batch, shutdown) => Some(received),
        };
        let batch = match next {
            None => {
                if let Some(done) = in_flight.take() {
                    done.commit(consumer)?;
                }
                continue;
            }
            Some(Ok(Some(batch))) => batch,
            Some(Ok(None)) => break Ok(()),
            Some(Err(e)) => break Err(WorkerError::Kafka(e)),
        };
        match handler.handle(&batch, context).await {
            Ok(acks) => {
                context.metrics().batch_done(batch.len());
                let offsets = queue::next_offsets(&batch);
                if let Some(earlier) = in_flight.take() {
                    earlier.finish(consumer).await?;
                }
                if acks.is_empty() {
                    queue::commit(consumer, &offsets, CommitMode::Async)?;
                } else {
                    in_flight = Some(InFlight {
                        offsets,
                        acks: acks.into_wait(),
                    });
                }
                if let Some(pace) = pace {
                    pace.after(batch.len(), shutdown).await;
                }
            }
            // Stopped while retrying: the batch stays uncommitted and comes back.
            Err(HandlerError::Stopped) => break Ok(()),
            Err(e) => break Err(WorkerError::Handler(e)),
        }
    };
    // What was handled before stopping is committed once it is durable, even after a failure
    // of a later batch.
    if let Some(earlier) = in_flight.take() {
        earlier.finish(consumer).await?;
    }
    result
}

/// Whether the group coordinator fenced this member (FENCED_INSTANCE_ID): another member joined
/// with its `group.instance.id`.
fn is_fenced(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId)
}

/// How often a fenced worker takes its membership back before it gives up and exits.
///
/// librdkafka makes FENCED_INSTANCE_ID fatal to the consumer, and it happens without any other
/// worker: on a Kafka cluster whose group coordinator node dies, the worker's session runs out
/// while the coordinator moves (10 s against Kafka's 9 s to declare a node dead), it rejoins
/// under its static id with a new member id, and a commit still on its way under the old
/// member id is then fenced by the new coordinator. Exiting there left the partitions without a
/// worker until something restarted it (`loadtest/tests/apache_kafka.rs`, 1 run in 4). A
/// second process running with the same id (a misconfiguration) would be fenced in turn by
/// each rejoin; the budget makes one of them give up instead of the two taking turns forever.
#[derive(Debug, Default)]
struct Rejoins {
    recent: std::collections::VecDeque<std::time::Instant>,
}

impl Rejoins {
    const MAX: usize = 3;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

    fn allow(&mut self) -> bool {
        let now = std::time::Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Self::WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= Self::MAX {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// A handled batch: the offsets that commit it and the acknowledgements that must come first.
struct InFlight {
    offsets: queue::NextOffsets,
    acks: futures_util::future::BoxFuture<'static, ()>,
}

impl InFlight {
    /// Waits for the acknowledgements, then commits.
    async fn finish(mut self, consumer: &StreamConsumer) -> Result<(), WorkerError> {
        self.acks.as_mut().await;
        self.commit(consumer)
    }

    /// Commits; only once the acknowledgements are in.
    fn commit(self, consumer: &StreamConsumer) -> Result<(), WorkerError> {
        Ok(queue::commit(consumer, &self.offsets, CommitMode::Async)?)
    }
}

/// Resolves when the batch in flight is acknowledged; never, when there is none.
async fn acknowledged(in_flight: &mut Option<InFlight>) {
    match in_flight {
        Some(f) => f.acks.as_mut().await,
        None => std::future::pending().await,
    }
}
