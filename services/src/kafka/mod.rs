//! How the services talk to Kafka, in one place: the client settings every producer and
//! consumer starts from, the settings of a consumer tuned for a flash sale, and the topics each
//! service creates at start.
//!
//! The services run unchanged on this project's broker, Kafka or Redpanda, so they depend on
//! nothing a Kafka cluster does not do: a consumer that subscribes to a topic that does not exist
//! yet waits for librdkafka's next metadata refresh (5 minutes by default) before it sees it, so
//! each service creates what it needs before it produces or subscribes.
//!
//! Security (TLS and SASL) comes from the environment ([`KafkaSecurity`], in `security`), is
//! checked once at start by each binary and then applies to every client [`client_config`]
//! builds.

mod security;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub use security::{KafkaSecurity, KafkaSecurityError};

/// The first wait before reconnecting to a broker that went away, ms (librdkafka doubles it,
/// with jitter, up to [`RECONNECT_BACKOFF_MAX_MS`]).
pub const RECONNECT_BACKOFF_MS: u64 = 100;
/// The longest wait between reconnect attempts, ms (librdkafka's default is 10 s).
pub const RECONNECT_BACKOFF_MAX_MS: u64 = 250;

/// What every client of the services starts from.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        // New topics and partitions (CreatePartitions) are seen within 10 s, not 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "10000")
        // Requests here are small and latency-bound (a buy, a reply); with two in flight, Nagle
        // holds the second until the first is acknowledged. The broker sets TCP_NODELAY on its
        // side for the same reason. `order-bench ingest`, six interleaved pairs at 50
        // connections: 22.4k-28.8k buys/s without Nagle against 21.4k-29.5k with it, ahead in
        // four of the six pairs (means 26.3k and 24.4k).
        .set("socket.nagle.disable", "true")
        // After a broker comes back, the clients must be back within a fraction of a second:
        // librdkafka doubles its reconnect backoff up to 10 s by default, so after a 6 s outage
        // an API instance answered 503 for up to 9.4 s more, its buyers retrying into a sale
        // that could have gone on (issue 28). A refused connect attempt to a local broker
        // costs microseconds, so trying every 100-250 ms while it is away costs nothing.
        .set("reconnect.backoff.ms", RECONNECT_BACKOFF_MS.to_string())
        .set(
            "reconnect.backoff.max.ms",
            RECONNECT_BACKOFF_MAX_MS.to_string(),
        );
    security::apply(&mut c);
    c
}

/// A consumer's settings for a flash sale, on top of [`client_config`].
///
/// `fetch.queue.backoff.ms`: librdkafka stops fetching a partition once `queued.min.messages`
/// (100,000) wait in its local queue and looks again only after this backoff, 1 s by default;
/// a consumer that empties its queue in 0.1 s then idles for 0.9 s while the backlog waits in
/// the broker. 20 ms keeps the fetcher close behind the consumer without busy-waking it (0
/// makes it spin on a 2-core machine). `kafka-perf` measures the consume rate both ways; the
/// order workers, bound by PostgreSQL at ~50-90k orders/s, drained a 200k backlog at the same
/// rate within noise either way (`order-bench drain`), but a faster consumer (the inference
/// workers, the reply readers) is held to ~150k/s by the default.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("fetch.queue.backoff.ms", "20");
    c
}

/// A topic a service needs.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Topic-level settings (e.g. `retention.ms`), applied when the service creates it.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: &str, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            config: Vec::new(),
        }
    }
}

/// What [`ensure_topics`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    Created,
    /// It existed with the partitions asked for.
    Existed,
    /// It existed with another partition count: used as it is (reported, never changed).
    ExistedWith {
        partitions: i32,
    },
}

/// Creates each topic unless it exists, with the cluster's default replication factor (-1:
/// one on a single broker, the cluster's choice on Kafka). A topic made earlier with other
/// settings is used as it is and reported.
pub async fn ensure_topics(
    bootstrap: &str,
    topics: &[TopicSpec],
    timeout: Duration,
) -> Result<Vec<(String, TopicState)>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            t.config.iter().fold(
                NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1)),
                |n, (k, v)| n.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let mut out = Vec::new();
    for (spec, result) in topics.iter().zip(admin.create_topics(&new, &opts).await?) {
        match result {
            Ok(_) => {
                tracing::info!(topic = %spec.name, partitions = spec.partitions, "created topic");
                out.push((spec.name.clone(), TopicState::Created));
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let state = match partitions(bootstrap, &spec.name, timeout).await? {
                    Some(n) if n != spec.partitions => {
                        tracing::warn!(
                            topic = %spec.name,
                            partitions = n,
                            configured = spec.partitions,
                            "the topic exists with another partition count; using it as it is"
                        );
                        TopicState::ExistedWith { partitions: n }
                    }
                    _ => TopicState::Existed,
                };
                out.push((spec.name.clone(), state));
            }
            Err((topic, code)) => {
                tracing::error!(topic, ?code, "cannot create a topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(out)
}

/// Creates the topics, retrying with backoff while the cluster cannot be reached (a service
/// may start before its broker), for at most `patience`; the last error after that.
pub async fn ensure_topics_patiently(
    bootstrap: &str,
    topics: &[TopicSpec],
    patience: Duration,
) -> Result<Vec<(String, TopicState)>, KafkaError> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match ensure_topics(bootstrap, topics, Duration::from_secs(10)).await {
            Ok(done) => return Ok(done),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => tracing::warn!(error = %e, "cannot create the topics yet; retrying"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Deletes `topics` (a run's own topics on a shared cluster); an unknown topic is not an error.
pub async fn delete_topics(bootstrap: &str, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.delete_topics(topics, &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// The partition count of `topic`, if it exists.
async fn partitions(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, KafkaError> {
    let consumer: BaseConsumer = client_config(bootstrap).create()?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = consumer.fetch_metadata(Some(&topic), timeout)?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32))
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
}
