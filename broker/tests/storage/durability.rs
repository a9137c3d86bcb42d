//! Flush policies: under `fsync` an append is durable (and visible to readers) only once an
//! fdatasync covered it, and concurrent appends share syncs; `interval` flushes in the background.

use std::sync::Arc;
use std::time::Duration;

use super::common::*;
use broker::log::{FlushPolicy, LogConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_policy_acknowledges_after_a_sync_and_groups_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), LogConfig::default()));
    let info = log.append(&mut batch(3, 10, 1, 0)).unwrap();
    log.wait_durable(info.last_offset + 1).await.unwrap();
    assert!(log.high_watermark() >= 3);
    assert!(log.flush_count() >= 1);

    let before = log.flush_count();
    let appenders = 200;
    let mut tasks = Vec::new();
    for i in 0..appenders {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let info = log.append(&mut batch(1, 100, 1, i as u8)).unwrap();
            log.wait_durable(info.last_offset + 1).await.unwrap();
            info.last_offset
        }));
    }
    for t in tasks {
        let last = t.await.unwrap();
        assert!(log.high_watermark() > last);
    }
    let syncs = log.flush_count() - before;
    assert!(syncs >= 1);
    assert!(
        syncs < appenders / 2,
        "{syncs} syncs for {appenders} concurrent appends: no group commit"
    );
    assert_eq!(log.log_end_offset(), 3 + appenders as i64);
}

#[tokio::test]
async fn readers_see_only_synced_data_under_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut hwm = log.watch_high_watermark();
    let info = log.append(&mut batch(2, 10, 1, 0)).unwrap();
    // Whatever a reader gets is below the high watermark, and the watermark arrives by watch.
    let r = log.read(0, 1000).unwrap();
    assert!(r.bytes.is_empty() || r.high_watermark == 2);
    tokio::time::timeout(Duration::from_secs(5), hwm.wait_for(|&h| h >= 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        log.read(0, 1000).unwrap().bytes.len(),
        batch(2, 10, 1, 0).len()
    );
    log.wait_durable(info.last_offset + 1).await.unwrap();
}

#[tokio::test]
async fn interval_policy_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Interval(5),
            ..LogConfig::default()
        },
    );
    let info = log.append(&mut batch(2, 10, 1, 0)).unwrap();
    // Acknowledged at once and visible at once...
    log.wait_durable(info.last_offset + 1).await.unwrap();
    assert_eq!(log.high_watermark(), 2);
    // ...and synced by the background flusher soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while log.flush_count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no background flush");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn never_policy_flushes_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Never,
            ..LogConfig::default()
        },
    );
    log.append(&mut batch(2, 10, 1, 0)).unwrap();
    // Nothing is synced while the log runs (that is the policy)...
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(log.flush_count(), 0);
    let flushes = log.flush_counter();
    log.close().unwrap();
    // ...but closing syncs what was appended: exactly one fdatasync round, at close. (Reopening
    // in the same process reads the page cache, so the flush is observed here, not by reading.)
    assert_eq!(
        flushes.get(),
        1,
        "close flushed what the never policy had left unsynced"
    );
    let log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Never,
            ..LogConfig::default()
        },
    );
    assert_eq!(log.log_end_offset(), 2);
}

/// Many logs share the process's few flush threads: 300 logs with 8 concurrent appenders each
/// all get their acknowledgements, every log's appends are durable and visible when
/// acknowledged, and each log still groups its concurrent appends into fewer syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_logs_share_the_flush_pool_and_keep_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<Arc<broker::log::PartitionLog>> = (0..300)
        .map(|i| Arc::new(open(&dir.path().join(i.to_string()), LogConfig::default())))
        .collect();
    let appenders = 8;
    let mut tasks = Vec::new();
    for log in &logs {
        for i in 0..appenders {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let info = log.append(&mut batch(1, 50, 1, i as u8)).unwrap();
                log.wait_durable(info.last_offset + 1).await.unwrap();
                assert!(log.high_watermark() > info.last_offset);
            }));
        }
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every append is acknowledged")
            .unwrap();
    }
    let mut grouped = 0;
    for log in &logs {
        assert_eq!(log.log_end_offset(), appenders as i64);
        assert!(log.flush_count() >= 1);
        if log.flush_count() < appenders as u64 {
            grouped += 1;
        }
    }
    assert!(
        grouped > logs.len() / 2,
        "only {grouped} of {} logs shared a sync between concurrent appends",
        logs.len()
    );
}
