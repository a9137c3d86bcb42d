//! The order worker end to end: real broker (in-process, over TCP), real rdkafka clients, real
//! PostgreSQL. The worker is killed in the middle of the run and a new one takes over: every
//! event still becomes exactly one order, no item is oversold, bad events go to the DLQ.

mod common;

use std::time::{Duration, Instant};

use common::{
    broker, create_topic, order_worker, order_worker_with_stats, spawn_until_aborted, TestDb,
};
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

/// A buy of one unit of `item` by `user`, with a fresh request id.
fn buy_event(user: i64, item: i64) -> OrderEvent {
    OrderEvent {
        request_id: Uuid::new_v4(),
        user_id: user,
        item_id: item,
        qty: 1,
        accepted_at_ms: 1_700_000_000_000,
    }
}

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
            let event = buy_event(user, item);
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

    // Redelivery of everything (the group's offsets rewound to the start, as after a lost
    // commit): every event is recognised as applied, and nothing changes in the database.
    let rewind: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("group.id", "order-workers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset("seckill", p, Offset::Offset(0))
            .unwrap();
    }
    rewind
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    drop(rewind);
    let (third, handled) = order_worker_with_stats(&b.addr, db.pool.clone(), |c| {
        c.session_timeout_ms = 6000;
    })
    .await;
    let events = third.metrics().clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(third.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Every message again: the buys and the three undecodable ones.
    while events.events.get() < 2 * BUYERS_PER_ITEM as u64 + 3 {
        assert!(
            Instant::now() < deadline,
            "redelivery: {} events handled",
            events.events.get()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        handled.already_applied.get(),
        2 * BUYERS_PER_ITEM as u64,
        "every redelivered buy recognised as applied"
    );
    assert_eq!(handled.confirmed.get(), 0);
    assert_eq!(
        orders(&db).await,
        2 * BUYERS_PER_ITEM,
        "nothing applied twice"
    );
    for item in [2000, 2001] {
        assert_eq!(db.stock(item).await, 0);
    }
    db.drop_db().await;
}

/// Every (payload, reason) in the dead-letter topic, read until `n` are there.
async fn dead_letters(bootstrap: &str, n: usize) -> Vec<(Vec<u8>, String)> {
    let dlq: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dlq-check")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("seckill.dlq", 0, Offset::Beginning)
        .unwrap();
    dlq.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = dlq.poll(Duration::from_millis(200)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "reason"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), reason));
        }
    }
    out
}

/// Regression: the worker retried every database error forever, so one event the database
/// refuses for its data (a timestamp out of range, any data exception) stopped its partition
/// for good, and every worker that took it over. Now such an event is isolated and
/// dead-lettered, and the rest of the batch and of the partition is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_is_dead_lettered_and_the_partition_goes_on() {
    let db = TestDb::new().await;
    db.item(2100, 1000).await;
    // The database refuses user 666's orders for their data, as it would a bad value.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.user_id = 666 THEN \
             RAISE EXCEPTION 'user 666 is refused' USING ERRCODE = '22023'; \
           END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_666 BEFORE INSERT ON orders \
           FOR EACH ROW EXECUTE FUNCTION refuse_666();",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    create_topic(&b, "seckill", 1);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let event = |user: i64, accepted_at_ms: i64| OrderEvent {
        request_id: Uuid::new_v4(),
        user_id: user,
        item_id: 2100,
        qty: 1,
        accepted_at_ms,
    };
    // 40 good buys with a refused one and one whose timestamp no database can hold in the
    // middle, all in one partition (so in the same batches).
    let mut events: Vec<OrderEvent> = (1..=40).map(|u| event(u, 1_700_000_000_000)).collect();
    events.insert(17, event(666, 1_700_000_000_000));
    events.insert(30, event(41, 100_000_000_000_000_000));
    for e in &events {
        producer
            .send(
                FutureRecord::to("seckill").key("2100").payload(&e.encode()),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let w = order_worker(&b.addr, db.pool.clone(), |c| c.session_timeout_ms = 6000).await;
    let stats = w.metrics().clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(w.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while orders(&db).await < 40 {
        assert!(
            Instant::now() < deadline,
            "the partition is stuck at {} orders",
            orders(&db).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letters = dead_letters(&b.addr, 2).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters
            .iter()
            .any(|(_, r)| r.contains("user 666 is refused")),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|(_, r)| r.contains("accepted_at_ms")),
        "{letters:?}"
    );
    assert_eq!(stats.dead_lettered.get(), 2);
    // And the partition goes on: a later buy is applied too.
    producer
        .send(
            FutureRecord::to("seckill")
                .key("2100")
                .payload(&event(42, 1_700_000_000_000).encode()),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    while orders(&db).await < 41 {
        assert!(Instant::now() < deadline, "a later buy was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    db.drop_db().await;
}

/// Buys of `item` by `users`, produced and acknowledged.
async fn produce_item_buys(bootstrap: &str, item: i64, users: std::ops::RangeInclusive<i64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for user in users {
        let event = buy_event(user, item);
        producer
            .send(
                FutureRecord::to("seckill")
                    .key(&item.to_string())
                    .payload(&event.encode()),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

async fn wait_for_orders(db: &TestDb, item: i64, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE item_id = $1")
            .bind(item)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if have >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{have} of {n} orders written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A worker fenced in its group (FENCED_INSTANCE_ID, which librdkafka makes fatal to the
/// consumer) takes its membership back and keeps writing, without a restart. Provoked here by a
/// consumer joining with the worker's static id; on a Kafka cluster it happens by itself when
/// the group coordinator's node dies (`Rejoins` in services/src/worker/mod.rs). Before, the
/// worker stopped with the fatal error and its partitions waited for a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fenced_in_its_group_rejoins_and_keeps_writing() {
    let db = TestDb::new().await;
    db.item(2100, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    create_topic(&b, "seckill", 1);
    let w = order_worker(&b.addr, db.pool.clone(), |c| {
        c.instance_id = Some("fence-test".into());
        c.session_timeout_ms = 6000;
    })
    .await;
    let rejoins = w.metrics().rejoins.clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(w.run(stop.clone()));
    produce_item_buys(&b.addr, 2100, 1..=10).await;
    wait_for_orders(&db, 2100, 10).await;

    // Another member under the worker's static id: the coordinator fences the worker.
    let intruder: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("group.id", "order-workers")
        .set("group.instance.id", "fence-test")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    intruder.subscribe(&["seckill"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while intruder.assignment().unwrap().count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the intruder never got the partition"
        );
        let _ = intruder.poll(Duration::from_millis(100));
    }
    // Gone without leaving (a static member does not send LeaveGroup).
    drop(intruder);

    produce_item_buys(&b.addr, 2100, 11..=20).await;
    wait_for_orders(&db, 2100, 20).await;
    assert!(!task.is_finished(), "the worker stopped");
    assert!(rejoins.get() >= 1, "the worker was never fenced");
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(db.stock(2100).await, 80);
    db.drop_db().await;
}

/// Issue 34's forged orders, made straight on the topic as a broker account could: buys of an
/// item that requires a purchase token without the API's signature, with a forged one, and
/// buys accepted outside the item's sale window are all `rejected_invalid` (counted by reason),
/// never confirmed, and take no stock; the same buys signed as the API signs them are
/// confirmed. Before, the worker confirmed whatever the topic held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_buys_are_rejected_as_invalid_and_never_confirmed() {
    use rdkafka::message::{Header, OwnedHeaders};
    use services::orders::EventSigner;

    let db = TestDb::new().await;
    db.item(2200, 100).await;
    db.item(2201, 100).await;
    sqlx::query("UPDATE items SET require_token = true WHERE id = 2200")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE items SET sale_start = to_timestamp(1700000000), \
         sale_end = to_timestamp(1700000100) WHERE id = 2201",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let signer = EventSigner::load(&db.pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    create_topic(&b, "seckill", 1);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .create()
        .unwrap();
    let send = |e: OrderEvent, signature: Option<String>| {
        let producer = producer.clone();
        async move {
            let payload = e.encode();
            let mut record = FutureRecord::to("seckill").key("k").payload(&payload);
            let headers = signature.map(|s| {
                OwnedHeaders::new().insert(Header {
                    key: "seckill-signature",
                    value: Some(s.as_bytes()),
                })
            });
            if let Some(h) = headers {
                record = record.headers(h);
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    let at = |user: i64, item: i64, accepted_at_ms: i64| OrderEvent {
        accepted_at_ms,
        ..buy_event(user, item)
    };
    // Token item: unsigned, forged, signed for another event; then two genuinely signed.
    send(at(1, 2200, 1_700_000_000_000), None).await;
    send(
        at(2, 2200, 1_700_000_000_000),
        Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
    )
    .await;
    let other = at(3, 2200, 1_700_000_000_000);
    send(at(4, 2200, 1_700_000_000_000), Some(signer.sign(&other))).await;
    for user in [5, 6] {
        let e = at(user, 2200, 1_700_000_000_000);
        let s = signer.sign(&e);
        send(e, Some(s)).await;
    }
    // Windowed item: before, after (the end is exclusive), inside.
    send(at(7, 2201, 1_699_999_999_999), None).await;
    send(at(8, 2201, 1_700_000_100_000), None).await;
    send(at(9, 2201, 1_700_000_050_000), None).await;

    let w = order_worker(&b.addr, db.pool.clone(), |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_addr = w.metrics_addr().expect("a metrics port");
    let stop = CancellationToken::new();
    let task = tokio::spawn(w.run(stop.clone()));
    wait_for_orders(&db, 2200, 5).await;
    wait_for_orders(&db, 2201, 3).await;
    let statuses: Vec<(i64, String)> = sqlx::query_as(
        "SELECT user_id, status::text FROM orders WHERE item_id IN (2200, 2201) ORDER BY user_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let invalid = "rejected_invalid".to_string();
    let confirmed = "confirmed".to_string();
    assert_eq!(
        statuses,
        [
            (1, invalid.clone()),
            (2, invalid.clone()),
            (4, invalid.clone()),
            (5, confirmed.clone()),
            (6, confirmed.clone()),
            (7, invalid.clone()),
            (8, invalid.clone()),
            (9, confirmed.clone()),
        ]
    );
    assert_eq!(db.stock(2200).await, 98);
    assert_eq!(db.stock(2201).await, 99);
    let body = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (reason, n) in [("unsigned", 3), ("outside_sale_window", 2)] {
        let line = format!("order_worker_rejected_invalid_total{{reason=\"{reason}\"}} {n}");
        assert!(body.contains(&line), "no {line:?} in:\n{body}");
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    db.drop_db().await;
}
