//! [`Dashboard`]: the one task that builds the dashboard's ticks and hands each to every viewer.
//!
//! Per tick (every [`TICK`], only while someone watches):
//! - the request path's counters: answers per class since the last tick (rates) and since start
//!   (totals), this tick's enqueue p50/p99;
//! - one database statement: the items, the worker-kept order counts (`order_counts`) and the
//!   latest orders, found through the BRIN index on `processed_at` by asking only for what is
//!   newer than the newest order already seen (less a margin for transactions that committed
//!   late), so its cost does not grow with the table;
//! - the latest look at the queue (backlog, members), taken by a loop of its own, since its
//!   blocking requests may take long when the broker is away: a tick never waits for it, and a
//!   look older than [`QUEUE_STALE`] is reported as unknown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::counters::{LiveCounters, CLASSES};
use super::queue_view::{QueueState, QueueView};
use super::tick::{ItemLine, Latency, LatestOrder, Limits, Tick};
use crate::api::limits::Limit;
use crate::api::AppState;

pub const TICK: Duration = Duration::from_millis(500);
/// Longest a tick waits for the database.
const DB_BUDGET: Duration = Duration::from_millis(400);
/// A look at the queue older than this is not shown.
const QUEUE_STALE: Duration = Duration::from_secs(3);
/// Each request of a look at the queue.
const QUEUE_TIMEOUT: Duration = Duration::from_millis(500);
/// Concurrent viewers at most (each is a connection held open).
pub const MAX_VIEWERS: usize = 256;
/// The latest orders shown.
const LATEST: usize = 20;
/// An order can commit this long after a newer one (a long batch transaction).
const LATE_COMMIT_MS: i64 = 5_000;

/// The serialized latest tick, shared by every viewer.
pub type Feed = watch::Receiver<Option<Arc<str>>>;

#[derive(Debug)]
pub struct Dashboard {
    /// What the request path records.
    pub counters: LiveCounters,
    queue: QueueView,
    last_queue: Mutex<Option<(Instant, QueueState)>>,
    feed: watch::Sender<Option<Arc<str>>>,
}

impl Dashboard {
    pub fn new(queue: QueueView) -> Self {
        Dashboard {
            counters: LiveCounters::default(),
            queue,
            last_queue: Mutex::new(None),
            feed: watch::Sender::new(None),
        }
    }

    /// A new viewer's feed, or `None` when [`MAX_VIEWERS`] are watching.
    pub fn subscribe(&self) -> Option<Feed> {
        (self.feed.receiver_count() < MAX_VIEWERS).then(|| self.feed.subscribe())
    }

    fn watched(&self) -> bool {
        self.feed.receiver_count() > 0
    }

    /// Builds ticks until `stop` is cancelled.
    pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
        let queue_loop = tokio::spawn(Self::watch_queue(state.clone(), stop.clone()));
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut memory = Memory::new(state.dashboard.counters.answers());
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let d = &state.dashboard;
            let rates = memory.rates(d.counters.answers());
            let latency = d.counters.take_latency();
            if !d.watched() {
                memory.orders_total = None;
                continue;
            }
            let mut tick = Tick {
                t: shared::time::now_ms(),
                rates,
                totals: CLASSES.iter().copied().zip(memory.answers).collect(),
                enqueue_ms: latency.map(|(p50, p99)| Latency { p50, p99 }),
                limits: limits(&state),
                ..Tick::default()
            };
            let read = tokio::time::timeout(DB_BUDGET, read_sale(&state.pool, memory.since()));
            match read.await {
                Ok(Ok(sale)) => memory.fill(&mut tick, sale, &state),
                Ok(Err(e)) => tracing::debug!(error = %e, "dashboard: database read failed"),
                Err(_) => tracing::debug!("dashboard: database read took too long"),
            }
            if let Some((at, q)) = &*d.last_queue.lock().unwrap_or_else(|e| e.into_inner()) {
                if at.elapsed() < QUEUE_STALE {
                    tick.backlog = q.backlog;
                    tick.workers = q.workers.clone();
                }
            }
            match serde_json::to_string(&tick) {
                Ok(json) => {
                    d.feed.send_replace(Some(json.into()));
                }
                Err(e) => tracing::warn!(error = %e, "dashboard: tick not serializable"),
            }
        }
        queue_loop.abort();
    }

    /// Looks at the queue every tick while someone watches.
    async fn watch_queue(state: Arc<AppState>, stop: CancellationToken) {
        loop {
            if state.dashboard.watched() {
                let q = state.dashboard.queue.read(QUEUE_TIMEOUT).await;
                *state
                    .dashboard
                    .last_queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), q));
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

fn limits(state: &AppState) -> Limits {
    let show = |l: Option<Limit>| l.map(|l| format!("{}/{}", l.rate, l.burst));
    let l = state.config.limits;
    Limits {
        rate_limited: state.dashboard.counters.answers()[3],
        per_user: show(l.per_user),
        per_address: show(l.per_address),
        global: show(l.global),
    }
}

/// What the collector carries from one tick to the next.
struct Memory {
    answers: [u64; CLASSES.len()],
    answers_at: Instant,
    /// Orders in the database at the last read, for the drain rate.
    orders_total: Option<(i64, Instant)>,
    latest: Vec<LatestOrder>,
}

impl Memory {
    fn new(answers: [u64; CLASSES.len()]) -> Self {
        Memory {
            answers,
            answers_at: Instant::now(),
            orders_total: None,
            latest: Vec::new(),
        }
    }

    /// Answers per second per class since the last call.
    fn rates(&mut self, now: [u64; CLASSES.len()]) -> BTreeMap<&'static str, f64> {
        let dt = self.answers_at.elapsed().as_secs_f64().max(0.001);
        let rates = CLASSES
            .iter()
            .zip(now.iter().zip(self.answers.iter()))
            .map(|(c, (n, before))| (*c, (n.saturating_sub(*before)) as f64 / dt))
            .collect();
        self.answers = now;
        self.answers_at = Instant::now();
        rates
    }

    /// Orders processed at or after this (ms) are asked for.
    fn since(&self) -> i64 {
        self.latest
            .first()
            .map(|o| o.processed_at - LATE_COMMIT_MS)
            .unwrap_or(0)
    }

    fn fill(&mut self, tick: &mut Tick, sale: SaleRead, state: &AppState) {
        let mut orders: BTreeMap<String, i64> = [
            "confirmed",
            "rejected_sold_out",
            "rejected_duplicate",
            "rejected_invalid",
        ]
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
        let mut per_item: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for c in &sale.counts {
            *orders.entry(c.status.clone()).or_default() += c.n;
            let e = per_item.entry(c.item_id).or_default();
            if c.status == "confirmed" {
                e.0 += c.n;
            } else {
                e.1 += c.n;
            }
        }
        let total: i64 = orders.values().sum();
        let now = Instant::now();
        if let Some((before, at)) = self.orders_total {
            let dt = now.duration_since(at).as_secs_f64().max(0.001);
            tick.drain_per_s = Some((total - before).max(0) as f64 / dt);
        }
        self.orders_total = Some((total, now));
        tick.orders = Some(orders);

        let available: BTreeMap<i64, i64> = state
            .admission
            .items()
            .into_iter()
            .map(|(item, _, available)| (item.id, available))
            .collect();
        tick.items = Some(
            sale.items
                .into_iter()
                .map(|i| {
                    let (confirmed, rejected) = per_item.get(&i.id).copied().unwrap_or_default();
                    ItemLine {
                        available: available.get(&i.id).copied(),
                        id: i.id,
                        name: i.name,
                        initial: i.initial,
                        stock: i.stock,
                        confirmed,
                        rejected,
                    }
                })
                .collect(),
        );

        // The newest orders: this read's, then those remembered, without repeats.
        let mut latest = sale.latest;
        for o in self.latest.drain(..) {
            if !latest.iter().any(|l| l.request_id == o.request_id) {
                latest.push(o);
            }
        }
        latest.sort_by_key(|o| std::cmp::Reverse(o.processed_at));
        latest.truncate(LATEST);
        self.latest = latest.clone();
        tick.latest = Some(latest);
    }
}

#[derive(Debug, Deserialize)]
struct ItemRead {
    id: i64,
    name: String,
    initial: i64,
    stock: i64,
}

#[derive(Debug, Deserialize)]
struct CountRead {
    item_id: i64,
    status: String,
    n: i64,
}

struct SaleRead {
    items: Vec<ItemRead>,
    counts: Vec<CountRead>,
    latest: Vec<LatestOrder>,
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("unexpected JSON from the database: {0}")]
    Json(#[from] serde_json::Error),
}

/// The tick's one statement: items, order counts, and the latest orders since `since_ms`.
async fn read_sale(pool: &PgPool, since_ms: i64) -> Result<SaleRead, ReadError> {
    let (items, counts, latest): (String, String, String) = sqlx::query_as(
        "SELECT \
           (SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, \
                'initial', initial_stock, 'stock', stock) ORDER BY id), '[]') FROM items)::text, \
           (SELECT COALESCE(json_agg(json_build_object('item_id', item_id, 'status', status, \
                'n', n)), '[]') FROM order_counts)::text, \
           (SELECT COALESCE(json_agg(json_build_object('request_id', request_id, \
                'user_id', user_id, 'item_id', item_id, 'qty', qty, 'status', status, \
                'processed_at', (extract(epoch FROM processed_at) * 1000)::bigint)), '[]') \
              FROM (SELECT * FROM orders WHERE processed_at >= to_timestamp($1 / 1000.0) \
                    ORDER BY processed_at DESC LIMIT $2) l)::text",
    )
    .bind(since_ms as f64)
    .bind(LATEST as i64)
    .fetch_one(pool)
    .await?;
    Ok(SaleRead {
        items: serde_json::from_str(&items)?,
        counts: serde_json::from_str(&counts)?,
        latest: serde_json::from_str(&latest)?,
    })
}
