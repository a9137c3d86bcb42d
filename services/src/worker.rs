//! The order worker: a consumer-group member on the `seckill` topic that drains buys into
//! PostgreSQL in batches.
//!
//! Per batch: receive up to `max_batch` events (whatever is ready, after the first), send the
//! ones that cannot be decoded to the dead-letter topic, apply the rest in one transaction
//! ([`crate::orders::apply_batch`]), and only then commit the batch's offsets. A transient
//! database error is retried with backoff, never skipped: the worker does not commit past an
//! unprocessed event. Restarted at any point, it re-applies at most the last uncommitted batch,
//! which the transaction's request-id check turns into no-ops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use shared::messages::OrderEvent;
use sqlx::PgPool;
use thiserror::Error;

use crate::orders::{apply_batch, Buy};

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
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout_ms / 4).max(100).to_string(),
            )
            .create()?;
        consumer.subscribe(&[&config.topic])?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
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
        loop {
            let first = tokio::select! {
                m = self.consumer.recv() => m,
                _ = &mut stop => break,
            };
            let mut batch = Vec::with_capacity(self.config.max_batch);
            match first {
                Ok(m) => batch.push(m),
                Err(e) => {
                    tracing::warn!(error = %e, "consume error");
                    continue;
                }
            }
            while batch.len() < self.config.max_batch {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(m),
                    Some(Err(e)) => tracing::warn!(error = %e, "consume error"),
                    None => break,
                }
            }
            self.process(&batch).await?;
            self.commit(&batch, CommitMode::Async)?;
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
        tracing::warn!(
            partition = m.partition(),
            offset = m.offset(),
            reason,
            "dead-lettering an undecodable event"
        );
        let source = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "source",
                value: Some(&source),
            });
        let mut record = FutureRecord::to(&self.config.dead_letter_topic)
            .payload(m.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| WorkerError::DeadLetter(e.to_string()))?;
        self.stats.dead_lettered.inc();
        Ok(())
    }

    /// Commits, per partition, the offset after the batch's last event.
    fn commit(&self, batch: &[BorrowedMessage<'_>], mode: CommitMode) -> Result<(), WorkerError> {
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in batch {
            let e = next
                .entry((m.topic().to_string(), m.partition()))
                .or_insert(0);
            *e = (*e).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            // A rebalance took the partition: the new owner re-applies, idempotently.
            tracing::warn!(error = %e, "offset commit failed");
        }
        Ok(())
    }
}
