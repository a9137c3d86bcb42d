//! The ingest API over real HTTP, with the in-process broker, a real order worker and a real
//! PostgreSQL: a burst far above what one transaction per buy could take, exactly-once orders,
//! no oversell, and the right status for every bad request.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{api, order_worker, sale_fixture, spawn_until_aborted, TestDb};
use serde_json::json;
use services::api::auth::TokenKeys;
use services::api::{ApiConfig, RunningApi};
use services::worker::WorkerError;
use uuid::Uuid;

const SECRET: &str = "test-secret-test-secret-test-secret!";

struct Stack {
    db: TestDb,
    _dir: tempfile::TempDir,
    broker: broker::EmbeddedBroker,
    base: String,
    keys: TokenKeys,
    api: RunningApi,
    /// The order worker's task: aborting it is a crash (no final commit).
    worker: Option<tokio::task::JoinHandle<Result<(), WorkerError>>>,
}

async fn spawn_worker(
    bootstrap: &str,
    pool: sqlx::PgPool,
) -> tokio::task::JoinHandle<Result<(), WorkerError>> {
    // Small batches, so a kill lands in the middle of the work.
    spawn_until_aborted(order_worker(bootstrap, pool, |c| c.max_batch = 100).await)
}

async fn stack(items: &[(i64, i32)], load_test_mode: bool) -> Stack {
    let (db, dir, b) = sale_fixture(items, 6).await;
    let worker = Some(spawn_worker(&b.addr, db.pool.clone()).await);
    let api = api(
        ApiConfig {
            bootstrap: b.addr.clone(),
            jwt_secret: SECRET.into(),
            load_test_mode,
            items_refresh: Duration::from_millis(100),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await;
    Stack {
        db,
        _dir: dir,
        broker: b,
        base: api.url(),
        keys: TokenKeys::new(SECRET.as_bytes()),
        api,
        worker,
    }
}

impl Stack {
    async fn orders(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn wait_for_orders(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.orders().await < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} orders applied",
                self.orders().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records the queue holds (sum of the high watermarks of `seckill`).
    fn queued(&self) -> i64 {
        let t = self.broker.broker().topics.get("seckill").unwrap();
        t.partitions().iter().map(|p| p.high_watermark()).sum()
    }

    /// Kills the order worker mid-run and starts a fresh one in the same group.
    async fn restart_worker(&mut self) {
        self.kill_worker().await;
        self.start_worker().await;
    }

    async fn kill_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            w.abort();
            let _ = w.await;
        }
    }

    async fn start_worker(&mut self) {
        self.worker = Some(spawn_worker(&self.broker.addr, self.db.pool.clone()).await);
    }

    /// Another API instance on the same broker and database (another process, as far as the
    /// API knows: it shares nothing in memory with the first).
    async fn second_api(&self) -> RunningApi {
        api(
            ApiConfig {
                bootstrap: self.broker.addr.clone(),
                jwt_secret: SECRET.into(),
                items_refresh: Duration::from_millis(100),
                limits: services::api::limits::RateLimits::off(),
                ..ApiConfig::default()
            },
            self.db.pool.clone(),
        )
        .await
    }

    async fn finish(mut self) {
        self.kill_worker().await;
        self.api.stop().await;
        self.db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_buyers_for_a_thousand_units_with_the_worker_killed_midway() {
    let mut s = stack(&[(3000, 1000)], false).await;
    let client = reqwest::Client::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::new();
    for user in 1..=5000i64 {
        let (client, url, token, limit) = (
            client.clone(),
            format!("{}/buy", s.base),
            s.keys.mint(user, 600),
            limit.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"item_id": 3000, "qty": 1}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }));
    }
    // Kill the worker once it has applied its first batch, while the burst is still coming in.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.orders().await == 0 {
        assert!(Instant::now() < deadline, "the worker applied nothing");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.restart_worker().await;
    let applied_before_kill = s.orders().await;

    let mut accepted = Vec::new();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        *by_status.entry(status).or_default() += 1;
        if status == 202 {
            let id: Uuid = body["request_id"].as_str().unwrap().parse().unwrap();
            let url = body["status_url"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/orders/{id}?receipt=q.")),
                "{body}"
            );
            accepted.push(id);
        } else {
            assert_eq!(status, 410, "{body}");
            // Claimed by queued buys while the worker is behind, sold out once it caught up.
            assert!(
                ["claimed", "sold_out"].contains(&body["error"].as_str().unwrap()),
                "{body}"
            );
        }
    }
    assert_eq!(by_status.values().sum::<usize>(), 5000);
    // Admission counts what is queued: exactly the stock is accepted, the rest refused at once.
    assert_eq!(accepted.len(), 1000, "{by_status:?}");
    assert!(
        applied_before_kill < accepted.len() as i64,
        "the kill came after the whole run: {applied_before_kill}"
    );
    s.wait_for_orders(accepted.len() as i64).await;

    let counts = s.db.counts(3000).await;
    assert_eq!(counts.get("confirmed"), Some(&1000), "{counts:?}");
    assert_eq!(
        counts.values().sum::<i64>(),
        accepted.len() as i64,
        "one row per 202"
    );
    assert_eq!(
        counts.get("rejected_sold_out").copied().unwrap_or(0),
        accepted.len() as i64 - 1000
    );
    assert_eq!(s.db.stock(3000).await, 0);
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT request_id FROM orders")
        .fetch_all(&s.db.pool)
        .await
        .unwrap();
    let ids: HashSet<Uuid> = ids.into_iter().collect();
    assert!(
        accepted.iter().all(|id| ids.contains(id)),
        "every 202'd request id is an order"
    );
    assert_eq!(s.queued(), accepted.len() as i64, "410s enqueued nothing");

    // The outcome can be polled, by the buyer.
    let (confirmed, buyer): (Uuid, i64) =
        sqlx::query_as("SELECT request_id, user_id FROM orders WHERE status = 'confirmed' LIMIT 1")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    let r: serde_json::Value = client
        .get(format!("{}/orders/{confirmed}", s.base))
        .bearer_auth(s.keys.mint(buyer, 600))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "confirmed");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_buyers_idempotency_keys_and_bad_requests() {
    let s = stack(&[(3001, 10)], false).await;
    let c = reqwest::Client::new();
    let url = format!("{}/buy", s.base);
    let token = s.keys.mint(77, 600);

    let buy_from = |user: i64, key: Option<&str>| {
        let mut r = c
            .post(&url)
            .bearer_auth(s.keys.mint(user, 600))
            .json(&json!({"item_id": 3001}));
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        r.send()
    };
    let buy = |key: Option<&str>| buy_from(77, key);
    let first = buy(None).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    // A second buy of the item by the same buyer is refused at once, naming the first.
    let second = buy(None).await.unwrap();
    assert_eq!(second.status(), 409);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["error"], "duplicate", "{second}");
    assert_eq!(second["request_id"], first["request_id"], "{second}");
    // The same Idempotency-Key, concurrently: one request id; each attempt may be enqueued,
    // the worker applies the id once, and a retry of the same request is not a duplicate.
    let (k1, k2) = tokio::join!(buy_from(78, Some("abc")), buy_from(78, Some("abc")));
    let (k1, k2) = (k1.unwrap(), k2.unwrap());
    assert_eq!((k1.status().as_u16(), k2.status().as_u16()), (202, 202));
    let (k1, k2): (serde_json::Value, serde_json::Value) =
        (k1.json().await.unwrap(), k2.json().await.unwrap());
    assert_eq!(k1["request_id"], k2["request_id"]);
    assert_eq!(k1["idempotency_key"], "abc");
    assert_eq!(s.queued(), 3);
    s.wait_for_orders(2).await;
    // The key names the request on any instance, also later: a fresh API instance derives the
    // same id, and the worker applies it once.
    let other = api(
        ApiConfig {
            bootstrap: s.broker.addr.clone(),
            jwt_secret: SECRET.into(),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        s.db.pool.clone(),
    )
    .await;
    let again: serde_json::Value = c
        .post(format!("{}/buy", other.url()))
        .bearer_auth(s.keys.mint(78, 600))
        .header("Idempotency-Key", "abc")
        .json(&json!({"item_id": 3001}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["request_id"], k1["request_id"], "{again}");
    other.stop().await;
    let wait_applied = Instant::now() + Duration::from_secs(30);
    while s.orders().await != 2 || s.queued() != 4 {
        assert!(Instant::now() < wait_applied, "retry not queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = |reply: &serde_json::Value| {
        let c = c.clone();
        let url = format!("{}{}", s.base, reply["status_url"].as_str().unwrap());
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(status(&first).await["status"], "confirmed");
    assert_eq!(status(&k1).await["status"], "confirmed");
    assert_eq!(s.db.stock(3001).await, 8);

    // Bad requests: the right status, a JSON error, and nothing enqueued.
    let before = s.queued();
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (c.post(&url).json(&json!({"item_id": 3001})), 401),
        (
            c.post(&url)
                .bearer_auth("not-a-jwt")
                .json(&json!({"item_id": 3001})),
            401,
        ),
        (
            c.post(&url)
                .bearer_auth(TokenKeys::new(b"another-secret-another-secret!!!").mint(77, 600))
                .json(&json!({"item_id": 3001})),
            401,
        ),
        (
            c.post(&url)
                .bearer_auth(s.keys.mint(77, -60))
                .json(&json!({"item_id": 3001})),
            401,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
        (
            c.post(&url).bearer_auth(&token).body("{\"item_id\": 3001}"),
            400,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": "x"})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": 3001, "extra": 1})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": 3001, "qty": 0})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": 3001, "qty": 11})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": -1})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": 9999})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"item_id": 3001, "user_id": 5})),
            422,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .header("Idempotency-Key", "")
                .json(&json!({"item_id": 3001})),
            400,
        ),
        (
            c.post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"item_id\": 3001, \"pad\": \"{}\"}}",
                    "x".repeat(5000)
                )),
            413,
        ),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "case {i}");
        let body: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {i}: JSON error body: {e}"));
        assert!(body["error"].is_string(), "case {i}: {body}");
    }
    assert_eq!(s.queued(), before, "bad requests enqueued nothing");
    let unknown = c
        .get(format!("{}/orders/{}", s.base, Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401, "no receipt, no token");
    let unknown: serde_json::Value = unknown.json().await.unwrap();
    assert!(
        unknown["detail"].as_str().unwrap().contains("receipt"),
        "{unknown}"
    );
    assert_eq!(
        c.get(format!("{}/orders/nope", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let health = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = c
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("order_api_responses_total{route=\"/buy\",status=\"202\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("order_api_enqueue_seconds_count 3"),
        "{metrics}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_queue_is_a_503_never_a_false_202() {
    let db = TestDb::new().await;
    db.item(3002, 10).await;
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = api(
        ApiConfig {
            bootstrap: format!("127.0.0.1:{port}"),
            jwt_secret: SECRET.into(),
            enqueue_timeout: Duration::from_millis(3000),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await;
    let base = api.url();
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{base}/buy"))
        .bearer_auth(TokenKeys::new(SECRET.as_bytes()).mint(1, 600))
        .header("Idempotency-Key", "k-1")
        .json(&json!({"item_id": 3002}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let body: serde_json::Value = r.json().await.unwrap();
    // Never sent: certainly not queued, and said so within the configured timeout.
    assert_eq!(body["error"], "not_accepted", "{body}");
    assert_eq!(body["idempotency_key"], "k-1");
    assert!(body["request_id"].is_string(), "{body}");
    assert!(
        took < Duration::from_millis(3100),
        "answered after {took:?}, past the 3000 ms enqueue timeout"
    );
    // Inference too: a 503, and no request left behind as pending.
    let r = reqwest::Client::new()
        .post(format!("{base}/infer?wait_ms=100"))
        .bearer_auth(TokenKeys::new(SECRET.as_bytes()).mint(1, 600))
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM inference_requests")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    api.stop().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_test_mode_takes_the_user_from_the_body_only_when_switched_on() {
    let s = stack(&[(3003, 10)], true).await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/buy", s.base))
        .json(&json!({"item_id": 3003, "user_id": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    s.wait_for_orders(1).await;
    let user: i64 = sqlx::query_scalar("SELECT user_id FROM orders")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(user, 42);
    let r = c
        .post(format!("{}/buy", s.base))
        .json(&json!({"item_id": 3003}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token and no user id");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_buyer_firing_the_same_buy_at_once_gets_one_202() {
    let s = stack(&[(3020, 100)], false).await;
    let c = reqwest::Client::new();
    let token = s.keys.mint(55, 600);
    // Twenty buys of one item by one user, each with its own key, all in flight together.
    let answers = futures_util::future::join_all((0..20).map(|i| {
        c.post(format!("{}/buy", s.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("k{i}"))
            .json(&json!({"item_id": 3020}))
            .send()
    }))
    .await;
    let mut codes: Vec<u16> = answers
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes.iter().filter(|&&c| c == 202).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 409).count(), 19, "{codes:?}");
    assert_eq!(s.queued(), 1, "the duplicates never reached the queue");
    s.finish().await;
}

/// POST /buy as `user` on `base`; (status, body).
async fn buy_as(
    c: &reqwest::Client,
    keys: &TokenKeys,
    base: &str,
    user: i64,
    item: i64,
) -> (u16, serde_json::Value) {
    let r = c
        .post(format!("{base}/buy"))
        .bearer_auth(keys.mint(user, 600))
        .json(&json!({"item_id": item}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_json(c: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_is_said_by_every_instance_and_freed_units_are_offered_again() {
    let mut s = stack(&[(3010, 10)], false).await;
    s.kill_worker().await;
    let c = reqwest::Client::new();
    // Instance A queues 9 of the 10 units (the worker is stopped, so they stay queued).
    let mut accepted = Vec::new();
    for user in 1..=9 {
        let (status, body) = buy_as(&c, &s.keys, &s.base, user, 3010).await;
        assert_eq!(status, 202, "{body}");
        accepted.push(body);
    }
    // Another instance (nothing shared in memory) sees A's queued units once A published them,
    // and admits the last unit, to user 1 again: B cannot know user 1 bought through A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = s.second_api().await;
    let (status, body) = buy_as(&c, &s.keys, &other.url(), 1, 3010).await;
    assert_eq!(status, 202, "{body}");
    accepted.push(body);
    // Now the queue claims every unit: both instances refuse at once, nothing enqueued.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = s.queued();
    for base in [s.base.clone(), other.url()] {
        let (status, body) = buy_as(&c, &s.keys, &base, 11, 3010).await;
        // Units are left in the database, but queued buys claim them all: worth retrying.
        assert_eq!(
            (status, body["error"].as_str()),
            (410, Some("claimed")),
            "{body}"
        );
        // A keyless buy was refused before any request id was made: it names none, as there
        // is no request a client could ever look up or retry by.
        assert!(body.get("request_id").is_none(), "{body}");
        // A buy with the client's own key names its request (it may be a retry of one that
        // was queued).
        let r = c
            .post(format!("{base}/buy"))
            .bearer_auth(s.keys.mint(11, 600))
            .header("Idempotency-Key", "k-11")
            .json(&json!({"item_id": 3010}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 410);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["request_id"].as_str(),
            Some(
                services::api::routes::buy::request_id(11, "k-11")
                    .to_string()
                    .as_str()
            ),
            "{body}"
        );
    }
    assert_eq!(s.queued(), before);
    // B says "queued" for A's 202s from their receipts alone.
    for a in &accepted {
        let url = format!("{}{}", other.url(), a["status_url"].as_str().unwrap());
        let (status, body) = get_json(&c, url).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("queued")),
            "{body}"
        );
    }
    // A tampered or foreign receipt is refused; no receipt (and no token) is a 401 that says
    // where it is.
    let id = accepted[0]["request_id"].as_str().unwrap();
    let forged = format!(
        "{}/orders/{id}?receipt=q.AAAAAAAAAAAAAAAAAAAAAA",
        other.url()
    );
    assert_eq!(get_json(&c, forged).await.0, 400);
    let (status, body) = get_json(&c, format!("{}/orders/{id}", other.url())).await;
    assert_eq!(status, 401, "{body}");

    // The worker decides: user 1's second order is a duplicate and frees its unit, which is
    // offered again within a second.
    s.start_worker().await;
    s.wait_for_orders(accepted.len() as i64).await;
    let freed_at = Instant::now();
    let (status, body) = loop {
        let (status, body) = buy_as(&c, &s.keys, &s.base, 13, 3010).await;
        if status == 202 || freed_at.elapsed() > Duration::from_secs(3) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 202, "the freed unit was not offered again: {body}");
    assert!(
        freed_at.elapsed() < Duration::from_secs(1),
        "offered again after {:?}",
        freed_at.elapsed()
    );
    s.wait_for_orders(accepted.len() as i64 + 1).await;
    assert_eq!(s.db.stock(3010).await, 0, "the sale sold out");
    let url = format!(
        "{}{}",
        other.url(),
        accepted[1]["status_url"].as_str().unwrap()
    );
    assert_eq!(get_json(&c, url).await.1["status"], "confirmed");
    other.stop().await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_and_the_database() {
    let s = stack(&[(3011, 1)], false).await;
    let c = reqwest::Client::new();
    let (status, body) = get_json(&c, format!("{}/readyz", s.base)).await;
    assert_eq!(
        (status, body["ready"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // An API whose broker is not there: alive, not ready, and it says why.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lonely = api(
        ApiConfig {
            bootstrap: format!("127.0.0.1:{port}"),
            jwt_secret: SECRET.into(),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        s.db.pool.clone(),
    )
    .await;
    let r = c
        .get(format!("{}/healthz", lonely.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = get_json(&c, format!("{}/readyz", lonely.url())).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["failed"]["broker"].is_string(), "{body}");
    assert!(body["failed"].get("database").is_none(), "{body}");
    lonely.stop().await;
    s.finish().await;
}

/// A sale opens with a crowd connecting in the same instant. While the API is busy (here: bound
/// and not accepting yet), every connection completes its handshake at once and is served once
/// the API gets to it. With the standard backlog (128) the connections past it lost their SYN
/// and waited a second for its retransmission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_connecting_at_the_opening_is_queued_then_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CROWD: usize = 600;
    let (db, _dir, b) = sale_fixture(&[], 1).await;
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: b.addr.clone(),
        jwt_secret: SECRET.into(),
        ..ApiConfig::default()
    };
    let api = services::api::Api::bind(config, db.pool.clone())
        .await
        .unwrap();
    let addr = api.addr();
    let connects: Vec<_> = (0..CROWD)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
            })
        })
        .collect();
    let mut crowd = Vec::new();
    for c in connects {
        if let Ok(Ok(s)) = c.await.unwrap() {
            crowd.push(s);
        }
    }
    assert_eq!(
        crowd.len(),
        CROWD,
        "connections that did not complete within 500 ms while the API was busy"
    );
    let api = api.spawn();
    // The last to connect is served too.
    let mut last = crowd.pop().unwrap();
    last.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), last.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(crowd);
    api.stop().await;
    db.drop_db().await;
}

/// A decided order's status is the buyer's: readable with the 202's receipt or the buyer's
/// token, 401 without either (for any id, so ids reveal nothing), and with another user's token
/// answered as if it did not exist. Before, anyone who knew or guessed the id (a name-based
/// UUID of user and key) read any order. Status reads have a rate limit of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_orders_status_is_the_buyers_only_and_reads_are_rate_limited() {
    let s = stack(&[(3030, 10)], false).await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/buy", s.base))
        .bearer_auth(s.keys.mint(90, 600))
        .header("Idempotency-Key", "predictable")
        .json(&json!({"item_id": 3030}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let accepted: serde_json::Value = r.json().await.unwrap();
    let id = accepted["request_id"].as_str().unwrap().to_string();
    s.wait_for_orders(1).await;

    let read = |token: Option<i64>, receipt: bool| {
        let url = if receipt {
            format!("{}{}", s.base, accepted["status_url"].as_str().unwrap())
        } else {
            format!("{}/orders/{id}", s.base)
        };
        let mut req = c.get(url);
        if let Some(user) = token {
            req = req.bearer_auth(s.keys.mint(user, 600));
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = read(None, false).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, body) = read(Some(91), false).await;
    assert_eq!(status, 404, "another user's token: {body}");
    assert!(
        body.get("status").is_none() && body.get("item_id").is_none(),
        "{body}"
    );
    for (token, receipt) in [(Some(90), false), (None, true), (Some(91), true)] {
        let (status, body) = read(token, receipt).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("confirmed")),
            "token {token:?}, receipt {receipt}: {body}"
        );
    }

    // The rate limit of status reads, per address, apart from the buys'.
    let limited = api(
        ApiConfig {
            bootstrap: s.broker.addr.clone(),
            jwt_secret: SECRET.into(),
            limits: services::api::limits::RateLimits {
                status_per_address: Some(services::api::limits::Limit { rate: 1, burst: 2 }),
                ..services::api::limits::RateLimits::off()
            },
            ..ApiConfig::default()
        },
        s.db.pool.clone(),
    )
    .await;
    let url = format!(
        "{}{}",
        limited.url(),
        accepted["status_url"].as_str().unwrap()
    );
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = c.get(&url).send().await.unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["limit"], "status_address", "{body}");
        }
    }
    assert_eq!(codes, [200, 200, 429]);
    limited.stop().await;
    s.finish().await;
}

/// The same buyer and Idempotency-Key for another item is 409 `key_reused`, naming the first
/// buy, and nothing is queued; a retry of the first buy with the key is still its 202. Before,
/// the second buy got a 202 carrying the first buy's request id, and the worker, applying that
/// id once, never bought the second item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_for_another_item_is_refused_with_409() {
    let s = stack(&[(3040, 10), (3041, 10)], false).await;
    let c = reqwest::Client::new();
    let token = s.keys.mint(70, 600);
    let buy = |item: i64| {
        c.post(format!("{}/buy", s.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "order-1")
            .json(&json!({"item_id": item}))
            .send()
    };
    let first = buy(3040).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let queued = s.queued();

    let other = buy(3041).await.unwrap();
    assert_eq!(other.status(), 409);
    let other: serde_json::Value = other.json().await.unwrap();
    assert_eq!(other["error"], "key_reused", "{other}");
    assert_eq!(other["request_id"], first["request_id"], "{other}");
    assert!(
        other["detail"].as_str().unwrap().contains("3040"),
        "{other}"
    );
    assert_eq!(s.queued(), queued, "the refused buy queued nothing");

    let retry = buy(3040).await.unwrap();
    assert_eq!(retry.status(), 202, "a retry of the first buy");
    let retry: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(retry["request_id"], first["request_id"]);
    s.finish().await;
}

/// Issue 28's replay finding: a buyer's key `k1` admitted by one instance, a second buy of the
/// item with `k2` admitted by another (which never saw `k1`), then `k1` replayed on the second:
/// the answer names `k1`'s own request (and the other buy apart), never `k2`'s as if it were
/// `k1`'s. Only one of the two becomes a confirmed order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_replayed_on_another_instance_is_answered_under_its_own_request_id() {
    let s = stack(&[(3050, 10)], false).await;
    let other = s.second_api().await;
    let c = reqwest::Client::new();
    let token = s.keys.mint(71, 600);
    let buy = |base: String, key: &'static str| {
        c.post(format!("{base}/buy"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"item_id": 3050}))
            .send()
    };
    let first = buy(s.base.clone(), "k1").await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = buy(other.url(), "k2").await.unwrap();
    assert_eq!(second.status(), 202, "the other instance never saw k1");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_ne!(first["request_id"], second["request_id"]);

    let replay = buy(other.url(), "k1").await.unwrap();
    let status = replay.status().as_u16();
    let replay: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(status, 409, "{replay}");
    assert_eq!(replay["error"], "duplicate", "{replay}");
    assert_eq!(replay["request_id"], first["request_id"], "{replay}");
    assert_eq!(replay["duplicate_of"], second["request_id"], "{replay}");

    s.wait_for_orders(2).await;
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE user_id = 71 AND status = 'confirmed'",
    )
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 1);
    other.stop().await;
    s.finish().await;
}
