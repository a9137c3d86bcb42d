//! The inference worker: loads its model once, joins the `inference-workers` group on
//! `inference.requests`, and per micro-batch:
//!
//! 1. dead-letters what cannot be decoded;
//! 2. counts an attempt on each pending request, durably ([`store::claim`]); a redelivered
//!    request that is already finished is answered again from its stored result;
//! 3. answers without running the model: `expired` past the deadline, `failed` for another
//!    model's request, and dead-letters (then fails) a request past `max_attempts`: one that
//!    kept crashing workers;
//! 4. runs the model on the rest; on a model crash it reloads the model and runs that batch
//!    again one request at a time, each run counted, so a poison request ends up alone;
//! 5. stores the results, produces each reply to the request's reply address keyed by its
//!    UUID, and only then commits the offsets.
//!
//! A crash anywhere before 5. completes leaves the offsets uncommitted: the requests come back
//! (to this worker or another) and are finished exactly once in the table.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use shared::messages::{InferenceReply, InferenceRequest, InferenceStatus};
use sqlx::PgPool;

use super::model::{Model, ModelError};
use super::store;
use crate::queue;

#[derive(Debug, Clone)]
pub struct InferenceWorkerConfig<C> {
    pub bootstrap: String,
    pub group_id: String,
    pub topic: String,
    pub dead_letter_topic: String,
    /// Largest micro-batch handed to the model.
    pub max_batch: usize,
    /// Model runs a request may take part in; past it the request is dead-lettered.
    pub max_attempts: i32,
    pub session_timeout_ms: u32,
    pub model: C,
}

impl<C> InferenceWorkerConfig<C> {
    pub fn new(bootstrap: &str, model: C) -> Self {
        InferenceWorkerConfig {
            bootstrap: bootstrap.into(),
            group_id: "inference-workers".into(),
            topic: shared::topics::INFERENCE_REQUESTS.into(),
            dead_letter_topic: shared::topics::INFERENCE_DEAD_LETTER.into(),
            max_batch: 32,
            max_attempts: 3,
            session_timeout_ms: 10_000,
            model,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InferenceWorkerError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Counters for `/metrics`.
#[derive(Debug)]
pub struct InferenceStats {
    pub requests: Counter,
    pub done: Counter,
    pub failed: Counter,
    pub expired: Counter,
    pub poisoned: Counter,
    pub model_crashes: Counter,
    pub redelivered: Counter,
    pub db_retries: Counter,
    pub batch_seconds: Histogram,
}

impl InferenceStats {
    fn new() -> Self {
        InferenceStats {
            requests: Counter::default(),
            done: Counter::default(),
            failed: Counter::default(),
            expired: Counter::default(),
            poisoned: Counter::default(),
            model_crashes: Counter::default(),
            redelivered: Counter::default(),
            db_retries: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("inference_worker");
        r.register("requests", "Requests received", self.requests.clone());
        r.register(
            "done",
            "Requests answered with an output",
            self.done.clone(),
        );
        r.register("failed", "Requests answered failed", self.failed.clone());
        r.register(
            "expired",
            "Requests past their deadline, not run",
            self.expired.clone(),
        );
        r.register(
            "poisoned",
            "Requests dead-lettered after max attempts",
            self.poisoned.clone(),
        );
        r.register(
            "model_crashes",
            "Model crashes (reloaded)",
            self.model_crashes.clone(),
        );
        r.register(
            "redelivered",
            "Finished requests seen again and re-answered",
            self.redelivered.clone(),
        );
        r.register(
            "db_retries",
            "Database calls retried",
            self.db_retries.clone(),
        );
        r.register(
            "batch_seconds",
            "Model run time per micro-batch",
            self.batch_seconds.clone(),
        );
    }
}

pub struct InferenceWorker<M: Model> {
    consumer: StreamConsumer,
    core: Core<M>,
    pub stats: Arc<InferenceStats>,
}

/// Everything but the consumer, so a batch borrowed from the consumer can be processed with
/// `&mut` access to the model.
struct Core<M: Model> {
    config: InferenceWorkerConfig<M::Config>,
    model: M,
    producer: FutureProducer,
    pool: PgPool,
    stats: Arc<InferenceStats>,
}

impl<M: Model> std::fmt::Debug for InferenceWorker<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceWorker")
            .field("config", &self.core.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl<M: Model> InferenceWorker<M> {
    /// Loads the model (once), then joins the group: no partition is taken before the worker
    /// can serve it.
    pub async fn start(
        config: InferenceWorkerConfig<M::Config>,
        pool: PgPool,
    ) -> Result<Self, InferenceWorkerError> {
        let started = Instant::now();
        let model = M::load(&config.model).await?;
        tracing::info!(model = model.name(), took = ?started.elapsed(), "model loaded");
        let consumer = queue::group_consumer(
            &config.bootstrap,
            &config.group_id,
            &config.topic,
            config.session_timeout_ms,
        )?;
        let producer = queue::durable_producer(&config.bootstrap)?;
        let stats = Arc::new(InferenceStats::new());
        Ok(InferenceWorker {
            consumer,
            core: Core {
                config,
                model,
                producer,
                pool,
                stats: stats.clone(),
            },
            stats,
        })
    }

    /// Serves until `stop` resolves, then commits what it finished and leaves the group.
    pub async fn run(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), InferenceWorkerError> {
        tokio::pin!(stop);
        let InferenceWorker {
            consumer, mut core, ..
        } = self;
        while let Some(batch) = queue::recv_batch(&consumer, core.config.max_batch, &mut stop).await
        {
            core.process(&batch).await?;
            queue::commit_batch(&consumer, &batch, CommitMode::Async)?;
        }
        tracing::info!("inference worker stopping");
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit (nothing to commit?)");
        }
        Ok(())
    }
}

impl<M: Model> Core<M> {
    async fn process(&mut self, batch: &[BorrowedMessage<'_>]) -> Result<(), InferenceWorkerError> {
        let mut reqs = Vec::with_capacity(batch.len());
        for m in batch {
            match m.payload().map(InferenceRequest::decode) {
                Some(Ok(r)) => reqs.push((r, m)),
                Some(Err(e)) => self.dead_letter(m, &e.to_string()).await?,
                None => self.dead_letter(m, "empty message").await?,
            }
        }
        self.stats.requests.inc_by(reqs.len() as u64);
        // Micro-batches still to run; after a model crash, one request each.
        let mut todo = vec![reqs];
        while let Some(group) = todo.pop() {
            if group.is_empty() {
                continue;
            }
            let refs: Vec<&InferenceRequest> = group.iter().map(|(r, _)| r).collect();
            let attempts = self.retry_db(|pool| store::claim(pool, &refs)).await;
            let mut replies = Vec::new();
            let mut runnable = Vec::new();
            let now = now_ms();
            for (r, m) in &group {
                let reply = |status, error: &str| InferenceReply {
                    id: r.id,
                    status,
                    output: None,
                    error: Some(error.to_string()),
                };
                match attempts.get(&r.id) {
                    None => {} // finished before: answered again below
                    Some(&n) if n > self.config.max_attempts => {
                        let why = format!("poison: {} model runs crashed on it", n - 1);
                        self.dead_letter(m, &why).await?;
                        self.stats.poisoned.inc();
                        replies.push(reply(InferenceStatus::Failed, &why));
                    }
                    Some(_) if r.deadline_ms <= now => {
                        replies.push(reply(
                            InferenceStatus::Expired,
                            "deadline passed before it ran",
                        ));
                    }
                    Some(_) if r.model.as_deref().is_some_and(|n| n != self.model.name()) => {
                        let why = format!(
                            "unknown model {:?}; this worker serves {:?}",
                            r.model,
                            self.model.name()
                        );
                        replies.push(reply(InferenceStatus::Failed, &why));
                    }
                    Some(_) => runnable.push((r, *m)),
                }
            }
            let finished: Vec<uuid::Uuid> = group
                .iter()
                .filter(|(r, _)| !attempts.contains_key(&r.id))
                .map(|(r, _)| r.id)
                .collect();
            if !finished.is_empty() {
                let again = self.retry_db(|pool| store::finished(pool, &finished)).await;
                self.stats.redelivered.inc_by(again.len() as u64);
                // Stored already: reply only.
                self.send_replies(&group, &again).await;
            }
            if !runnable.is_empty() {
                let inputs: Vec<Value> = runnable.iter().map(|(r, _)| r.input.clone()).collect();
                let t = Instant::now();
                match self.model.infer(&inputs).await {
                    Ok(outputs) if outputs.len() == inputs.len() => {
                        self.stats.batch_seconds.observe(t.elapsed().as_secs_f64());
                        for ((r, _), out) in runnable.iter().zip(outputs) {
                            replies.push(match out {
                                Ok(o) => InferenceReply {
                                    id: r.id,
                                    status: InferenceStatus::Done,
                                    output: Some(o),
                                    error: None,
                                },
                                Err(e) => InferenceReply {
                                    id: r.id,
                                    status: InferenceStatus::Failed,
                                    output: None,
                                    error: Some(e),
                                },
                            });
                        }
                    }
                    result => {
                        let why = match result {
                            Err(e) => e.to_string(),
                            Ok(o) => format!("{} outputs for {} inputs", o.len(), inputs.len()),
                        };
                        self.stats.model_crashes.inc();
                        tracing::warn!(reason = %why, requests = runnable.len(), "model crashed; reloading it");
                        self.model = M::load(&self.config.model).await?;
                        // Again, one by one: only a poison request keeps failing.
                        let ids: Vec<uuid::Uuid> = runnable.iter().map(|(r, _)| r.id).collect();
                        for (r, m) in group.iter().filter(|(r, _)| ids.contains(&r.id)) {
                            todo.push(vec![(r.clone(), *m)]);
                        }
                    }
                }
            }
            for r in &replies {
                match r.status {
                    InferenceStatus::Done => self.stats.done.inc(),
                    InferenceStatus::Failed => self.stats.failed.inc(),
                    InferenceStatus::Expired => self.stats.expired.inc(),
                };
            }
            self.retry_db(|pool| store::store_results(pool, &replies))
                .await;
            self.send_replies(&group, &replies).await;
        }
        Ok(())
    }

    /// Produces each reply to its request's reply address and waits for the acknowledgements.
    /// A reply that cannot be delivered (its topic is gone) is logged: the stored result stays
    /// readable through `GET /infer/{id}`.
    async fn send_replies(
        &self,
        group: &[(InferenceRequest, &BorrowedMessage<'_>)],
        replies: &[InferenceReply],
    ) {
        let sends = replies.iter().filter_map(|reply| {
            let (req, _) = group.iter().find(|(r, _)| r.id == reply.id)?;
            let payload = reply.encode();
            let key = reply.id.to_string();
            let producer = &self.producer;
            Some(async move {
                let record = FutureRecord::to(&req.reply_topic)
                    .partition(req.reply_partition)
                    .key(&key)
                    .payload(&payload);
                if let Err((e, _)) = producer.send(record, Duration::from_secs(30)).await {
                    tracing::warn!(id = %req.id, topic = req.reply_topic, error = %e, "reply not delivered; the result is stored");
                }
            })
        });
        futures_util::future::join_all(sends).await;
    }

    async fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), InferenceWorkerError> {
        queue::dead_letter(&self.producer, &self.config.dead_letter_topic, m, reason).await?;
        Ok(())
    }

    /// Retries a database call with backoff until it succeeds: the offsets stay uncommitted
    /// meanwhile, so nothing is skipped.
    async fn retry_db<'a, T, F, Fut>(&'a self, f: F) -> T
    where
        F: Fn(&'a PgPool) -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut backoff = Duration::from_millis(50);
        loop {
            match f(&self.pool).await {
                Ok(v) => return v,
                Err(e) => {
                    self.stats.db_retries.inc();
                    tracing::warn!(error = %e, retry_in = ?backoff, "database call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
