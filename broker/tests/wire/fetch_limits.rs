//! Fetch sizes are the broker's to bound, not the client's: an unbounded Fetch of a 2 GiB log
//! answers with at most the broker's cap, and the broker's peak memory stays small.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, FetchResponse};

use super::client::{fetch_request, Client};
use super::harness::BrokerProcess;

/// Writes ~2 GiB into partition 0 of topic `big` (one segment) with the storage API, as the
/// broker would have stored it, so the test needs no 2 GiB of produce traffic.
fn write_big_topic(data_dir: &std::path::Path) -> i64 {
    use broker::log::{BatchBuilder, FlushPolicy, LogConfig};
    let config = LogConfig {
        flush: FlushPolicy::Never,
        segment_bytes: broker::log::config::MAX_SEGMENT_BYTES,
        ..LogConfig::default()
    };
    let topics = broker::topics::TopicRegistry::open(
        data_dir,
        config.clone(),
        Arc::new(broker::clock::SystemClock),
    )
    .unwrap();
    let topic = topics.create("big", 1, config).unwrap();
    let log = topic.partition(0).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = BatchBuilder::new();
    b.push_value(now, &vec![7u8; 1_048_000]);
    let template = b.build();
    for _ in 0..2040 {
        log.append(&mut template.clone()).unwrap();
    }
    let size = log.size_bytes() as i64;
    topics.flush_all().unwrap();
    size
}

/// A Fetch asking for everything (`max_bytes` -1: no limit; `partition_max_bytes` 2 GiB) of a
/// 2 GiB log gets at most the broker's 55 MiB, and the broker's peak resident memory stays under
/// 300 MiB; a Fetch listing the same partition three times gets it refused (INVALID_REQUEST)
/// rather than read three times.
#[test]
fn an_unbounded_fetch_of_a_2_gib_log_is_capped_and_memory_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let size = write_big_topic(dir.path());
    assert!(size > 2_000_000_000, "wrote only {size} bytes");
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    let baseline_kb = broker.proc_status("VmHWM");

    let req = fetch_request("big", &[(0, 0)], -1, i32::MAX);
    let resp: std::io::Result<FetchResponse> = c.try_call(ApiKey::Fetch, 12, &req);
    let peak_kb = broker.proc_status("VmHWM");
    eprintln!(
        "peak RSS {} MiB (at start {} MiB) after an unbounded Fetch of {} MiB",
        peak_kb / 1024,
        baseline_kb / 1024,
        size >> 20
    );
    assert!(
        peak_kb < 300 * 1024,
        "peak RSS {} MiB for one Fetch",
        peak_kb / 1024
    );
    let resp = resp.expect("the Fetch is answered");
    let p = &resp.responses[0].partitions[0];
    let records = p.records.as_ref().map_or(0, |r| r.len());
    assert_eq!(p.error_code, 0);
    assert!(records > 0, "no records at all");
    assert!(
        records <= 55 * 1024 * 1024,
        "{} MiB in one answer",
        records >> 20
    );

    let req = fetch_request("big", &[(0, 0), (0, 0), (0, 100)], -1, i32::MAX);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let parts = &resp.responses[0].partitions;
    assert_eq!(parts.len(), 3, "one answer per listed partition");
    for p in parts {
        assert_eq!(
            p.error_code, 42,
            "INVALID_REQUEST for a partition listed twice"
        );
        assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    }
    let peak_kb = broker.proc_status("VmHWM");
    assert!(peak_kb < 300 * 1024, "peak RSS {} MiB", peak_kb / 1024);
}

/// Both caps hold across partitions: with `--fetch-max-bytes 65536` and
/// `--fetch-partition-max-bytes 32768`, an unbounded Fetch of four partitions of 100 KiB gets
/// at most 32 KiB from each (whole batches) and 64 KiB in all; later partitions get their
/// offsets and no records.
#[test]
fn the_fetch_caps_hold_per_partition_and_in_all() {
    use super::client::{batch_of, create, produce_to};
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "--fetch-max-bytes",
            "65536",
            "--fetch-partition-max-bytes",
            "32768",
        ],
    );
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "caps", 4, 1, &[]), 0);
    for p in 0..4 {
        for _ in 0..10 {
            assert_eq!(produce_to(&mut c, "caps", p, batch_of(1, 10_000)).0, 0);
        }
    }
    let all: Vec<(i32, i64)> = (0..4).map(|p| (p, 0)).collect();
    let req = fetch_request("caps", &all, -1, i32::MAX);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let sizes: Vec<usize> = resp.responses[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!((p.error_code, p.high_watermark), (0, 10));
            p.records.as_ref().map_or(0, |r| r.len())
        })
        .collect();
    let batch = batch_of(1, 10_000).len();
    assert!(
        sizes.iter().all(|&s| s <= 32768 && s % batch == 0),
        "{sizes:?}"
    );
    assert!(sizes.iter().sum::<usize>() <= 65536, "{sizes:?}");
    assert_eq!(sizes[0], 3 * batch, "{sizes:?}");
    assert_eq!(sizes[3], 0, "{sizes:?}");
}
