//! The inference worker's batch handler: a model loaded once, before the worker joins the
//! `inference-workers` group on `inference.requests`. Per micro-batch it:
//!
//! 1. dead-letters what cannot be decoded;
//! 2. counts an attempt on each pending request, durably ([`store::claim`]); a redelivered
//!    request that is already finished is answered again from its stored result, and so is a
//!    second copy of a request in the same micro-batch, once the first is finished;
//! 3. answers without running the model: `expired` past the deadline, `failed` for another
//!    model's request, and dead-letters (then fails) a request past `max_attempts`: one that
//!    kept crashing workers;
//! 4. runs the model on the rest; on a model crash it reloads the model and runs that batch
//!    again one request at a time, each run counted, so a poison request ends up alone;
//! 5. stores the results and produces each reply to the request's reply address keyed by its
//!    UUID; only then does the worker commit the offsets.
//!
//! A crash anywhere before 5. completes leaves the offsets uncommitted: the requests come back
//! (to this worker or another) and are finished exactly once in the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use shared::messages::{InferenceReply, InferenceRequest, InferenceStatus, CORRELATION_ID_HEADER};
use shared::time::now_ms;
use sqlx::PgPool;

use super::model::{Model, ModelError, ModelOutput};
use super::store;
use crate::worker::{BatchHandler, DbFailure, HandlerError, PendingAcks, WorkerContext};

/// How a worker serves its model.
#[derive(Debug, Clone)]
pub struct InferenceConfig<C> {
    /// Model runs a request may take part in; past it the request is dead-lettered.
    pub max_attempts: i32,
    /// The deadline of a request a Kafka client produced itself (it names none): the model may
    /// take long to load, so it is generous.
    pub default_deadline: Duration,
    pub model: C,
}

impl<C> InferenceConfig<C> {
    pub fn new(model: C) -> Self {
        InferenceConfig {
            max_attempts: 3,
            default_deadline: Duration::from_secs(24 * 3600),
            model,
        }
    }
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
    pub batch_seconds: Histogram,
}

impl Default for InferenceStats {
    fn default() -> Self {
        InferenceStats {
            requests: Counter::default(),
            done: Counter::default(),
            failed: Counter::default(),
            expired: Counter::default(),
            poisoned: Counter::default(),
            model_crashes: Counter::default(),
            redelivered: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        }
    }
}

/// The inference worker's batch handler: a model loaded once and the table of requests.
pub struct InferenceHandler<M: Model> {
    config: InferenceConfig<M::Config>,
    model: M,
    pool: PgPool,
    stats: Arc<InferenceStats>,
}

impl<M: Model> std::fmt::Debug for InferenceHandler<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceHandler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<M: Model> InferenceHandler<M> {
    /// Loads the model (once; it may take minutes). The worker joins its group only after this,
    /// so no partition is taken before the model can serve it.
    pub async fn load(
        config: InferenceConfig<M::Config>,
        pool: PgPool,
    ) -> Result<Self, ModelError> {
        let started = Instant::now();
        let model = M::load(&config.model).await?;
        tracing::info!(model = model.name(), took = ?started.elapsed(), "model loaded");
        Ok(InferenceHandler {
            config,
            model,
            pool,
            stats: Arc::default(),
        })
    }

    pub fn stats(&self) -> Arc<InferenceStats> {
        self.stats.clone()
    }
}

impl<M: Model> BatchHandler for InferenceHandler<M> {
    const METRICS_PREFIX: &'static str = "inference_worker";

    fn database(&self) -> Option<PgPool> {
        Some(self.pool.clone())
    }

    fn register_metrics(&self, r: &mut Registry) {
        let s = &self.stats;
        r.register("requests", "Requests received", s.requests.clone());
        r.register("done", "Requests answered with an output", s.done.clone());
        r.register("failed", "Requests answered failed", s.failed.clone());
        r.register(
            "expired",
            "Requests past their deadline, not run",
            s.expired.clone(),
        );
        r.register(
            "poisoned",
            "Requests dead-lettered after max attempts",
            s.poisoned.clone(),
        );
        r.register(
            "model_crashes",
            "Model crashes (reloaded)",
            s.model_crashes.clone(),
        );
        r.register(
            "redelivered",
            "Finished requests seen again and re-answered",
            s.redelivered.clone(),
        );
        r.register(
            "batch_seconds",
            "Model run time per micro-batch",
            s.batch_seconds.clone(),
        );
    }

    async fn handle(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        ctx: &WorkerContext,
    ) -> Result<PendingAcks, HandlerError> {
        self.process(batch, ctx).await
    }
}

impl<M: Model> InferenceHandler<M> {
    async fn process(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        ctx: &WorkerContext,
    ) -> Result<PendingAcks, HandlerError> {
        let mut acks = PendingAcks::none();
        let mut reqs = Vec::with_capacity(batch.len());
        for m in batch {
            let headers: Vec<(&str, &[u8])> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .filter_map(|h| h.value.map(|v| (h.key, v)))
                        .collect()
                })
                .unwrap_or_default();
            let default_deadline = now_ms() + self.config.default_deadline.as_millis() as i64;
            let decoded = m
                .payload()
                .map(|p| InferenceRequest::decode(p, &headers, default_deadline));
            match decoded {
                Some(Ok(r)) => reqs.push((r, m)),
                Some(Err(e)) => ctx.dead_letter(m, &e.to_string()).await?,
                None => ctx.dead_letter(m, "empty message").await?,
            }
        }
        self.stats.requests.inc_by(reqs.len() as u64);
        // Micro-batches still to run; after a model crash, one request each.
        let mut todo = vec![reqs];
        while let Some(group) = todo.pop() {
            let (group, repeats) = split_repeats(group);
            if !repeats.is_empty() {
                // After this group: they find their request finished, and are answered from it.
                todo.push(repeats);
            }
            if group.is_empty() {
                continue;
            }
            let refs: Vec<&InferenceRequest> = group.iter().map(|(r, _)| r).collect();
            let pool = &self.pool;
            let attempts = match ctx
                .retry_db("claim inference requests", || store::claim(pool, &refs))
                .await
            {
                Ok(a) => a,
                Err(DbFailure::Permanent(e)) => {
                    isolate(group, e, &mut todo, ctx).await?;
                    continue;
                }
                Err(stopped) => return Err(stopped.into()),
            };
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
                        ctx.dead_letter(m, &why).await?;
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
                let again = ctx
                    .retry_db("read finished requests", || {
                        store::finished(pool, &finished)
                    })
                    .await?;
                self.stats.redelivered.inc_by(again.len() as u64);
                // Stored already: reply only.
                send_replies(ctx, &group, &again, &mut acks).await;
            }
            if !runnable.is_empty() {
                let inputs: Vec<Value> = runnable.iter().map(|(r, _)| r.input.clone()).collect();
                let t = Instant::now();
                match self.model.infer(&inputs).await {
                    Ok(outputs) if outputs.len() == inputs.len() => {
                        self.stats.batch_seconds.observe(t.elapsed().as_secs_f64());
                        for ((r, _), out) in runnable.iter().zip(outputs) {
                            replies.push(reply_for(r.id, out));
                        }
                    }
                    result => {
                        let why = match result {
                            Err(e) => e.to_string(),
                            Ok(o) => format!("{} outputs for {} inputs", o.len(), inputs.len()),
                        };
                        self.stats.model_crashes.inc();
                        tracing::warn!(reason = %why, requests = runnable.len(), "model crashed; reloading it");
                        self.model = M::load(&self.config.model)
                            .await
                            .map_err(|e| HandlerError::Fatal(Box::new(e)))?;
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
            let pool = &self.pool;
            match ctx
                .retry_db("store inference results", || {
                    store::store_results(pool, &replies)
                })
                .await
            {
                Ok(()) => send_replies(ctx, &group, &replies, &mut acks).await,
                Err(DbFailure::Permanent(e)) => isolate(group, e, &mut todo, ctx).await?,
                Err(stopped) => return Err(stopped.into()),
            }
        }
        Ok(acks)
    }
}

/// Produces each reply to its request's reply address; the worker commits the batch once they
/// are acknowledged. A reply that cannot be delivered (its topic is gone) is logged: the stored
/// result stays readable through `GET /infer/{id}`.
async fn send_replies(
    ctx: &WorkerContext,
    group: &[Request<'_>],
    replies: &[InferenceReply],
    acks: &mut PendingAcks,
) {
    for reply in replies {
        let Some((req, _)) = group.iter().find(|(r, _)| r.id == reply.id) else {
            continue;
        };
        // A request with no reply address (a Kafka client that reads results from the table).
        let Some(to) = req.reply_to.as_ref() else {
            continue;
        };
        let payload = reply.encode();
        let key = reply.id.to_string();
        let mut record = FutureRecord::to(&to.topic).key(&key).payload(&payload);
        if let Some(p) = to.partition {
            record = record.partition(p);
        }
        if let Some(c) = &to.correlation_id {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: CORRELATION_ID_HEADER,
                value: Some(c),
            }));
        }
        let what = format!("reply {} to {} (the result is stored)", req.id, to.topic);
        acks.send(ctx.producer(), record, what).await;
    }
}

/// A model's answer for one request, as a reply the database can store: an output holding a NUL
/// character (which `jsonb` cannot hold) fails the request with that reason, and NULs in an
/// error text are replaced.
fn reply_for(id: uuid::Uuid, out: ModelOutput) -> InferenceReply {
    match out {
        Ok(o) if shared::messages::has_nul(&o) => InferenceReply {
            id,
            status: InferenceStatus::Failed,
            output: None,
            error: Some(
                "the model's output contains a NUL character, which cannot be stored".into(),
            ),
        },
        Ok(o) => InferenceReply {
            id,
            status: InferenceStatus::Done,
            output: Some(o),
            error: None,
        },
        Err(e) => InferenceReply {
            id,
            status: InferenceStatus::Failed,
            output: None,
            error: Some(e.replace('\0', "\u{FFFD}")),
        },
    }
}

/// Splits off the later copies of a request that is in `group` more than once (a backend sent
/// it twice, or an API sent again a request whose first send had an unknown outcome): one
/// statement cannot claim a row twice (PostgreSQL refuses the whole statement, every time), and
/// the model is to run once per request.
fn split_repeats(group: Vec<Request<'_>>) -> (Vec<Request<'_>>, Vec<Request<'_>>) {
    let mut seen = std::collections::HashSet::with_capacity(group.len());
    group.into_iter().partition(|(r, _)| seen.insert(r.id))
}

/// A request of a micro-batch, with the message it came in.
type Request<'m> = (InferenceRequest, &'m BorrowedMessage<'m>);

/// A group of requests the database refused for their data: split it into single requests to
/// run again, or, for one request alone, dead-letter it with the database's reason (it is not
/// answered: the table could not hold its row).
async fn isolate<'m>(
    group: Vec<Request<'m>>,
    e: sqlx::Error,
    todo: &mut Vec<Vec<Request<'m>>>,
    ctx: &WorkerContext,
) -> Result<(), HandlerError> {
    if group.len() == 1 {
        let (_, m) = &group[0];
        return ctx
            .dead_letter(m, &format!("refused by the database: {e}"))
            .await;
    }
    // `todo` is a stack: push in reverse, so they run in queue order.
    for one in group.into_iter().rev() {
        todo.push(vec![one]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_errors_the_database_cannot_hold_become_storable_failures() {
        let id = uuid::Uuid::new_v4();
        let r = reply_for(id, Ok(serde_json::json!({"sql": "select 1\u{0}"})));
        assert_eq!(r.status, InferenceStatus::Failed);
        assert!(r.error.unwrap().contains("NUL"));
        let r = reply_for(id, Err("bad\u{0}input".into()));
        assert_eq!(r.error.as_deref(), Some("bad\u{FFFD}input"));
        let r = reply_for(id, Ok(serde_json::json!({"sql": "select 1"})));
        assert_eq!(r.status, InferenceStatus::Done);
    }
}
