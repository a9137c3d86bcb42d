//! `AppState`: everything the handlers share.
//!
//! The sale's items are mirrored from the database every `items_refresh` (stock left, known
//! ids): that is how the API refuses unknown items (422) and sold-out items (410) without
//! enqueueing, within a refresh period of the worker selling the last unit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::TokenKeys;
use crate::inference::replies::{ReplyConfig, ReplyRouter};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address the HTTP server binds (port 0: any free port).
    pub listen: SocketAddr,
    pub bootstrap: String,
    pub topic: String,
    pub jwt_secret: String,
    /// Trust `user_id` from the body when there is no token. Benchmarks only.
    pub load_test_mode: bool,
    /// How long a buy may wait for the queue's acknowledgement before the API answers 503.
    pub enqueue_timeout: Duration,
    pub items_refresh: Duration,
    /// Request ids remembered for `GET /orders/{id}` -> "queued" before the worker has them.
    pub remember_accepted: usize,
    pub inference_topic: String,
    /// Longest `?wait_ms=` honoured on `POST /infer`.
    pub infer_max_wait: Duration,
    /// An inference request's deadline when the caller gives none, and the longest allowed.
    pub infer_deadline: Duration,
    pub infer_max_deadline: Duration,
    /// Where replies to this instance go (see [`ReplyRouter`]).
    pub replies: ReplyConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            bootstrap: "127.0.0.1:9092".into(),
            topic: shared::topics::SECKILL_ORDERS.into(),
            jwt_secret: String::new(),
            load_test_mode: false,
            enqueue_timeout: Duration::from_secs(5),
            items_refresh: Duration::from_millis(250),
            remember_accepted: 1_000_000,
            inference_topic: shared::topics::INFERENCE_REQUESTS.into(),
            infer_max_wait: Duration::from_secs(30),
            infer_deadline: Duration::from_secs(60),
            infer_max_deadline: Duration::from_secs(600),
            replies: ReplyConfig::new("127.0.0.1:9092"),
        }
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
        if self.items_refresh.is_zero() || self.remember_accepted == 0 {
            return bad("the items refresh period and the accepted-ids memory must be positive");
        }
        Ok(())
    }
}

/// The sale's items as last read from the database.
#[derive(Debug, Default)]
pub struct ItemsView {
    pub known: HashSet<i64>,
    pub sold_out: HashSet<i64>,
}

/// A map that remembers at most `cap` keys, forgetting the oldest first: what an API instance
/// keeps in memory about past requests must not grow with the traffic.
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    entries: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for BoundedMap<K, V> {
    fn default() -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// The value under `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: K, cap: usize, make: impl FnOnce() -> V) -> &V {
        if !self.entries.contains_key(&key) {
            self.entries.insert(key.clone(), make());
            self.order.push_back(key.clone());
            while self.order.len() > cap.max(1) {
                if let Some(old) = self.order.pop_front() {
                    self.entries.remove(&old);
                }
            }
        }
        // `key` is the newest entry, which the cap (at least 1) never evicts.
        &self.entries[&key]
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }
}

/// Request ids accepted by this instance.
pub type RecentIds = BoundedMap<Uuid, ()>;

/// (user, Idempotency-Key) -> the request id it was accepted as. Concurrent requests with one
/// key wait on one cell, so the buy is enqueued once.
pub type IdempotencyKeys = BoundedMap<(i64, String), Arc<OnceCell<Uuid>>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabel {
    pub route: String,
    pub status: u16,
}

#[derive(Debug)]
pub struct ApiMetrics {
    pub registry: Registry,
    pub responses: Family<ResponseLabel, Counter>,
    /// Time from a valid buy to the queue's acknowledgement.
    pub enqueue_seconds: Histogram,
}

impl ApiMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("order_api");
        let responses = Family::<ResponseLabel, Counter>::default();
        let enqueue_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
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
        ApiMetrics {
            registry,
            responses,
            enqueue_seconds,
        }
    }
}

pub struct AppState {
    pub config: ApiConfig,
    pub producer: FutureProducer,
    pub pool: PgPool,
    pub keys: TokenKeys,
    pub items: RwLock<ItemsView>,
    pub idempotency: Mutex<IdempotencyKeys>,
    pub accepted: Mutex<RecentIds>,
    pub replies: Arc<ReplyRouter>,
    pub metrics: ApiMetrics,
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
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            // Retries never duplicate, and acks=all: a 202 means the broker has it durably.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set(
                "message.timeout.ms",
                config.enqueue_timeout.as_millis().to_string(),
            )
            .set("queue.buffering.max.messages", "200000")
            .create()?;
        let keys = TokenKeys::new(config.jwt_secret.as_bytes());
        let replies = ReplyRouter::new(ReplyConfig {
            bootstrap: config.bootstrap.clone(),
            ..config.replies.clone()
        });
        let state = Arc::new(AppState {
            config,
            producer,
            pool,
            keys,
            items: RwLock::new(ItemsView::default()),
            idempotency: Mutex::new(IdempotencyKeys::default()),
            accepted: Mutex::new(RecentIds::default()),
            replies,
            metrics: ApiMetrics::new(),
        });
        if let Err(e) = state.refresh_items().await {
            tracing::warn!(error = %e, "could not read the sale's items yet");
        }
        Ok(state)
    }

    /// Re-reads stock from the database.
    pub async fn refresh_items(&self) -> Result<(), sqlx::Error> {
        let rows: Vec<(i64, i32)> = sqlx::query_as("SELECT id, stock FROM items")
            .fetch_all(&self.pool)
            .await?;
        let view = ItemsView {
            known: rows.iter().map(|(id, _)| *id).collect(),
            sold_out: rows
                .iter()
                .filter(|(_, s)| *s <= 0)
                .map(|(id, _)| *id)
                .collect(),
        };
        *self.items.write().unwrap_or_else(|e| e.into_inner()) = view;
        Ok(())
    }

    /// Refreshes the items view every `items_refresh` until `stop` is cancelled.
    pub async fn run_item_refresh(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.items_refresh);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.refresh_items().await {
                        tracing::warn!(error = %e, "item refresh failed");
                    }
                }
                _ = stop.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_keeps_the_newest_and_inserts_once() {
        let mut m: BoundedMap<u32, u32> = BoundedMap::default();
        assert_eq!(*m.get_or_insert_with(1, 2, || 10), 10);
        assert_eq!(
            *m.get_or_insert_with(1, 2, || 99),
            10,
            "existing value kept"
        );
        m.get_or_insert_with(2, 2, || 20);
        m.get_or_insert_with(3, 2, || 30);
        assert!(!m.contains(&1), "oldest forgotten beyond the cap");
        assert!(m.contains(&2) && m.contains(&3));
    }
}
