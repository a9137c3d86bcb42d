//! Segment rolling by size and by age, and retention by time and by size, driven by a manual clock.

use std::sync::Arc;

use super::common::*;
use broker::clock::ManualClock;
use broker::log::{FlushPolicy, LogConfig, LogError};

const START: i64 = 1_700_000_000_000;

#[test]
fn rolls_by_size_and_keeps_segments_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let log = open_with_clock(dir.path(), small_config(FlushPolicy::Never), clock);
    let one = batch(2, 500, START, 0).len() as u64;
    for i in 0..40 {
        log.append(&mut batch(2, 500, START, i)).unwrap();
    }
    let per_segment = 4096 / one;
    let expected = 40u64.div_ceil(per_segment) as usize;
    assert_eq!(log.segment_count(), expected);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "log") {
            assert!(
                std::fs::metadata(&p).unwrap().len() <= 4096,
                "{} too big",
                p.display()
            );
        }
    }
}

#[test]
fn rolls_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let config = LogConfig {
        segment_ms: 1000,
        ..small_config(FlushPolicy::Never)
    };
    let log = open_with_clock(dir.path(), config, clock.clone());
    log.append(&mut batch(1, 10, START, 0)).unwrap();
    clock.advance(999);
    log.append(&mut batch(1, 10, START, 0)).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(1);
    log.append(&mut batch(1, 10, START, 0)).unwrap();
    assert_eq!(log.segment_count(), 2);
    // The new segment's age counts from its own first append.
    clock.advance(500);
    log.append(&mut batch(1, 10, START, 0)).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn retention_by_time_deletes_old_segments_and_advances_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let config = LogConfig {
        retention_ms: 10_000,
        ..small_config(FlushPolicy::Never)
    };
    let log = open_with_clock(dir.path(), config, clock.clone());
    // Ten old batches (timestamp START), then ten new ones (timestamp START + 20s).
    for i in 0..10 {
        log.append(&mut batch(2, 500, START, i)).unwrap();
    }
    clock.set(START + 20_000);
    for i in 0..10 {
        log.append(&mut batch(2, 500, START + 20_000, i)).unwrap();
    }
    let before = log.segment_count();
    let report = log.enforce_retention().unwrap();
    assert!(report.deleted_segments >= 2, "{report:?}");
    assert_eq!(log.segment_count(), before - report.deleted_segments);
    let start = log.log_start_offset();
    assert_eq!(report.log_start_offset, start);
    assert!(start > 0 && start <= 20, "start {start}");
    assert!(matches!(
        log.read(0, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Everything from the start on is still there.
    let rest = read_all(&log, start);
    let records: i64 = rest
        .iter()
        .map(|b| broker::log::BatchHeader::parse(b).unwrap().records_count as i64)
        .sum();
    assert_eq!(start + records, 40);
    // Segments holding new data survive; nothing more goes without time passing.
    assert_eq!(log.enforce_retention().unwrap().deleted_segments, 0);
    // The start offset survives a restart (it is the first remaining segment's base).
    log.close().unwrap();
    let log = open_with_clock(
        dir.path(),
        small_config(FlushPolicy::Never),
        Arc::new(ManualClock::new(START)),
    );
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn retention_by_size_deletes_oldest_first_and_never_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let config = LogConfig {
        retention_bytes: 8192,
        ..small_config(FlushPolicy::Never)
    };
    let log = open_with_clock(dir.path(), config, clock);
    for i in 0..60 {
        log.append(&mut batch(2, 500, START, i)).unwrap();
    }
    let report = log.enforce_retention().unwrap();
    assert!(report.deleted_segments > 0);
    assert!(log.size_bytes() <= 8192 + 4096, "size {}", log.size_bytes());
    assert!(log.size_bytes() >= 8192 - 4096);
    assert!(log.segment_count() >= 1);
    let stored = read_all(&log, log.log_start_offset());
    assert!(!stored.is_empty());
    // A tiny limit still keeps the active segment.
    drop(log);
    let config = LogConfig {
        retention_bytes: 1,
        ..small_config(FlushPolicy::Never)
    };
    let log = open_with_clock(dir.path(), config, Arc::new(ManualClock::new(START)));
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 120);
}
