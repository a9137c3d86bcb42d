//! Helpers shared by the storage tests: producer-identical batches and a log in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use broker::clock::{Clock, ManualClock, SystemClock};
use broker::log::{BatchBuilder, BatchHeader, FlushPolicy, LogConfig, PartitionLog};

/// A batch of `n` records whose values are `value_len` bytes derived from `seed`.
pub(crate) fn batch(n: usize, value_len: usize, timestamp: i64, seed: u8) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let v: Vec<u8> = (0..value_len)
            .map(|j| seed.wrapping_add((i + j) as u8))
            .collect();
        b.push_value(timestamp, &v);
    }
    b.build()
}

/// A config with small segments and a dense index, so tests roll and index a lot.
pub(crate) fn small_config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        flush,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, Arc::new(SystemClock))
        .expect("open log")
        .0
}

pub(crate) fn open_with_clock(
    dir: &Path,
    config: LogConfig,
    clock: Arc<ManualClock>,
) -> PartitionLog {
    let clock: Arc<dyn Clock> = clock;
    PartitionLog::open(dir, config, clock).expect("open log").0
}

/// Splits a record set into its batches.
pub(crate) fn split_batches(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = BatchHeader::parse(bytes).expect("batch header");
        out.push(bytes[..h.total_len()].to_vec());
        bytes = &bytes[h.total_len()..];
    }
    out
}

/// Reads the whole visible log from `from` by following reads, returning every batch.
pub(crate) fn read_all(log: &PartitionLog, from: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = log.read(offset, 64 * 1024).expect("read");
        if r.bytes.is_empty() {
            assert!(
                offset >= r.high_watermark,
                "empty read below the high watermark at {offset}"
            );
            return out;
        }
        for b in split_batches(&r.bytes) {
            let h = BatchHeader::parse(&b).expect("header");
            offset = h.next_offset();
            out.push(b);
        }
    }
}

/// The `.log` files of a partition directory, oldest segment first (the last is the active one).
pub(crate) fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}
