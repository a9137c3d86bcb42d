//! `AppState`: everything the handlers share: the producer, the database pool, the token and
//! receipt keys, the admission budgets, the inference reply router and the metrics.

use crate::orders::EventSigner;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::admission::Admission;
use super::auth::TokenKeys;
use super::dashboard::queue_view::QueueView;
use super::dashboard::Dashboard;
use super::enqueue::DurableProducer;
use super::limits::{Limiters, RateLimits};
use super::purchase_token::PurchaseTokens;
use super::receipt::Receipts;
use crate::inference::pending::PendingRows;
use crate::inference::replies::{ReplyConfig, ReplyRouter};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address the HTTP server binds (port 0: any free port).
    pub listen: SocketAddr,
    pub bootstrap: String,
    /// The order topic, and its partitions when this instance creates it.
    pub topic: String,
    pub topic_partitions: i32,
    pub jwt_secret: String,
    /// Trust `user_id` from the body when there is no token. Benchmarks only.
    pub load_test_mode: bool,
    /// How long the producer waits for more buys to send with one (librdkafka's `linger.ms`).
    /// Default 0: the producer keeps at most two requests out, and the buys that arrive
    /// meanwhile go together in the next (see `DurableProducer::new`), so a wait would only
    /// add to each buy's latency. Measured with `order-bench ingest --linger-ms`.
    pub producer_linger: Duration,
    /// The same for `POST /infer`'s requests, which go through a producer of their own, so a
    /// caller waiting for the model's answer never queues behind a burst of buys. Measured
    /// with `infer-bench`.
    pub infer_producer_linger: Duration,
    /// How long a buy may wait for the queue's acknowledgement before the API answers 503 (the
    /// bound a client sees).
    pub enqueue_timeout: Duration,
    /// How often the admission budgets are refreshed (stock, committed offsets, other
    /// instances' queued units).
    pub items_refresh: Duration,
    /// The order workers' consumer group: its committed offsets say which queued buys are
    /// decided.
    pub worker_group: String,
    /// Rate limits on `/buy` (per user, per address, per instance).
    pub limits: RateLimits,
    /// Take the client's address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// How long a purchase token from `GET /items/{id}/token` is good for.
    pub purchase_token_ttl: Duration,
    /// Serve the live dashboard (`/dashboard`). It shows user and request ids of the latest
    /// orders: off unless asked for.
    pub dashboard: bool,
    pub inference_topic: String,
    /// Longest `?wait_ms=` honoured on `POST /infer`.
    pub infer_max_wait: Duration,
    /// An inference request's deadline when the caller gives none, and the longest allowed.
    pub infer_deadline: Duration,
    pub infer_max_deadline: Duration,
    /// Where replies to this instance go (see [`ReplyRouter`]).
    pub replies: ReplyConfig,
    /// The header read timeout and the cap on open connections (see `api/connections.rs`).
    pub connections: super::connections::ConnectionLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            bootstrap: "127.0.0.1:9092".into(),
            topic: shared::topics::SECKILL_ORDERS.into(),
            topic_partitions: 6,
            jwt_secret: String::new(),
            load_test_mode: false,
            enqueue_timeout: Duration::from_secs(5),
            producer_linger: Duration::ZERO,
            infer_producer_linger: Duration::ZERO,
            items_refresh: Duration::from_millis(250),
            worker_group: "order-workers".into(),
            limits: RateLimits::default(),
            trust_forwarded_for: false,
            purchase_token_ttl: Duration::from_secs(60),
            dashboard: false,
            inference_topic: shared::topics::INFERENCE_REQUESTS.into(),
            infer_max_wait: Duration::from_secs(30),
            infer_deadline: Duration::from_secs(60),
            infer_max_deadline: Duration::from_secs(600),
            replies: ReplyConfig::new("127.0.0.1:9092"),
            connections: super::connections::ConnectionLimits::default(),
        }
    }
}

/// How long librdkafka keeps trying a message, for an API that waits `enqueue_timeout`.
///
/// librdkafka looks for timed-out messages about once a second, so it must give up at least that
/// much before the API stops waiting: then a message that was never sent (the broker was away)
/// is reported as certainly not queued in time, and the client hears `not_accepted` rather
/// than `outcome_unknown`. A message that was sent and not answered stays unknown either way.
fn give_up_after(enqueue_timeout: Duration) -> Duration {
    const SCAN_SLACK: Duration = Duration::from_millis(1200);
    if enqueue_timeout >= 2 * SCAN_SLACK {
        enqueue_timeout - SCAN_SLACK
    } else {
        enqueue_timeout / 2
    }
}

/// A setting the API cannot run with.
#[derive(Debug, thiserror::Error)]
#[error("invalid API configuration: {0}")]
pub struct InvalidApiConfig(pub String);

impl ApiConfig {
    /// The one place the API's settings are checked (flags, env, tests, the demo).
    pub fn validate(&self) -> Result<(), InvalidApiConfig> {
        let bad = |m: &str| Err(InvalidApiConfig(m.into()));
        if self.jwt_secret.len() < 32 {
            return bad("the JWT secret must be at least 32 bytes");
        }
        if self.producer_linger > Duration::from_secs(1) {
            return bad("the producer linger must be at most 1000 ms");
        }
        if self.infer_producer_linger > Duration::from_secs(1) {
            return bad("the inference producer linger must be at most 1000 ms");
        }
        if !(1..=10_000).contains(&self.topic_partitions) {
            return bad("the order topic's partitions must be within 1..=10000");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.enqueue_timeout) {
            return bad("the enqueue timeout must be within 100..=60000 ms");
        }
        if self.infer_max_wait > Duration::from_secs(600)
            || !(Duration::from_millis(1)..=Duration::from_secs(86_400))
                .contains(&self.infer_deadline)
        {
            return bad("the infer max wait must be at most 600000 ms and the infer deadline within 1..=86400000 ms");
        }
        let r = &self.replies;
        if !(1..=1000).contains(&r.partitions)
            || r.partition.is_some_and(|p| !(0..r.partitions).contains(&p))
        {
            return bad(
                "inference partitions must be within 1..=1000 and the reply partition below it",
            );
        }
        if self.items_refresh.is_zero() || self.items_refresh > Duration::from_secs(60) {
            return bad("the items refresh period must be within 1..=60000 ms");
        }
        if self.worker_group.is_empty() {
            return bad("the worker group must not be empty");
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.purchase_token_ttl)
        {
            return bad("the purchase token lifetime must be within 1..=3600 s");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300))
            .contains(&self.connections.header_read_timeout)
        {
            return bad("the header read timeout must be within 100..=300000 ms");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300))
            .contains(&self.connections.body_read_timeout)
        {
            return bad("the body read timeout must be within 100..=300000 ms");
        }
        if !(1..=1_000_000).contains(&self.connections.max_connections) {
            return bad("the open connections cap must be within 1..=1000000");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabel {
    pub route: std::borrow::Cow<'static, str>,
    pub status: u16,
}

/// Which rate limit (`user`, `address`, `global`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: &'static str,
}

/// The reasons of `order_api_admission_refused_total`.
pub const REFUSALS: [&str; 7] = [
    "sold_out",
    "claimed",
    "duplicate",
    "key_reused",
    "not_open",
    "ended",
    "token",
];

/// Why a buy was refused before the queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct ApiMetrics {
    pub registry: Registry,
    pub responses: Family<ResponseLabel, Counter>,
    /// Time from a valid buy to the queue's acknowledgement.
    pub enqueue_seconds: Histogram,
    /// Requests refused by a rate limit, by limit (`user`, `address`, `global` for buys,
    /// `status_address` for status reads).
    pub rate_limited: Family<LimitLabel, Counter>,
    /// Buys admission refused before the queue, by reason (`sold_out`, `claimed`, `duplicate`,
    /// `not_open`, `ended`, `token`).
    pub refused: Family<ReasonLabel, Counter>,
}

impl ApiMetrics {
    fn new(limits: &RateLimits) -> Self {
        let mut registry = Registry::with_prefix("order_api");
        // The limits in force, beside their hits: a dashboard shows both.
        let limit_rate = Family::<LimitLabel, Gauge>::default();
        let limit_burst = Family::<LimitLabel, Gauge>::default();
        for (name, limit) in [
            ("user", limits.per_user),
            ("address", limits.per_address),
            ("global", limits.global),
            ("status_address", limits.status_per_address),
        ] {
            if let Some(l) = limit {
                limit_rate
                    .get_or_create(&LimitLabel { limit: name })
                    .set(l.rate as i64);
                limit_burst
                    .get_or_create(&LimitLabel { limit: name })
                    .set(l.burst as i64);
            }
        }
        registry.register(
            "rate_limit_per_second",
            "Rate limit in force on /buy, requests per second, by limit (absent: off)",
            limit_rate,
        );
        registry.register(
            "rate_limit_burst",
            "Burst allowed by each rate limit on /buy",
            limit_burst,
        );
        let responses = Family::<ResponseLabel, Counter>::default();
        let enqueue_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let rate_limited = Family::<LimitLabel, Counter>::default();
        let refused = Family::<ReasonLabel, Counter>::default();
        // Every series from the start, at 0: a rate over a series that appears only with its
        // first hit misses that hit.
        for limit in ["user", "address", "global"] {
            let _ = rate_limited.get_or_create(&LimitLabel { limit });
        }
        for reason in REFUSALS {
            let _ = refused.get_or_create(&ReasonLabel { reason });
        }
        registry.register(
            "responses",
            "HTTP responses by route and status",
            responses.clone(),
        );
        registry.register(
            "enqueue_seconds",
            "From a valid buy to the broker's acknowledgement",
            enqueue_seconds.clone(),
        );
        registry.register(
            "rate_limited",
            "Buys refused by a rate limit (429), by limit",
            rate_limited.clone(),
        );
        registry.register(
            "admission_refused",
            "Buys refused before the queue, by reason",
            refused.clone(),
        );
        ApiMetrics {
            registry,
            responses,
            enqueue_seconds,
            rate_limited,
            refused,
        }
    }

    pub fn count_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }
}

pub struct AppState {
    pub config: ApiConfig,
    pub producer: DurableProducer,
    /// `POST /infer`'s producer (see [`ApiConfig::infer_producer_linger`]).
    pub infer_producer: DurableProducer,
    pub pool: PgPool,
    /// `POST /infer`'s pending rows, group-committed.
    pub pending: PendingRows,
    pub keys: TokenKeys,
    pub receipts: Receipts,
    pub purchase_tokens: PurchaseTokens,
    /// Signs every buy event for the order workers (`orders::signature`); read from the
    /// database by the item refresh before admission admits anything.
    pub event_signer: std::sync::OnceLock<EventSigner>,
    pub limiters: Limiters,
    pub admission: Admission,
    pub replies: Arc<ReplyRouter>,
    pub metrics: ApiMetrics,
    pub dashboard: Dashboard,
    /// Cancelled when the API begins to stop: long-lived answers (the dashboard's event
    /// streams) end, so the graceful stop does not wait for them.
    pub stopping: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub async fn new(
        config: ApiConfig,
        pool: PgPool,
    ) -> Result<Arc<Self>, rdkafka::error::KafkaError> {
        let producer = DurableProducer::new(
            &config.bootstrap,
            give_up_after(config.enqueue_timeout),
            config.producer_linger,
        )?;
        let infer_producer = DurableProducer::new(
            &config.bootstrap,
            give_up_after(config.enqueue_timeout),
            config.infer_producer_linger,
        )?;
        let admission = Admission::new(
            &config.bootstrap,
            &config.topic,
            &config.worker_group,
            config.items_refresh,
        )?;
        let replies = ReplyRouter::new(ReplyConfig {
            bootstrap: config.bootstrap.clone(),
            ..config.replies.clone()
        });
        let dashboard = Dashboard::new(QueueView::new(
            &config.bootstrap,
            &config.topic,
            &config.worker_group,
        )?);
        let state = Arc::new(AppState {
            dashboard,
            stopping: CancellationToken::new(),
            keys: TokenKeys::new(config.jwt_secret.as_bytes()),
            receipts: Receipts::new(config.jwt_secret.as_bytes()),
            purchase_tokens: PurchaseTokens::new(config.jwt_secret.as_bytes()),
            event_signer: std::sync::OnceLock::new(),
            limiters: Limiters::new(config.limits),
            metrics: ApiMetrics::new(&config.limits),
            config,
            producer,
            infer_producer,
            pending: PendingRows::spawn(pool.clone()),
            pool,
            admission,
            replies,
        });
        if let Err(e) = state.admission.refresh(&state.pool).await {
            tracing::warn!(error = %e, "could not read the sale's items yet");
        }
        Ok(state)
    }

    /// Refreshes the admission budgets every `items_refresh` until `stop` is cancelled.
    pub async fn run_item_refresh(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.items_refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            // The signing key first: admission is ready (buys are admitted) only after its first
            // refresh, so every admitted buy's event is signed.
            if self.event_signer.get().is_none() {
                match EventSigner::load(&self.pool).await {
                    Ok(s) => {
                        let _ = self.event_signer.set(s);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the event signing key yet; admitting nothing");
                        continue;
                    }
                }
            }
            if let Err(e) = self.admission.refresh(&self.pool).await {
                tracing::warn!(error = %e, "admission refresh failed; keeping the last view");
            }
            ticks += 1;
            if ticks % 40 == 0 {
                self.limiters.shrink();
            }
            if ticks % 240 == 0 {
                if let Err(e) = Admission::forget_stopped_instances(&self.pool).await {
                    tracing::debug!(error = %e, "could not clean up stopped instances");
                }
            }
        }
    }
}
