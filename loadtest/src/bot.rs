//! The "bot": one user firing `/buy` far above any person's pace, at a fixed rate for a while,
//! cycling over the items with a fresh Idempotency-Key each time (so every request is a new
//! buy, not a retry). Run beside the normal buyers, it shows what the sale's protections do:
//! the rate limit answers most of it 429 before any work, admission refuses the rest, and the
//! bot ends with at most one order per item, like everybody else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::burst::{buy_once, Buyer, Live};
use crate::verify::Final;

#[derive(Debug, Clone)]
pub struct BotConfig {
    pub base: String,
    /// The bot's user id, and its bearer token (none: load-test mode, `user_id` in the body).
    pub user: u64,
    pub token: Option<String>,
    pub items: u64,
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BotResult {
    pub sent: u64,
    /// Answers by HTTP status (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// Request ids of its 202s.
    pub accepted: Vec<Uuid>,
    pub elapsed_s: f64,
}

impl BotResult {
    /// Adds another run's figures.
    pub fn merge(&mut self, other: BotResult) {
        self.sent += other.sent;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.accepted.extend(other.accepted);
        self.elapsed_s += other.elapsed_s;
    }

    /// Requests the rate limit let through (anything but a 429 or no answer).
    pub fn passed_the_limit(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s != 429 && **s != 0)
            .map(|(_, n)| n)
            .sum()
    }

    /// Orders the bot holds in the database, by status.
    pub async fn orders(&self, pool: &PgPool, user: u64) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status::text, count(*) FROM orders WHERE user_id = $1 GROUP BY status",
        )
        .bind(user as i64)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// Fires until `duration` is over; at most 256 requests in flight (a script's connection pool).
pub async fn run(config: BotConfig) -> BotResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let url: Arc<str> = format!("{}/buy", config.base.trim_end_matches('/')).into();
    let live = Arc::new(Live::default());
    let slots = Arc::new(Semaphore::new(256));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(0.001));
    let config = Arc::new(config);
    // Keys unique to this run: a run after another is new buys, not retries of the old ones.
    let run = Uuid::new_v4().simple().to_string();
    let mut i: u64 = 0;
    loop {
        let due = start + interval.mul_f64(i as f64);
        if due.duration_since(start) >= config.duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (config, client, url, live, tx, run) = (
            config.clone(),
            client.clone(),
            url.clone(),
            live.clone(),
            tx.clone(),
            run.clone(),
        );
        tokio::spawn(async move {
            let buyer = match &config.token {
                Some(t) => Buyer::Token(t),
                None => Buyer::Claimed(config.user),
            };
            let item = 1 + i % config.items.max(1);
            let key = format!("bot-{run}-{i}");
            let r = buy_once(&client, &url, buyer, item, Some(&key), &live).await;
            drop(slot);
            let _ = tx.send(r);
        });
        i += 1;
    }
    drop(tx);
    let mut out = BotResult::default();
    while let Some(r) = rx.recv().await {
        out.sent += 1;
        *out.statuses.entry(r.status).or_default() += 1;
        if r.outcome == Final::Accepted {
            out.accepted.extend(r.request_id);
        }
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    out
}
