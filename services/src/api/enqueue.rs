//! Putting a message in the queue, and knowing what became of it. The API answers a client from
//! this, so the three outcomes are kept apart:
//!
//! - [`Enqueued::Acked`]: the broker acknowledged it (acks=all, idempotent producer): durable.
//! - [`Enqueued::NotQueued`]: certainly not in the queue: the local queue was full, or librdkafka
//!   reports the message as never persisted (never sent, or refused by the broker).
//! - [`Enqueued::Unknown`]: it may be in the queue: the broker did not answer in time after the
//!   message was sent (librdkafka's "possibly persisted"), or the caller's deadline passed first
//!   (the message is still in the producer's queue and may yet be delivered).
//!
//! `rdkafka`'s `FutureProducer` reports only an error, not whether the message may have been
//! written, so this producer asks librdkafka itself (`rd_kafka_message_status`) in its delivery
//! callback.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::sync::oneshot;

/// What became of one message.
#[derive(Debug)]
pub enum Enqueued {
    Acked { partition: i32, offset: i64 },
    NotQueued(KafkaError),
    Unknown(String),
}

/// Reports deliveries to the oneshot each message carries.
#[derive(Debug, Default)]
pub struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<oneshot::Sender<Enqueued>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(m) => Enqueued::Acked {
                partition: m.partition(),
                offset: m.offset(),
            },
            Err((e, m)) if persisted_status(m) == Persisted::No => Enqueued::NotQueued(e.clone()),
            Err((e, _)) => Enqueued::Unknown(format!("the broker did not confirm it: {e}")),
        };
        // The caller may have stopped waiting (its deadline passed); nothing else to do.
        let _ = reply.send(outcome);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Persisted {
    No,
    Maybe,
    Yes,
}

/// librdkafka's own record of whether a failed message may have reached the log.
fn persisted_status(m: &BorrowedMessage<'_>) -> Persisted {
    use rdkafka::bindings::rd_kafka_msg_status_t as S;
    // SAFETY: `m` is a live message handed to the delivery callback; `ptr()` is its
    // `rd_kafka_message_t`, which `rd_kafka_message_status` only reads.
    #[allow(unsafe_code)]
    let status = unsafe { rdkafka::bindings::rd_kafka_message_status(m.ptr()) };
    match status {
        S::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => Persisted::No,
        S::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => Persisted::Maybe,
        S::RD_KAFKA_MSG_STATUS_PERSISTED => Persisted::Yes,
    }
}

/// Produce requests a [`DurableProducer`] keeps out at most (see [`DurableProducer::new`]).
pub const MAX_IN_FLIGHT: u32 = 2;

/// An idempotent, acks=all producer whose every send ends in one of the [`Enqueued`] outcomes.
pub struct DurableProducer {
    producer: ThreadedProducer<DeliveryContext>,
}

impl std::fmt::Debug for DurableProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DurableProducer")
    }
}

impl DurableProducer {
    /// `give_up` bounds how long librdkafka keeps trying one message; `linger` is how long it
    /// waits for more messages to send with one (see `ApiConfig::producer_linger`).
    pub fn new(bootstrap: &str, give_up: Duration, linger: Duration) -> Result<Self, KafkaError> {
        let producer = crate::kafka::client_config(bootstrap)
            // Retries never duplicate, and acks=all: an ack means the broker has it durably.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", format!("{:.3}", linger.as_secs_f64() * 1000.0))
            // At most two produce requests out: what arrives meanwhile goes in the next one, so
            // requests grow with the load, as a group commit does, with no fixed wait. With 5
            // in flight (the default) and no linger, every buy became its own request (12-14k
            // buys/s); a 1 ms linger batched them but put 1 ms on every buy (20.2k-23.0k buys/s
            // at 50 connections, p99 5.9-8.2 ms). No linger and 2 in flight: 25.0k-31.2k, p99
            // 3.3-4.2 ms; 1 in flight: 28.7k-30.2k, p99 3.9-4.4 ms, but librdkafka sends a
            // request per partition, so a slow one held every partition: 2 of 9 open-loop runs
            // of `kafka-perf`'s order path had a p99 of 50-62 ms, none with 2. (`order-bench
            // ingest`, interleaved.) Idempotence keeps order and exactly-once either way.
            .set(
                "max.in.flight.requests.per.connection",
                MAX_IN_FLIGHT.to_string(),
            )
            .set("message.timeout.ms", give_up.as_millis().to_string())
            .set("queue.buffering.max.messages", "200000")
            .create_with_context(DeliveryContext)?;
        Ok(DurableProducer { producer })
    }

    /// Sends `payload` keyed by `key` and waits at most `deadline` for the outcome.
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        deadline: Duration,
    ) -> Enqueued {
        self.send_with(topic, key, payload, None, deadline).await
    }

    /// [`DurableProducer::send`] with Kafka headers.
    pub async fn send_with(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: Option<rdkafka::message::OwnedHeaders>,
        deadline: Duration,
    ) -> Enqueued {
        let (tx, rx) = oneshot::channel();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(tx))
            .key(key)
            .payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        if let Err((e, _)) = self.producer.send(record) {
            // Refused by librdkafka before it took the message (queue full, unknown topic in
            // the local cache, message too large): it is not in any queue.
            return Enqueued::NotQueued(e);
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Enqueued::Unknown("the producer dropped the message's report".into()),
            Err(_) => Enqueued::Unknown(format!(
                "no answer from the queue within {} ms; the message may still be delivered",
                deadline.as_millis()
            )),
        }
    }

    /// Whether the broker answers a metadata request within `timeout` (readiness).
    pub fn reachable(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer
            .client()
            .fetch_metadata(None, timeout)
            .map(|_| ())
    }
}
