//! `GET /orders/{id}` while PostgreSQL is down (stopped with `pg_ctl -m immediate`): the receipt
//! of the 202 still answers `queued` at once, and without a receipt the answer is 503
//! `unavailable` within the lookup timeout, never a 500 and never a wait on the pool. (Before,
//! the first was a 500 `internal`, and reads then hung on the pool for over 5 s.)

use std::time::{Duration, Instant};

use loadtest::throwaway_pg::ThrowawayPg;
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use services::api::ApiConfig;

const SECRET: &str = "status-without-db-secret-0123456789";

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        r.json().await.unwrap_or_default(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_answers_the_status_while_the_database_is_down() {
    let pg = ThrowawayPg::start().unwrap();
    let pool = services::db::connect(&pg.url, 4).await.unwrap();
    sqlx::query("DELETE FROM items")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items (id, name, initial_stock, stock) VALUES (1, 'item 1', 10, 10)")
        .execute(&pool)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = loadtest::embedded::fsync_broker(dir.path()).unwrap();
    let topics = &broker.broker().topics;
    topics
        .create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())
        .unwrap();
    let api = loadtest::embedded::api(
        ApiConfig {
            bootstrap: broker.addr.clone(),
            jwt_secret: SECRET.into(),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        pool.clone(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let token = TokenKeys::new(SECRET.as_bytes()).mint(7, 600);
    // No worker runs: the buy stays queued. The API admits once its first refresh is done.
    let deadline = Instant::now() + Duration::from_secs(20);
    let accepted: Value = loop {
        let r = client
            .post(format!("{}/buy", api.url()))
            .bearer_auth(&token)
            .header("Idempotency-Key", "status-1")
            .json(&json!({"item_id": 1}))
            .send()
            .await
            .unwrap();
        if r.status() == 202 {
            break r.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "never accepted: {}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = accepted["request_id"].as_str().unwrap().to_string();
    let with_receipt = format!("{}{}", api.url(), accepted["status_url"].as_str().unwrap());
    let (status, body, _) = get(&client, &with_receipt).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("queued")),
        "{body}"
    );

    pg.kill_server().unwrap();
    for _ in 0..3 {
        let (status, body, took) = get(&client, &with_receipt).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("queued")),
            "with the database down, the receipt answers: {body}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
        // The buyer's token without the receipt: only the database could say.
        let started = Instant::now();
        let r = client
            .get(format!("{}/orders/{id}", api.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        let took = started.elapsed();
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("unavailable")),
            "with the buyer's token and no receipt: {body}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
    // A forged receipt is still refused, database or not.
    let (status, _, _) = get(
        &client,
        &format!("{}/orders/{id}?receipt=q.AAAAAAAAAAAAAAAAAAAAAA", api.url()),
    )
    .await;
    assert_eq!(status, 400);

    pg.start_server().unwrap();
    api.stop().await;
    pool.close().await;
}
