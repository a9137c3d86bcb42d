//! The batch transaction against a real PostgreSQL: no oversell, one order per request, one
//! confirmed order per user and item, redelivery applied once, concurrent workers safe.

mod common;

use common::TestDb;
use services::orders::{apply_batch, Buy};
use uuid::Uuid;

fn buy(user: i64, item: i64, offset: i64) -> Buy {
    Buy {
        request_id: Uuid::new_v4(),
        user_id: user,
        item_id: item,
        qty: 1,
        accepted_at_ms: 1_700_000_000_123,
        partition: 0,
        offset,
        signed: false,
    }
}

#[tokio::test]
async fn five_thousand_buyers_for_a_thousand_units() {
    let db = TestDb::new().await;
    db.item(1000, 1000).await;
    let buys: Vec<Buy> = (0..5000).map(|i| buy(i + 1, 1000, i)).collect();
    let (mut confirmed, mut sold_out) = (0, 0);
    for chunk in buys.chunks(1000) {
        let s = apply_batch(&db.pool, chunk).await.unwrap();
        confirmed += s.confirmed;
        sold_out += s.sold_out;
    }
    // What the worker counts in its metrics is what the table holds.
    assert_eq!((confirmed, sold_out), (1000, 4000));
    // The time of acceptance is stored as it was in the event, to the millisecond.
    let accepted_ms: i64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM min(accepted_at)) * 1000)::bigint FROM orders",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(accepted_ms, 1_700_000_000_123);
    let counts = db.counts(1000).await;
    assert_eq!(counts.get("confirmed"), Some(&1000));
    assert_eq!(counts.get("rejected_sold_out"), Some(&4000));
    assert_eq!(db.stock(1000).await, 0);
    // First come, first served: the first 1000 in queue order got the units.
    let last_confirmed: i64 = sqlx::query_scalar(
        "SELECT max(source_offset) FROM orders WHERE status = 'confirmed' AND item_id = 1000",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(last_confirmed, 999);
    db.drop_db().await;
}

#[tokio::test]
async fn redelivered_batches_and_repeat_buyers() {
    let db = TestDb::new().await;
    db.item(1001, 10).await;
    let first = vec![buy(1, 1001, 0), buy(1, 1001, 1), buy(2, 1001, 2)];
    let s = apply_batch(&db.pool, &first).await.unwrap();
    assert_eq!((s.confirmed, s.duplicate), (2, 1));
    // The same events again (a crash before the offset commit): nothing changes.
    let again = apply_batch(&db.pool, &first).await.unwrap();
    assert_eq!(
        (again.already_applied, again.confirmed, again.duplicate),
        (3, 0, 0)
    );
    assert_eq!(db.stock(1001).await, 8);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(total, 3);
    // A later buy by user 1 is a duplicate; an unknown item and a zero quantity are invalid.
    let mut zero = buy(3, 1001, 4);
    zero.qty = 0;
    let s = apply_batch(&db.pool, &[buy(1, 1001, 3), zero, buy(4, 4242, 5)])
        .await
        .unwrap();
    assert_eq!((s.duplicate, s.invalid), (1, 2));
    use services::orders::Invalid;
    assert_eq!(
        s.invalid_because,
        std::collections::HashMap::from([(Invalid::Quantity, 1), (Invalid::UnknownItem, 1)])
    );
    assert_eq!(db.stock(1001).await, 8);
    db.drop_db().await;
}

#[tokio::test]
async fn concurrent_workers_on_overlapping_batches_never_oversell() {
    let db = TestDb::new().await;
    db.item(1002, 100).await;
    db.item(1003, 100).await;
    let buys: Vec<Buy> = (0..600).map(|i| buy(i + 1, 1002 + (i % 2), i)).collect();
    // Two workers get overlapping slices (as after a rebalance): every request applied once.
    let (a, b) = (buys[..400].to_vec(), buys[200..].to_vec());
    let (pa, pb) = (db.pool.clone(), db.pool.clone());
    let ta = tokio::spawn(async move {
        for c in a.chunks(50) {
            apply_batch(&pa, c).await.unwrap();
        }
    });
    let tb = tokio::spawn(async move {
        for c in b.chunks(50) {
            apply_batch(&pb, c).await.unwrap();
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();
    for item in [1002, 1003] {
        let c = db.counts(item).await;
        assert_eq!(c.get("confirmed"), Some(&100), "item {item}: {c:?}");
        assert_eq!(
            c.values().sum::<i64>(),
            300,
            "item {item}: one row per request"
        );
        assert_eq!(db.stock(item).await, 0);
    }
    db.drop_db().await;
}
