//! The load generator: a burst of `POST /buy` from many distinct users against any running
//! stack (the demo's, docker compose's, or production-like), as fast as `connections` allow.
//!
//! Users and items are drawn from a fixed pseudo-random sequence, so a run is repeatable and
//! some users click twice (as real ones do). Users authenticate with bearer tokens minted from
//! the API's secret; without a secret, the body carries `user_id` (the API's load-test mode).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use services::api::auth::TokenKeys;
use uuid::Uuid;

use crate::latency::Latencies;

#[derive(Debug, Clone)]
pub struct BurstConfig {
    /// e.g. `http://127.0.0.1:8080`
    pub base: String,
    pub buys: usize,
    pub users: u64,
    pub items: u64,
    pub connections: usize,
    /// HS256 secret to mint user tokens; `None` sends `user_id` in the body (load-test mode).
    pub secret: Option<String>,
    pub seed: u64,
}

/// Counters read while the burst runs (the demo's progress line).
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    /// 2xx answers: accepted (202) or, for the direct API, written (201).
    pub accepted: AtomicU64,
    pub sold_out: AtomicU64,
    /// 409: the buyer already bought this item (refused by the API, nothing enqueued).
    pub duplicates: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Debug, Default)]
pub struct BurstResult {
    pub elapsed: Duration,
    /// Request ids of every accepted buy.
    pub accepted: Vec<Uuid>,
    /// Answers by HTTP status (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// Latency of every answered request.
    pub latencies: Latencies,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `i`-th buy of a run: (user, item).
pub fn pick(seed: u64, i: usize, users: u64, items: u64) -> (u64, u64) {
    let r = splitmix(seed ^ i as u64);
    (1 + r % users.max(1), 1 + (r >> 32) % items.max(1))
}

/// Bearer tokens for users 1..=users (index 0 is user 1), valid for `ttl_secs`.
pub fn mint_tokens(secret: &str, users: u64, ttl_secs: i64) -> Vec<String> {
    let keys = TokenKeys::new(secret.as_bytes());
    (1..=users as i64).map(|u| keys.mint(u, ttl_secs)).collect()
}

pub async fn run(config: BurstConfig, live: Arc<Live>) -> BurstResult {
    let tokens = Arc::new(
        config
            .secret
            .as_deref()
            .map(|s| mint_tokens(s, config.users, 3600))
            .unwrap_or_default(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let url = format!("{}/buy", config.base.trim_end_matches('/'));
    let tasks: Vec<_> = (0..config.connections.max(1))
        .map(|_| {
            let (config, live, next, tokens, url) = (
                config.clone(),
                live.clone(),
                next.clone(),
                tokens.clone(),
                url.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or_default();
                let mut out = BurstResult::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= config.buys {
                        return out;
                    }
                    let (user, item) = pick(config.seed, i, config.users, config.items);
                    let req = match tokens.get(user as usize - 1) {
                        Some(t) => client
                            .post(&url)
                            .bearer_auth(t)
                            .json(&json!({"item_id": item, "qty": 1})),
                        None => client
                            .post(&url)
                            .json(&json!({"item_id": item, "qty": 1, "user_id": user})),
                    };
                    live.sent.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let status = match req.send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            out.latencies.record(t.elapsed());
                            if (200..300).contains(&status) {
                                match body["request_id"].as_str().and_then(|s| s.parse().ok()) {
                                    Some(id) => {
                                        out.accepted.push(id);
                                        live.accepted.fetch_add(1, Ordering::Relaxed);
                                    }
                                    None => {
                                        live.errors.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            } else if status == 410 {
                                live.sold_out.fetch_add(1, Ordering::Relaxed);
                            } else if status == 409 {
                                live.duplicates.fetch_add(1, Ordering::Relaxed);
                            } else {
                                live.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            status
                        }
                        Err(_) => {
                            live.errors.fetch_add(1, Ordering::Relaxed);
                            0
                        }
                    };
                    *out.statuses.entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    let mut all = BurstResult::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.accepted.extend(r.accepted);
            all.latencies.extend(r.latencies);
            for (s, n) in r.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
        }
    }
    all.elapsed = started.elapsed();
    all
}
