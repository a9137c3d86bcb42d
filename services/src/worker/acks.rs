//! Broker acknowledgements a handled batch still waits for.
//!
//! A handler that produces as an effect of its batch (the inference worker's replies) hands
//! its sends to the worker here instead of waiting for them itself. The worker takes and
//! handles the next batch meanwhile, and commits a batch's offsets only once all of its
//! acknowledgements are in, batches in the order they were received. Waiting inside the handler
//! left the worker idle for the broker's round trip and fsync on every batch: at 256 callers,
//! one inference worker answered 6.3k-6.6k req/s that way and 8.1k-8.4k without the wait
//! (`infer-bench`).
//!
//! Invariant: a batch is committed only after every send registered here for it was
//! acknowledged or failed for good, and never before an earlier batch.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// How long a send waits for room in the producer's queue when it is full.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(30);

/// The sends of one batch whose acknowledgements the worker waits for before committing it.
#[derive(Default)]
pub struct PendingAcks {
    waits: Vec<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for PendingAcks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAcks")
            .field("sends", &self.waits.len())
            .finish()
    }
}

impl PendingAcks {
    /// A batch whose effects are already durable when its handler returns.
    pub fn none() -> Self {
        PendingAcks::default()
    }

    /// Whether nothing is awaited: the batch can be committed at once.
    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Registers something else the batch's effects are durable only after.
    pub fn after(&mut self, done: impl Future<Output = ()> + Send + 'static) {
        self.waits.push(Box::pin(done));
    }

    /// Produces `record` and registers its acknowledgement. A send that fails for good (its
    /// topic is gone, the broker refused it, it timed out) is logged as `what` and does not
    /// hold the batch back: the handler stored what the send carried before sending it.
    pub async fn send<K, P>(
        &mut self,
        producer: &FutureProducer,
        record: FutureRecord<'_, K, P>,
        what: impl Display + Send + 'static,
    ) where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        match producer.send_result(record) {
            Ok(delivery) => self.after(async move {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => tracing::warn!(error = %e, "{what}: not delivered"),
                    Err(_) => tracing::warn!("{what}: the producer went away before the ack"),
                }
            }),
            // librdkafka's queue is full: wait for room and for this one's ack, as
            // `FutureProducer::send` does; the rest of the batch has not been sent yet.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                if let Err((e, _)) = producer.send(record, QUEUE_FULL_PATIENCE).await {
                    tracing::warn!(error = %e, "{what}: not delivered");
                }
            }
            Err((e, _)) => tracing::warn!(error = %e, "{what}: not sent"),
        }
    }

    /// Resolves once every registered send is acknowledged or failed.
    pub(super) fn into_wait(self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            join_all(self.waits).await;
        })
    }
}
