//! The order worker: a consumer-group member on the `seckill` topic that drains buys into
//! PostgreSQL in batches.
//!
//! Per batch: receive up to `max_batch` events (whatever is ready, after the first), send the
//! ones that cannot be decoded to the dead-letter topic, apply the rest in one transaction
//! ([`crate::orders::apply_batch`]), and only then commit the batch's offsets. A transient
//! database error is retried with backoff, never skipped: the worker does not commit past an
//! unprocessed event. Restarted at any point, it re-applies at most the last uncommitted batch,
//! which the transaction's request-id check turns into no-ops.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use shared::messages::OrderEvent;
use sqlx::PgPool;
use thiserror::Error;

use crate::orders::{apply_batch, Buy};
use crate::queue;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap: String,
    pub group_id: String,
    pub topic: String,
    pub dead_letter_topic: String,
    pub max_batch: usize,
    pub session_timeout_ms: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            bootstrap: "127.0.0.1:9092".into(),
            group_id: "order-workers".into(),
            topic: shared::topics::SECKILL_ORDERS.into(),
            dead_letter_topic: shared::topics::SECKILL_DEAD_LETTER.into(),
            max_batch: 1000,
            session_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("dead-letter produce failed: {0}")]
    DeadLetter(String),
}

/// Counters for `/metrics` and the demo's progress line.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub batches: Counter,
    pub events: Counter,
    pub confirmed: Counter,
    pub rejected: Counter,
    pub already_applied: Counter,
    pub dead_lettered: Counter,
    pub db_retries: Counter,
}

impl WorkerStats {
    /// Registers every counter (as `order_worker_*`) for the `/metrics` endpoint.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("order_worker");
        r.register(
            "batches",
            "Batches applied to the database",
            self.batches.clone(),
        );
        r.register("events", "Buy events processed", self.events.clone());
        r.register("confirmed", "Orders confirmed", self.confirmed.clone());
        r.register(
            "rejected",
            "Orders rejected (sold out, duplicate, invalid)",
            self.rejected.clone(),
        );
        r.register(
            "already_applied",
            "Redelivered events whose order already existed",
            self.already_applied.clone(),
        );
        r.register(
            "dead_lettered",
            "Undecodable events sent to the dead-letter topic",
            self.dead_lettered.clone(),
        );
        r.register(
            "db_retries",
            "Batch transactions retried after a database error",
            self.db_retries.clone(),
        );
    }
}

pub struct Worker {
    config: WorkerConfig,
    consumer: StreamConsumer,
    producer: FutureProducer,
    pool: PgPool,
    pub stats: Arc<WorkerStats>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(config: WorkerConfig, pool: PgPool) -> Result<Self, WorkerError> {
        let consumer = queue::group_consumer(
            &config.bootstrap,
            &config.group_id,
            &config.topic,
            config.session_timeout_ms,
        )?;
        let producer = queue::durable_producer(&config.bootstrap)?;
        Ok(Worker {
            config,
            consumer,
            producer,
            pool,
            stats: Arc::new(WorkerStats::default()),
        })
    }

    /// Runs until `stop` resolves; then commits what it finished and leaves the group.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(stop);
        while let Some(batch) =
            queue::recv_batch(&self.consumer, self.config.max_batch, &mut stop).await
        {
            self.process(&batch).await?;
            queue::commit_batch(&self.consumer, &batch, CommitMode::Async)?;
        }
        tracing::info!("order worker stopping");
        // What was committed asynchronously is flushed by a final synchronous commit.
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit (nothing to commit?)");
        }
        Ok(())
    }

    async fn process(&self, batch: &[BorrowedMessage<'_>]) -> Result<(), WorkerError> {
        let mut buys = Vec::with_capacity(batch.len());
        for m in batch {
            match m.payload().map(OrderEvent::decode) {
                Some(Ok(e)) => buys.push(Buy {
                    request_id: e.request_id,
                    user_id: e.user_id,
                    item_id: e.item_id,
                    qty: e.qty,
                    accepted_at_ms: e.accepted_at_ms,
                    partition: m.partition(),
                    offset: m.offset(),
                }),
                Some(Err(e)) => self.dead_letter(m, &e.to_string()).await?,
                None => self.dead_letter(m, "empty message").await?,
            }
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match apply_batch(&self.pool, &buys).await {
                Ok(s) => {
                    let st = &self.stats;
                    st.batches.inc();
                    st.events.inc_by(batch.len() as u64);
                    st.confirmed.inc_by(s.confirmed);
                    st.rejected.inc_by(s.sold_out + s.duplicate + s.invalid);
                    st.already_applied.inc_by(s.already_applied);
                    tracing::debug!(events = batch.len(), ?s, "batch applied");
                    return Ok(());
                }
                Err(e) => {
                    // Connection loss, serialization failure, restart of the database: all
                    // worth retrying; the offsets stay uncommitted meanwhile.
                    self.stats.db_retries.inc();
                    tracing::warn!(error = %e, retry_in = ?backoff, "batch not applied; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn dead_letter(&self, m: &BorrowedMessage<'_>, reason: &str) -> Result<(), WorkerError> {
        queue::dead_letter(&self.producer, &self.config.dead_letter_topic, m, reason)
            .await
            .map_err(|e| WorkerError::DeadLetter(e.to_string()))?;
        self.stats.dead_lettered.inc();
        Ok(())
    }
}
