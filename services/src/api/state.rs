//! `AppState`: everything the handlers share.
//!
//! The sale's items are mirrored from the database every `items_refresh` (stock left, known
//! ids): that is how the API refuses unknown items (422) and sold-out items (410) without
//! enqueueing, within a refresh period of the worker selling the last unit.

use std::collections::{HashMap, HashSet, VecDeque};
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
use uuid::Uuid;

use super::auth::TokenKeys;

#[derive(Debug, Clone)]
pub struct ApiConfig {
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bootstrap: "127.0.0.1:9092".into(),
            topic: shared::topics::SECKILL_ORDERS.into(),
            jwt_secret: String::new(),
            load_test_mode: false,
            enqueue_timeout: Duration::from_secs(5),
            items_refresh: Duration::from_millis(250),
            remember_accepted: 1_000_000,
        }
    }
}

/// The sale's items as last read from the database.
#[derive(Debug, Default)]
pub struct ItemsView {
    pub known: HashSet<i64>,
    pub sold_out: HashSet<i64>,
}

/// Request ids accepted by this instance, oldest dropped first.
#[derive(Debug, Default)]
pub struct RecentIds {
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl RecentIds {
    pub fn insert(&mut self, id: Uuid, cap: usize) {
        if self.set.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }
}

/// (user, Idempotency-Key) -> the request id it was accepted as; the oldest keys are forgotten
/// beyond `cap`. Concurrent requests with one key wait on one cell, so the buy is enqueued once.
#[derive(Debug, Default)]
pub struct IdempotencyKeys {
    cells: HashMap<(i64, String), Arc<OnceCell<Uuid>>>,
    order: VecDeque<(i64, String)>,
}

impl IdempotencyKeys {
    pub fn cell(&mut self, user: i64, key: &str, cap: usize) -> Arc<OnceCell<Uuid>> {
        let k = (user, key.to_string());
        if let Some(c) = self.cells.get(&k) {
            return c.clone();
        }
        let cell = Arc::new(OnceCell::new());
        self.cells.insert(k.clone(), cell.clone());
        self.order.push_back(k);
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.cells.remove(&old);
            }
        }
        cell
    }
}

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
        let state = Arc::new(AppState {
            config,
            producer,
            pool,
            keys,
            items: RwLock::new(ItemsView::default()),
            idempotency: Mutex::new(IdempotencyKeys::default()),
            accepted: Mutex::new(RecentIds::default()),
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

    /// Refreshes the items view every `items_refresh` until `stop` resolves.
    pub async fn run_item_refresh(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.config.items_refresh);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.refresh_items().await {
                        tracing::warn!(error = %e, "item refresh failed");
                    }
                }
                _ = &mut stop => return,
            }
        }
    }
}
