//! Under the flush policy `fsync` the active segment's file is extended ahead of the appends, so
//! that a sync does not have to write the inode. What that leaves on disk: zeros past the last
//! batch of the active segment only, cut at a reopen without being called a torn tail, and never
//! in a sealed segment.

use std::fs;
use std::path::Path;

use super::common::*;
use broker::log::{BatchHeader, FlushPolicy, LogConfig};

fn fsync_config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Fsync,
        ..LogConfig::default()
    }
}

/// Opens the log in `dir` again under `fsync`, as a restart after the crash would.
fn reopen(dir: &Path) -> (broker::log::PartitionLog, broker::log::OpenReport) {
    broker::log::PartitionLog::open(
        dir,
        fsync_config(),
        std::sync::Arc::new(broker::clock::SystemClock),
    )
    .unwrap()
}

/// Appends `n` batches under `config`, each acknowledged (durable), then "crashes": no close, so
/// nothing is trimmed or flushed on the way out. Returns the batches as stored.
async fn crashed_log(dir: &Path, config: LogConfig, n: u8) -> Vec<Vec<u8>> {
    let log = open(dir, config);
    let mut stored = Vec::new();
    for i in 0..n {
        let mut b = batch(3, 300, 1000 + i as i64, i);
        let info = log.append(&mut b).unwrap();
        log.wait_durable(info.last_offset + 1).await.unwrap();
        stored.push(b);
    }
    std::mem::forget(log);
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zeros_ahead_of_the_appends_are_cut_at_reopen_and_not_called_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), fsync_config(), 5).await;
    let data: usize = stored.iter().map(Vec::len).sum();
    let path = &segment_logs(dir.path())[0];
    let bytes = fs::read(path).unwrap();
    assert!(
        bytes.len() > data,
        "the file is extended ahead of the appends ({} bytes for {data} of batches)",
        bytes.len()
    );
    assert!(
        bytes[data..].iter().all(|&b| b == 0),
        "zeros only past the batches"
    );

    let (log, report) = reopen(dir.path());
    assert_eq!(report.active.batches, 5);
    assert_eq!(report.active.truncated_bytes, 0, "nothing torn");
    assert_eq!(
        fs::metadata(path).unwrap().len() as usize,
        data,
        "cut at reopen"
    );
    assert_eq!(read_all(&log, 0), stored);
    assert_eq!(log.append(&mut batch(1, 8, 7, 9)).unwrap().base_offset, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_batch_before_the_zeros_counts_only_its_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), fsync_config(), 5).await;
    let last_start: usize = stored[..4].iter().map(Vec::len).sum();
    let half = stored[4].len() / 2;
    // The second half of the last batch never reached the disk: zeros, like the extension.
    let path = &segment_logs(dir.path())[0];
    let mut bytes = fs::read(path).unwrap();
    bytes[last_start + half..last_start + stored[4].len()].fill(0);
    fs::write(path, &bytes).unwrap();

    let (log, report) = reopen(dir.path());
    assert_eq!(report.active.batches, 4);
    let torn = report.active.truncated_bytes as usize;
    assert!(torn > 0 && torn <= half, "the torn half's bytes: {torn}");
    assert_eq!(read_all(&log, 0), stored[..4].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_segment_ends_at_its_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), small_config(FlushPolicy::Fsync), 30).await;
    let logs = segment_logs(dir.path());
    assert!(logs.len() > 3, "rolled: {} segments", logs.len());
    for sealed in &logs[..logs.len() - 1] {
        let bytes = fs::read(sealed).unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let h = BatchHeader::parse(&bytes[pos..])
                .unwrap_or_else(|e| panic!("{}: no batch at {pos}: {e}", sealed.display()));
            pos += h.total_len();
        }
        assert_eq!(pos, bytes.len(), "{} ends at a batch", sealed.display());
    }
    // And the crash lost nothing acknowledged.
    let log = open(dir.path(), small_config(FlushPolicy::Fsync));
    assert_eq!(read_all(&log, 0), stored);
}
