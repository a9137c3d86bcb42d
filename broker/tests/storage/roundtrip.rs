//! Property: whatever batches are appended read back byte-identical from any offset, across
//! segment rolls and a close/reopen.

use super::common::*;
use broker::log::{BatchHeader, FlushPolicy, LogError};
use proptest::prelude::*;

fn check_reads(log: &broker::log::PartitionLog, stored: &[(i64, i64, Vec<u8>)], max_bytes: usize) {
    for (bi, (base, last, _)) in stored.iter().enumerate() {
        for offset in *base..=*last {
            let r = log.read(offset, max_bytes).unwrap();
            let got = split_batches(&r.bytes);
            assert!(!got.is_empty(), "nothing read at offset {offset}");
            // The first batch returned is the one containing the offset; the rest follow in order.
            for (k, g) in got.iter().enumerate() {
                assert_eq!(
                    g,
                    &stored[bi + k].2,
                    "batch {} read from offset {offset}",
                    bi + k
                );
            }
            let total: usize = got.iter().map(Vec::len).sum();
            assert!(
                got.len() == 1 || total <= max_bytes,
                "read exceeded max_bytes"
            );
        }
    }
    let all = read_all(log, stored.first().map_or(0, |s| s.0));
    let expected: Vec<Vec<u8>> = stored.iter().map(|s| s.2.clone()).collect();
    assert_eq!(all, expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn append_then_read_back_identical(
        batches in prop::collection::vec((1usize..12, 0usize..400, any::<u8>()), 1..40),
        max_bytes in 1usize..6000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), small_config(FlushPolicy::Never));
        let mut stored = Vec::new();
        let mut expected_next = 0;
        for (i, (n, len, seed)) in batches.iter().enumerate() {
            let mut b = batch(*n, *len, 1_000 + i as i64, *seed);
            let info = log.append(&mut b).unwrap();
            prop_assert_eq!(info.base_offset, expected_next);
            prop_assert_eq!(info.last_offset, expected_next + *n as i64 - 1);
            expected_next = info.last_offset + 1;
            stored.push((info.base_offset, info.last_offset, b));
        }
        prop_assert_eq!(log.log_end_offset(), expected_next);
        check_reads(&log, &stored, max_bytes);
        let segments = log.segment_count();
        log.close().unwrap();

        let log = open(dir.path(), small_config(FlushPolicy::Never));
        prop_assert_eq!(log.segment_count(), segments);
        prop_assert_eq!(log.log_end_offset(), expected_next);
        check_reads(&log, &stored, max_bytes);
        // Appends continue where the log left off.
        let mut b = batch(3, 10, 5, 1);
        let info = log.append(&mut b).unwrap();
        prop_assert_eq!(info.base_offset, expected_next);
        let h = BatchHeader::parse(&b).unwrap();
        prop_assert_eq!(h.base_offset, expected_next);
    }
}

#[test]
fn offsets_outside_the_log_are_a_distinct_error_and_the_end_reads_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(FlushPolicy::Never));
    log.append(&mut batch(5, 10, 1, 0)).unwrap();
    assert!(log.read(5, 1000).unwrap().bytes.is_empty());
    match log.read(6, 1000) {
        Err(LogError::OffsetOutOfRange {
            requested: 6,
            log_start: 0,
            log_end: 5,
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 1000),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn a_batch_larger_than_max_bytes_is_still_returned_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(FlushPolicy::Never));
    let mut big = batch(4, 1000, 1, 0);
    log.append(&mut big).unwrap();
    let r = log.read(2, 10).unwrap();
    assert_eq!(r.bytes, big);
}

#[test]
fn invalid_batches_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = broker::log::LogConfig {
        max_message_bytes: 2000,
        ..small_config(FlushPolicy::Never)
    };
    let log = open(dir.path(), config);
    let good = batch(2, 10, 1, 0);

    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        log.append(&mut corrupt),
        Err(LogError::InvalidBatch(
            broker::log::BatchError::CrcMismatch { .. }
        ))
    ));

    let mut truncated = good[..good.len() - 3].to_vec();
    assert!(matches!(
        log.append(&mut truncated),
        Err(LogError::InvalidBatch(_))
    ));

    // A good batch followed by a bad one: the whole set is refused.
    let mut mixed = good.clone();
    mixed.extend_from_slice(&corrupt);
    assert!(log.append(&mut mixed).is_err());

    let mut too_big = batch(3, 1000, 1, 0);
    assert!(matches!(
        log.append(&mut too_big),
        Err(LogError::InvalidBatch(
            broker::log::BatchError::TooLarge { .. }
        ))
    ));

    assert!(matches!(
        log.append(&mut []),
        Err(LogError::InvalidBatch(broker::log::BatchError::Empty))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);

    // Two valid batches in one set get consecutive offsets.
    let mut two = good.clone();
    two.extend_from_slice(&good);
    let info = log.append(&mut two).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 3));
    assert_eq!(read_all(&log, 0).len(), 2);
}

#[test]
fn timestamp_lookup_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(FlushPolicy::Never));
    // 50 batches of 3 records, timestamps 100*i, 100*i+10, 100*i+20 (several segments).
    for i in 0..50i64 {
        let mut b = broker::log::BatchBuilder::new();
        for k in 0..3 {
            b.push_value(100 * i + 10 * k, &[0u8; 100]);
        }
        log.append(&mut b.build()).unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(1005).unwrap(), Some((31, 1010)));
    assert_eq!(log.offset_for_timestamp(1010).unwrap(), Some((31, 1010)));
    assert_eq!(log.offset_for_timestamp(1021).unwrap(), Some((33, 1100)));
    assert_eq!(log.offset_for_timestamp(4920).unwrap(), Some((149, 4920)));
    assert_eq!(log.offset_for_timestamp(4921).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((149, 4920)));
    // Same answers after a reopen (sealed segments answer from their time index).
    log.close().unwrap();
    let log = open(dir.path(), small_config(FlushPolicy::Never));
    assert_eq!(log.offset_for_timestamp(1005).unwrap(), Some((31, 1010)));
    assert_eq!(log.offset_for_timestamp(2500).unwrap(), Some((75, 2500)));
}

#[test]
fn log_append_time_topics_stamp_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(broker::clock::ManualClock::new(123_456));
    let config = broker::log::LogConfig {
        timestamp_type: broker::log::TimestampType::LogAppendTime,
        ..small_config(FlushPolicy::Never)
    };
    let log = open_with_clock(dir.path(), config, clock);
    let mut b = batch(2, 10, 5, 0);
    let info = log.append(&mut b).unwrap();
    assert_eq!(info.log_append_time_ms, 123_456);
    let stored = log.read(0, 1000).unwrap().bytes;
    let h = broker::log::batch::validate_batch(&stored).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 123_456);
}
