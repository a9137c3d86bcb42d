//! The order worker end to end: real broker (in-process, over TCP), real rdkafka clients, real
//! PostgreSQL. The worker is killed in the middle of the run and a new one takes over: every
//! event still becomes exactly one order, no item is oversold, bad events go to the DLQ.

mod common;

use std::time::{Duration, Instant};

use common::{broker, create_topic, order_worker, spawn_until_aborted, TestDb};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use services::orders::OrderHandler;
use services::worker::Worker;
use shared::messages::OrderEvent;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BUYERS_PER_ITEM: i64 = 2500;
const STOCK: i32 = 500;

async fn produce_buys(bootstrap: &str) -> usize {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut sends = Vec::new();
    for item in [2000i64, 2001] {
        for user in 1..=BUYERS_PER_ITEM {
            let event = OrderEvent {
                request_id: Uuid::new_v4(),
                user_id: user,
                item_id: item,
                qty: 1,
                accepted_at_ms: 1_700_000_000_000,
            };
            let producer = producer.clone();
            sends.push(async move {
                let key = item.to_string();
                producer
                    .send(
                        FutureRecord::to("seckill")
                            .key(&key)
                            .payload(&event.encode()),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            });
        }
    }
    // Three events no worker can decode (sent first: the buys above are lazy futures).
    for bad in [&b"{not json"[..], b"{\"request_id\":1}", b""] {
        producer
            .send(
                FutureRecord::to("seckill").key("2000").payload(bad),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let n = sends.len();
    for r in futures_util::future::join_all(sends).await {
        r.unwrap();
    }
    n + 3
}

async fn worker(bootstrap: &str, pool: sqlx::PgPool) -> Worker<OrderHandler> {
    order_worker(bootstrap, pool, |c| {
        c.max_batch = 200;
        c.session_timeout_ms = 6000;
    })
    .await
}

async fn orders(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_becomes_one_order_even_when_the_worker_is_killed_midway() {
    let db = TestDb::new().await;
    db.item(2000, STOCK).await;
    db.item(2001, STOCK).await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    create_topic(&b, "seckill", 6);
    let events = produce_buys(&b.addr).await;
    assert_eq!(events, 5003);

    // First worker: killed (task aborted) part-way through.
    let first = worker(&b.addr, db.pool.clone()).await;
    let stats = first.metrics().clone();
    let task = spawn_until_aborted(first);
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.events.get() < 1000 {
        assert!(Instant::now() < deadline, "first worker made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    let done_by_first = orders(&db).await;
    assert!(
        done_by_first > 0 && done_by_first < 5000,
        "killed too late to matter: {done_by_first}"
    );

    // Second worker takes over from the committed offsets (re-applying at most a batch).
    let second = worker(&b.addr, db.pool.clone()).await;
    let stats2 = second.metrics().clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(second.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(90);
    while orders(&db).await < 2 * BUYERS_PER_ITEM {
        assert!(
            Instant::now() < deadline,
            "only {} orders",
            orders(&db).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();

    for item in [2000, 2001] {
        let c = db.counts(item).await;
        assert_eq!(
            c.get("confirmed"),
            Some(&(STOCK as i64)),
            "item {item}: {c:?}"
        );
        assert_eq!(
            c.get("rejected_sold_out"),
            Some(&(BUYERS_PER_ITEM - STOCK as i64)),
            "item {item}: {c:?}"
        );
        assert_eq!(db.stock(item).await, 0);
    }
    assert_eq!(
        orders(&db).await,
        2 * BUYERS_PER_ITEM,
        "one order per event, none twice"
    );
    assert!(stats2.dead_lettered.get() + stats.dead_lettered.get() >= 3);

    // The dead-letter topic holds the three bad events with their reason.
    let dlq: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("group.id", "dlq-check")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("seckill.dlq", 0, Offset::Beginning)
        .unwrap();
    dlq.assign(&tpl).unwrap();
    let mut reasons = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reasons.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(m)) = dlq.poll(Duration::from_millis(200)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "reason"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            assert!(!reason.is_empty());
            reasons.insert(m.payload().unwrap_or_default().to_vec());
        }
    }
    assert_eq!(reasons.len(), 3, "three distinct bad events dead-lettered");
    db.drop_db().await;
}
