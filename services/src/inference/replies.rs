//! The API side of request/reply: each API instance reads one partition of `inference.replies`
//! (its reply address, written into every request it sends) and hands each reply to the request
//! waiting for that UUID in this instance. Several instances may share a partition: a reply for a
//! UUID this instance is not waiting for is dropped, so no caller ever sees another's reply.
//!
//! The router runs as a task of the API and retries until the broker answers, so the API comes
//! up (and answers 503 on `/infer`) while the broker is away. The partition is read from its
//! high watermark, taken before any request is sent,
//! so no reply to this instance's requests is missed. A reply that arrives after its caller
//! stopped waiting is not lost either: the worker stored it in PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use shared::messages::InferenceReply;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::kafka::TopicSpec;

#[derive(Debug, Clone)]
pub struct ReplyConfig {
    pub bootstrap: String,
    pub requests_topic: String,
    pub replies_topic: String,
    /// Partitions of the two topics when this instance has to create them.
    pub partitions: i32,
    /// The partition this instance reads; `None` picks one at random.
    pub partition: Option<i32>,
}

impl ReplyConfig {
    pub fn new(bootstrap: &str) -> Self {
        ReplyConfig {
            bootstrap: bootstrap.into(),
            requests_topic: shared::topics::INFERENCE_REQUESTS.into(),
            replies_topic: shared::topics::INFERENCE_REPLIES.into(),
            partitions: 6,
            partition: None,
        }
    }
}

pub struct ReplyRouter {
    pub topic: String,
    config: ReplyConfig,
    ready: tokio::sync::watch::Sender<Option<i32>>,
    /// The partition this instance reads, once it is reading.
    partition: tokio::sync::watch::Receiver<Option<i32>>,
    waiters: Mutex<HashMap<Uuid, oneshot::Sender<InferenceReply>>>,
}

impl std::fmt::Debug for ReplyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyRouter")
            .field("topic", &self.topic)
            .field("partition", &*self.partition.borrow())
            .finish_non_exhaustive()
    }
}

/// Creates the request and reply topics unless they exist.
async fn ensure_topics(config: &ReplyConfig) -> Result<(), KafkaError> {
    crate::kafka::ensure_topics(
        &config.bootstrap,
        &[
            TopicSpec::new(&config.requests_topic, config.partitions),
            TopicSpec::new(&config.replies_topic, config.partitions),
        ],
        Duration::from_secs(10),
    )
    .await
    .map(|_| ())
}

/// Creates the topics if needed, picks the partition and positions a reader at its end.
async fn open_reader(config: &ReplyConfig) -> Result<(StreamConsumer, i32), KafkaError> {
    ensure_topics(config).await?;
    let consumer: StreamConsumer = crate::kafka::consumer_config(&config.bootstrap)
        // Read by assignment, never committed: the group id only satisfies the client.
        .set("group.id", format!("inference-replies-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&config.replies_topic), Duration::from_secs(10))?;
    let count = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
        .ok_or(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ))?;
    let partition = match config.partition {
        Some(p) if (0..count).contains(&p) => p,
        other => {
            if let Some(p) = other {
                tracing::warn!(p, count, "reply partition out of range; picking one");
            }
            (Uuid::new_v4().as_u128() % count as u128) as i32
        }
    };
    let (_, high) =
        consumer.fetch_watermarks(&config.replies_topic, partition, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&config.replies_topic, partition, Offset::Offset(high))?;
    consumer.assign(&tpl)?;
    tracing::info!(
        topic = config.replies_topic,
        partition,
        from = high,
        "reading inference replies"
    );
    Ok((consumer, partition))
}

impl ReplyRouter {
    /// A router not reading yet: [`ReplyRouter::run`] positions its reader and routes replies.
    pub fn new(config: ReplyConfig) -> Arc<Self> {
        let (ready, partition) = tokio::sync::watch::channel(None);
        Arc::new(ReplyRouter {
            topic: config.replies_topic.clone(),
            config,
            ready,
            partition,
            waiters: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the reader (retrying with backoff until the broker answers), then hands every reply
    /// to its waiter, until `shutdown` is cancelled.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let consumer = loop {
            tokio::select! {
                opened = open_reader(&self.config) => match opened {
                    Ok((consumer, p)) => {
                        let _ = self.ready.send(Some(p));
                        break consumer;
                    }
                    Err(e) => tracing::warn!(error = %e, "inference replies not readable yet; retrying"),
                },
                _ = shutdown.cancelled() => return,
            }
            if !backoff.wait(&shutdown).await {
                return;
            }
        };
        loop {
            let m = tokio::select! {
                m = consumer.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            match m {
                Ok(m) => match m.payload().map(InferenceReply::decode) {
                    Some(Ok(reply)) => self.deliver(reply),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, offset = m.offset(), "undecodable reply skipped")
                    }
                    None => {}
                },
                Err(e) => tracing::warn!(error = %e, "reply consumer error"),
            }
        }
    }

    /// This instance's reply address, once its reader is positioned; `None` before.
    pub fn address(&self) -> Option<(&str, i32)> {
        (*self.partition.borrow()).map(|p| (self.topic.as_str(), p))
    }

    /// Resolves once the reply address is known.
    pub async fn ready(&self) {
        let mut rx = self.partition.clone();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Registers interest in `id`'s reply. Call before sending the request.
    pub fn wait_for(&self, id: Uuid) -> oneshot::Receiver<InferenceReply> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        rx
    }

    /// The caller stopped waiting.
    pub fn forget(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    /// Requests of this instance still waiting for a reply.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn deliver(&self, reply: InferenceReply) {
        if let Some(tx) = self.lock().remove(&reply.id) {
            let _ = tx.send(reply);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<InferenceReply>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}
