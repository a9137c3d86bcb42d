//! Protecting the sale from scripts, over real HTTP with the in-process broker and a real
//! PostgreSQL: the sale window (425 before, 410 after, by the server's clock), purchase tokens
//! (bound to a user and an item, honoured by every instance), and rate limits (429 with
//! `Retry-After`, counted in `/metrics`). Every refusal enqueues nothing: the queue is counted.

mod common;

use std::time::Duration;

use common::{api, sale_fixture, TestDb};
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use services::api::limits::{Limit, RateLimits};
use services::api::purchase_token::PurchaseTokens;
use services::api::{ApiConfig, RunningApi};

const SECRET: &str = "test-secret-test-secret-test-secret!";

struct Sale {
    db: TestDb,
    _dir: tempfile::TempDir,
    broker: broker::EmbeddedBroker,
    keys: TokenKeys,
    client: reqwest::Client,
}

/// A database with `items` (id, stock), a broker with the order topic, no worker: what the API
/// queues stays in the queue, to be counted.
async fn sale(items: &[(i64, i32)]) -> Sale {
    let (db, dir, b) = sale_fixture(items, 3).await;
    Sale {
        db,
        _dir: dir,
        broker: b,
        keys: TokenKeys::new(SECRET.as_bytes()),
        client: reqwest::Client::new(),
    }
}

impl Sale {
    async fn api(&self, limits: RateLimits, tune: impl FnOnce(&mut ApiConfig)) -> RunningApi {
        let mut config = ApiConfig {
            bootstrap: self.broker.addr.clone(),
            jwt_secret: SECRET.into(),
            items_refresh: Duration::from_millis(100),
            limits,
            ..ApiConfig::default()
        };
        tune(&mut config);
        api(config, self.db.pool.clone()).await
    }

    /// Runs `sql` on the items table and waits for the API's refresh to see it.
    async fn set(&self, sql: &str) {
        sqlx::query(sql).execute(&self.db.pool).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Buys the queue holds.
    fn queued(&self) -> i64 {
        let t = self.broker.broker().topics.get("seckill").unwrap();
        t.partitions().iter().map(|p| p.high_watermark()).sum()
    }

    async fn buy(&self, base: &str, user: i64, body: Value) -> (u16, Option<String>, Value) {
        let r = self
            .client
            .post(format!("{base}/buy"))
            .bearer_auth(self.keys.mint(user, 600))
            .json(&body)
            .send()
            .await
            .unwrap();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), retry_after, r.json().await.unwrap())
    }

    async fn get(&self, url: String, user: Option<i64>) -> (u16, Value) {
        let mut r = self.client.get(url);
        if let Some(u) = user {
            r = r.bearer_auth(self.keys.mint(u, 600));
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn finish(self) {
        self.db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buys_are_taken_only_while_the_sale_is_open() {
    let s = sale(&[(4001, 5)]).await;
    s.set("UPDATE items SET sale_start = now() + interval '1 hour'")
        .await;
    let a = s.api(RateLimits::off(), |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Before the opening: 425 with the opening time, Retry-After until then, nothing queued.
    let (status, retry, body) = s.buy(&a.url(), 1, json!({"item_id": 4001})).await;
    assert_eq!(status, 425, "{body}");
    assert_eq!(body["error"], "not_open", "{body}");
    let opens = body["opens_at_ms"].as_i64().unwrap();
    let left = opens - shared::time::now_ms();
    assert!((3_500_000..=3_600_000).contains(&left), "{left}");
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((3_500..=3_600).contains(&retry), "{retry}");
    // The listing shows it upcoming, with the server's clock to count down against.
    let (status, items) = s.get(format!("{}/items", a.url()), None).await;
    assert_eq!(status, 200);
    let now = items["server_time_ms"].as_i64().unwrap();
    assert!((now - shared::time::now_ms()).abs() < 5_000, "{items}");
    let listed = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == 4001)
        .unwrap();
    assert_eq!(listed["status"], "upcoming", "{items}");
    assert_eq!(listed["sale_start_ms"], opens, "{items}");
    assert_eq!(listed["available"], 5, "{items}");
    // No purchase token before the opening either.
    let (status, body) = s
        .get(format!("{}/items/4001/token", a.url()), Some(1))
        .await;
    assert_eq!(status, 425, "{body}");
    assert_eq!(s.queued(), 0);

    // Open: accepted.
    s.set("UPDATE items SET sale_start = now() - interval '1 second', sale_end = now() + interval '1 hour'")
        .await;
    let (status, _, body) = s.buy(&a.url(), 1, json!({"item_id": 4001})).await;
    assert_eq!(status, 202, "{body}");
    let (_, item) = s.get(format!("{}/items/4001", a.url()), None).await;
    assert_eq!(item["status"], "open", "{item}");
    assert_eq!(item["available"], 4, "{item}");

    // Closed: 410 sale_ended, nothing queued; unknown items are 404 on /items.
    s.set("UPDATE items SET sale_end = now()").await;
    let (status, _, body) = s.buy(&a.url(), 2, json!({"item_id": 4001})).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"], "sale_ended", "{body}");
    let (_, item) = s.get(format!("{}/items/4001", a.url()), None).await;
    assert_eq!(item["status"], "ended", "{item}");
    let (status, _) = s.get(format!("{}/items/999", a.url()), None).await;
    assert_eq!(status, 404);
    assert_eq!(s.queued(), 1, "only the buy inside the window was queued");

    let metrics = s
        .client
        .get(format!("{}/metrics", a.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"order_api_admission_refused_total{reason="not_open"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"order_api_admission_refused_total{reason="ended"} 1"#),
        "{metrics}"
    );
    a.stop().await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_requires_a_token_takes_only_its_buyers_own_token() {
    let s = sale(&[(4002, 10), (4003, 10)]).await;
    s.set("UPDATE items SET require_token = true").await;
    let a = s.api(RateLimits::off(), |_| {}).await;
    let b = s.api(RateLimits::off(), |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No token: 401 naming where to get one.
    let (status, _, body) = s.buy(&a.url(), 1, json!({"item_id": 4002})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "purchase_token_required", "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("/items/4002/token"));
    // The token endpoint needs a signed-in user.
    let (status, _) = s.get(format!("{}/items/4002/token", a.url()), None).await;
    assert_eq!(status, 401);
    let (status, t1) = s
        .get(format!("{}/items/4002/token", a.url()), Some(1))
        .await;
    assert_eq!(status, 200, "{t1}");
    let token1 = t1["purchase_token"].as_str().unwrap().to_string();
    let expires = t1["expires_at_ms"].as_i64().unwrap() - shared::time::now_ms();
    assert!((55_000..=60_000).contains(&expires), "{expires}");

    // Another user's token, a token for another item, a tampered or an expired one: 403.
    let (status, _, body) = s
        .buy(
            &a.url(),
            2,
            json!({"item_id": 4002, "purchase_token": token1}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("purchase_token_invalid"))
    );
    let (status, _, body) = s
        .buy(
            &a.url(),
            1,
            json!({"item_id": 4003, "purchase_token": token1}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("purchase_token_invalid"))
    );
    let tampered = token1.replacen("1.4002.", "1.4002.9", 1);
    let (status, _, body) = s
        .buy(
            &a.url(),
            1,
            json!({"item_id": 4002, "purchase_token": tampered}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("purchase_token_invalid"))
    );
    let expired = PurchaseTokens::new(SECRET.as_bytes()).mint(1, 4002, shared::time::now_ms() - 1);
    let (status, _, body) = s
        .buy(
            &a.url(),
            1,
            json!({"item_id": 4002, "purchase_token": expired}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("purchase_token_expired"))
    );
    assert_eq!(s.queued(), 0, "no refused buy reached the queue");

    // The buyer's own token, minted by instance A, is good on instance B (nothing shared but
    // the secret).
    let (status, _, body) = s
        .buy(
            &b.url(),
            1,
            json!({"item_id": 4002, "purchase_token": token1}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // And B's tokens on A.
    let (_, t2) = s
        .get(format!("{}/items/4003/token", b.url()), Some(2))
        .await;
    let (status, _, body) = s
        .buy(
            &a.url(),
            2,
            json!({"item_id": 4003, "purchase_token": t2["purchase_token"]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(s.queued(), 2);

    // The order worker confirms both: the API signed their events, and a token item's buy is
    // applied only with that signature (services/src/orders/signature.rs).
    let w = common::order_worker(&s.broker.addr, s.db.pool.clone(), |_| {}).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(w.run(stop.clone()));
    common::wait_for_rows(
        &s.db.pool,
        "SELECT count(*) - 1 FROM orders WHERE status = 'confirmed'",
        Duration::from_secs(30),
        "the API's signed buys of token items were not confirmed",
    )
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    a.stop().await;
    b.stop().await;
    s.finish().await;
}

async fn metric(s: &Sale, base: &str, line: &str) -> bool {
    s.client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains(line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_over_its_rate_gets_429_and_queues_nothing() {
    let s = sale(&[(4004, 1000)]).await;
    let limits = RateLimits {
        per_user: Some(Limit { rate: 1, burst: 3 }),
        per_address: None,
        global: None,
        status_per_address: None,
    };
    let a = s.api(limits, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A script fires 20 buys for one user at once: the burst (3) gets through the limit (one
    // 202, then duplicates), the rest get 429 with Retry-After and reach nothing.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, retry, body) = s.buy(&a.url(), 7, json!({"item_id": 4004})).await;
        if status == 429 {
            assert_eq!(body["error"], "rate_limited", "{body}");
            assert_eq!(body["limit"], "user", "{body}");
            assert_eq!(retry.as_deref(), Some("1"), "{body}");
        }
        statuses.push(status);
    }
    let limited = statuses.iter().filter(|&&c| c == 429).count();
    assert_eq!(limited, 17, "{statuses:?}");
    assert_eq!(statuses[0], 202, "{statuses:?}");
    assert_eq!(s.queued(), 1);
    // Another user is not held back by the script's limit.
    let (status, _, body) = s.buy(&a.url(), 8, json!({"item_id": 4004})).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        metric(
            &s,
            &a.url(),
            r#"order_api_rate_limited_total{limit="user"} 17"#
        )
        .await
    );
    assert!(
        metric(
            &s,
            &a.url(),
            r#"order_api_rate_limit_per_second{limit="user"} 1"#
        )
        .await
    );
    assert!(
        metric(
            &s,
            &a.url(),
            r#"order_api_rate_limit_burst{limit="user"} 3"#
        )
        .await
    );
    // After the wait Retry-After asked for, the user is let through again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = s.buy(&a.url(), 7, json!({"item_id": 4004})).await;
    assert_eq!(
        status, 409,
        "let through, and refused as the duplicate it is: {body}"
    );
    a.stop().await;

    // Per address: many users from one address share its limit, unless the API trusts the
    // proxy's X-Forwarded-For, where each client address has its own.
    let per_address = RateLimits {
        per_user: None,
        per_address: Some(Limit { rate: 1, burst: 2 }),
        global: None,
        status_per_address: None,
    };
    let direct = s.api(per_address, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut codes = Vec::new();
    for user in 100..104 {
        codes.push(s.buy(&direct.url(), user, json!({"item_id": 4004})).await.0);
    }
    assert_eq!(codes, [202, 202, 429, 429]);
    let (_, _, body) = s.buy(&direct.url(), 105, json!({"item_id": 4004})).await;
    assert_eq!(body["limit"], "address", "{body}");
    direct.stop().await;
    let proxied = s.api(per_address, |c| c.trust_forwarded_for = true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for user in 200..204 {
        let r = s
            .client
            .post(format!("{}/buy", proxied.url()))
            .bearer_auth(s.keys.mint(user, 600))
            .header("x-forwarded-for", format!("1.2.3.4, 10.0.0.{user}"))
            .json(&json!({"item_id": 4004}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "each client address has its own limit");
    }
    proxied.stop().await;

    // A global ceiling per instance.
    let global = RateLimits {
        per_user: None,
        per_address: None,
        global: Some(Limit { rate: 1, burst: 1 }),
        status_per_address: None,
    };
    let g = s.api(global, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.buy(&g.url(), 300, json!({"item_id": 4004})).await.0, 202);
    let (status, _, body) = s.buy(&g.url(), 301, json!({"item_id": 4004})).await;
    assert_eq!((status, body["limit"].as_str()), (429, Some("global")));
    g.stop().await;
    assert_eq!(s.queued(), 2 + 2 + 4 + 1);
    s.finish().await;
}
