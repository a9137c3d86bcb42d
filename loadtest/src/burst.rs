//! The load generator: `POST /buy` from many distinct users against any running stack (the
//! demo's, docker compose's, or production-like), in one of two shapes:
//!
//! - closed loop: as fast as `connections` concurrent clients can go (the machine's ceiling);
//! - open loop (`rate`): buy `i` is due at `i / rate` seconds whatever the answers so far, as
//!   buyers arrive in a real sale. Latency counts from when a buy was due, not when it was sent,
//!   so a stalled API shows in the figures instead of hiding behind fewer requests.
//!
//! Users and items are drawn from a fixed pseudo-random sequence, so a run is repeatable and
//! some users click twice (as real ones do). Users authenticate with bearer tokens minted from
//! the API's secret; without a secret, the body carries `user_id` (the API's load-test mode).
//! Every request's answer is kept (`RequestRecord`), for `loadgen verify` and the demo.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use services::api::auth::TokenKeys;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::http1::{Connection, Target};
use crate::latency::Latencies;
use crate::verify::{Final, RequestRecord};

#[derive(Debug, Clone)]
pub struct BurstConfig {
    /// e.g. `http://127.0.0.1:8080`
    pub base: String,
    pub buys: usize,
    /// Buyers are users `first_user..first_user + users`.
    pub first_user: u64,
    pub users: u64,
    pub items: u64,
    /// Concurrent requests at most (closed loop: exactly this many clients).
    pub connections: usize,
    /// Open loop: buys per second. `None`: closed loop.
    pub rate: Option<f64>,
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
    /// 429: over a rate limit.
    pub limited: AtomicU64,
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
    /// Every request, as the client saw it.
    pub records: Vec<RequestRecord>,
}

impl BurstResult {
    fn add(&mut self, r: RequestRecord, latency: Duration) {
        *self.statuses.entry(r.status).or_default() += 1;
        if r.status != 0 {
            self.latencies.record(latency);
        }
        if r.outcome == Final::Accepted {
            self.accepted.extend(r.request_id);
        }
        self.records.push(r);
    }

    fn merge(&mut self, other: BurstResult) {
        self.accepted.extend(other.accepted);
        self.latencies.extend(other.latencies);
        self.records.extend(other.records);
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `i`-th buy of a run: (user index in `0..users`, item).
pub fn pick(seed: u64, i: usize, users: u64, items: u64) -> (u64, u64) {
    let r = splitmix(seed ^ i as u64);
    (r % users.max(1), 1 + (r >> 32) % items.max(1))
}

/// Bearer tokens for users `first..first + users` (index 0 is user `first`), valid for
/// `ttl_secs`.
pub fn mint_tokens(secret: &str, first: u64, users: u64, ttl_secs: i64) -> Vec<String> {
    let keys = TokenKeys::new(secret.as_bytes());
    (first..first + users)
        .map(|u| keys.mint(u as i64, ttl_secs))
        .collect()
}

/// Who a request is from: a bearer token, or (load-test mode) a user id in the body.
#[derive(Debug, Clone, Copy)]
pub enum Buyer<'a> {
    Token(&'a str),
    Claimed(u64),
}

/// One `POST {url}` buying `item` as `buyer` (with an Idempotency-Key, if given); the answer as
/// a record. Updates `live` as it goes.
pub async fn buy_once(
    client: &reqwest::Client,
    url: &str,
    buyer: Buyer<'_>,
    item: u64,
    key: Option<&str>,
    live: &Live,
) -> RequestRecord {
    let mut req = match buyer {
        Buyer::Token(t) => client
            .post(url)
            .bearer_auth(t)
            .json(&json!({"item_id": item, "qty": 1})),
        Buyer::Claimed(user) => client
            .post(url)
            .json(&json!({"item_id": item, "qty": 1, "user_id": user})),
    };
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    live.sent.fetch_add(1, Ordering::Relaxed);
    let Ok(r) = req.send().await else {
        return unanswered(live);
    };
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap_or_default();
    classify(status, &body, live)
}

/// The same buy over one of the load generator's own keep-alive connections
/// ([`crate::http1`]): on a 2-core machine the client's cost is taken from the server it
/// measures, and this one costs a fraction of reqwest's. `path` is the base's path + `/buy`.
pub async fn buy_once_on(
    conn: &mut Connection,
    path: &str,
    buyer: Buyer<'_>,
    item: u64,
    live: &Live,
) -> RequestRecord {
    let (headers, body) = match buyer {
        Buyer::Token(t) => (
            format!("Authorization: Bearer {t}\r\n"),
            format!(r#"{{"item_id":{item},"qty":1}}"#),
        ),
        Buyer::Claimed(user) => (
            String::new(),
            format!(r#"{{"item_id":{item},"qty":1,"user_id":{user}}}"#),
        ),
    };
    live.sent.fetch_add(1, Ordering::Relaxed);
    // The same patience as the reqwest client's (`client`).
    match tokio::time::timeout(
        ANSWER_TIMEOUT,
        conn.post_json(path, &headers, body.as_bytes()),
    )
    .await
    {
        Ok(Ok(a)) => classify(a.status, &a.body, live),
        Ok(Err(_)) => unanswered(live),
        Err(_) => {
            conn.close();
            unanswered(live)
        }
    }
}

/// The request id and the error code an answer's JSON body names, if any.
fn named_request(body: &[u8]) -> (Option<Uuid>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Named {
        request_id: Option<Uuid>,
        error: Option<String>,
    }
    match serde_json::from_slice::<Named>(body) {
        Ok(n) => (n.request_id, n.error),
        Err(_) => (None, None),
    }
}

/// A buy that got no answer (refused or broken connection).
fn unanswered(live: &Live) -> RequestRecord {
    live.errors.fetch_add(1, Ordering::Relaxed);
    RequestRecord {
        request_id: None,
        status: 0,
        outcome: Final::Unresolved,
        attempts: 1,
        unavailable: 0,
        latency_ms: 0.0,
        // No answer: the API may have queued it before the connection broke.
        could_be_queued: true,
    }
}

/// A buy's record from its answer, counted in `live`.
fn classify(status: u16, body: &[u8], live: &Live) -> RequestRecord {
    let (request_id, error) = named_request(body);
    let mut record = RequestRecord {
        request_id,
        status,
        outcome: Final::Unresolved,
        attempts: 1,
        unavailable: 0,
        latency_ms: 0.0,
        // Only an acceptance (202; 201 from the direct API) and a 503 that is not
        // `not_accepted` leave an order possible.
        could_be_queued: (200..=299).contains(&status)
            || (status == 503 && error.as_deref() != Some("not_accepted")),
    };
    let counter = match record.status {
        200..=299 if record.request_id.is_some() => {
            record.outcome = Final::Accepted;
            &live.accepted
        }
        410 => {
            record.outcome = Final::Refused;
            &live.sold_out
        }
        409 => {
            record.outcome = Final::Refused;
            &live.duplicates
        }
        429 => {
            record.outcome = Final::Refused;
            &live.limited
        }
        503 => {
            record.unavailable = 1;
            &live.errors
        }
        _ => {
            record.outcome = Final::Error;
            &live.errors
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    record
}

/// How long a buy waits for its answer before the client gives up on it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(ANSWER_TIMEOUT)
        .build()
        .unwrap_or_default()
}

pub async fn run(config: BurstConfig, live: Arc<Live>) -> BurstResult {
    let tokens = Arc::new(
        config
            .secret
            .as_deref()
            .map(|s| mint_tokens(s, config.first_user, config.users, 3600))
            .unwrap_or_default(),
    );
    let started = Instant::now();
    let mut all = match config.rate {
        Some(rate) => open_loop(&config, rate, live, tokens).await,
        None => closed_loop(&config, live, tokens).await,
    };
    all.elapsed = started.elapsed();
    all
}

/// How a buy is sent: over the load generator's own connection (to a `/buy` path), or reqwest
/// (to a `/buy` URL).
enum Via<'a> {
    Own(&'a mut Connection, &'a str),
    Reqwest(&'a reqwest::Client, &'a str),
}

/// The `i`-th buy of the run, sent; its record with the latency counted from `due`.
async fn send(
    config: &BurstConfig,
    via: Via<'_>,
    tokens: &[String],
    i: usize,
    live: &Live,
    due: Instant,
) -> (RequestRecord, Duration) {
    let (user, item) = pick(config.seed, i, config.users, config.items);
    let buyer = match tokens.get(user as usize) {
        Some(t) => Buyer::Token(t),
        None => Buyer::Claimed(config.first_user + user),
    };
    let mut record = match via {
        Via::Own(conn, path) => buy_once_on(conn, path, buyer, item, live).await,
        Via::Reqwest(client, url) => buy_once(client, url, buyer, item, None, live).await,
    };
    let latency = due.elapsed();
    record.latency_ms = latency.as_secs_f64() * 1000.0;
    (record, latency)
}

/// A connection of the load generator's own client to `base` and the path of its `/buy`, if
/// `base` is plain `http://host:port[/prefix]`.
fn own_connection(base: &str) -> Option<(Connection, String)> {
    let target = Target::parse(base).ok()?;
    let url = reqwest::Url::parse(base).ok()?;
    let path = format!("{}/buy", url.path().trim_end_matches('/'));
    Some((Connection::new(target), path))
}

async fn closed_loop(
    config: &BurstConfig,
    live: Arc<Live>,
    tokens: Arc<Vec<String>>,
) -> BurstResult {
    let next = Arc::new(AtomicU64::new(0));
    let url: Arc<str> = format!("{}/buy", config.base.trim_end_matches('/')).into();
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
                // The load generator's own HTTP/1.1 client where the base is plain http, reqwest
                // otherwise (https).
                let mut conn = own_connection(&config.base);
                let client = client(1);
                let mut out = BurstResult::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= config.buys {
                        return out;
                    }
                    let via = match &mut conn {
                        Some((conn, path)) => Via::Own(conn, path),
                        None => Via::Reqwest(&client, &url),
                    };
                    let (r, latency) = send(&config, via, &tokens, i, &live, Instant::now()).await;
                    out.add(r, latency);
                }
            })
        })
        .collect();
    let mut all = BurstResult::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.merge(r);
        }
    }
    all
}

async fn open_loop(
    config: &BurstConfig,
    rate: f64,
    live: Arc<Live>,
    tokens: Arc<Vec<String>>,
) -> BurstResult {
    let url: Arc<str> = format!("{}/buy", config.base.trim_end_matches('/')).into();
    let client = client(config.connections);
    // Bounds the requests in flight (and so the sockets); a buy that waits for a slot still
    // counts its latency from when it was due.
    let slots = Arc::new(Semaphore::new(config.connections.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let config = Arc::new(config.clone());
    for i in 0..config.buys {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (config, client, url, tokens, live, tx) = (
            config.clone(),
            client.clone(),
            url.clone(),
            tokens.clone(),
            live.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let answer = send(&config, Via::Reqwest(&client, &url), &tokens, i, &live, due).await;
            drop(slot);
            let _ = tx.send(answer);
        });
    }
    drop(tx);
    let mut all = BurstResult::default();
    while let Some((r, latency)) = rx.recv().await {
        all.add(r, latency);
    }
    all
}
