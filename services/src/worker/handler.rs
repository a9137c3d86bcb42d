//! What each kind of worker writes: a [`BatchHandler`] that says what one batch means. The
//! [`WorkerContext`] gives it what every handler needs: the dead-letter topic, retries with
//! backoff that stop on shutdown, and the shared counters.

use std::future::Future;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::acks::PendingAcks;
use super::metrics::WorkerMetrics;
use super::queue;
use crate::backoff::Backoff;

/// Why a batch was not handled. Anything else a handler meets (a bad message, a database that
/// is down) it handles itself: dead-letter, or retry.
#[derive(Debug, Error)]
pub enum HandlerError {
    /// The worker is shutting down while the handler waited to retry; the batch stays
    /// uncommitted and is delivered again.
    #[error("stopped before the batch was handled")]
    Stopped,
    #[error("dead-letter produce failed: {0}")]
    DeadLetter(#[source] KafkaError),
    /// The handler cannot go on (its model cannot be loaded again, say).
    #[error(transparent)]
    Fatal(Box<dyn std::error::Error + Send + Sync>),
}

/// One kind of worker: what a batch of messages means.
pub trait BatchHandler: Send + 'static {
    /// Prefix of the worker's metrics (`order_worker`, `inference_worker`).
    const METRICS_PREFIX: &'static str;

    /// Registers the handler's own metrics beside the shared ones.
    fn register_metrics(&self, registry: &mut Registry);

    /// The database the handler writes to, checked by the worker's `/readyz`.
    fn database(&self) -> Option<PgPool> {
        None
    }

    /// Handles a batch. `Ok` means every effect of the batch is durable once the returned
    /// acknowledgements are in (none, for a handler whose effects are all in its database):
    /// the worker then commits its offsets. It may hand the handler the next batch meanwhile.
    fn handle(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        ctx: &WorkerContext,
    ) -> impl Future<Output = Result<PendingAcks, HandlerError>> + Send;
}

/// What a handler works with.
#[derive(Clone)]
pub struct WorkerContext {
    producer: FutureProducer,
    dead_letter_topic: String,
    metrics: Arc<WorkerMetrics>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("dead_letter_topic", &self.dead_letter_topic)
            .finish_non_exhaustive()
    }
}

impl WorkerContext {
    pub(super) fn new(
        producer: FutureProducer,
        dead_letter_topic: String,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        WorkerContext {
            producer,
            dead_letter_topic,
            metrics,
            shutdown: CancellationToken::new(),
        }
    }

    pub(super) fn set_shutdown(&mut self, token: CancellationToken) {
        self.shutdown = token;
    }

    pub fn metrics(&self) -> &Arc<WorkerMetrics> {
        &self.metrics
    }

    /// The worker's idempotent, acks=all producer (replies go through it too).
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Copies `m` to the dead-letter topic with `reason`, and waits for the broker's ack.
    pub async fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), HandlerError> {
        queue::dead_letter(&self.producer, &self.dead_letter_topic, m, reason)
            .await
            .map_err(HandlerError::DeadLetter)?;
        self.metrics.dead_lettered.inc();
        Ok(())
    }

    /// Runs a database call until it succeeds, retrying transient failures with backoff: the
    /// offsets stay uncommitted meanwhile, so nothing is skipped. A permanent failure (the data
    /// itself is refused, see [`is_permanent`]) is returned at once, for the handler to isolate
    /// the offending event; shutdown ends the retries with [`DbFailure::Stopped`].
    pub async fn retry_db<'a, T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, DbFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>> + 'a,
    {
        let mut backoff = Backoff::default();
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if is_permanent(&e) => {
                    tracing::warn!(error = %e, what, "the database refuses this data");
                    return Err(DbFailure::Permanent(e));
                }
                Err(e) => {
                    self.metrics.db_retries.inc();
                    tracing::warn!(error = %e, what, "database call failed; retrying");
                    if !backoff.wait(&self.shutdown).await {
                        return Err(DbFailure::Stopped);
                    }
                }
            }
        }
    }
}

/// A database call that did not succeed.
#[derive(Debug, Error)]
pub enum DbFailure {
    /// Shutdown came while retrying.
    #[error("stopped while retrying")]
    Stopped,
    /// The database refuses the data itself: retrying the same events cannot succeed.
    #[error("the database refuses the data: {0}")]
    Permanent(#[source] sqlx::Error),
}

impl From<DbFailure> for HandlerError {
    fn from(f: DbFailure) -> Self {
        match f {
            DbFailure::Stopped => HandlerError::Stopped,
            DbFailure::Permanent(e) => HandlerError::Fatal(Box::new(e)),
        }
    }
}

/// Whether retrying `e` cannot help: a data exception (SQLSTATE class 22: a value out of
/// range, an invalid timestamp, a character the encoding cannot hold) depends only on the
/// events, so the same batch fails the same way every time. Everything else (connection loss,
/// serialization failures and deadlocks, a unique-key race between two workers, a database
/// restart or a full disk) may pass, and is retried.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("22")),
        _ => false,
    }
}
