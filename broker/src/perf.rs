//! Workload helpers shared by the storage benchmark (`benches/log_storage.rs`) and the perf
//! tools under `loadtest/`, so both measure the storage engine the same way. Not used by the
//! server.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::log::{BatchBuilder, LogError, PartitionLog};

/// Producer-identical batches of about `batch_bytes` holding `records` records of
/// `record_bytes` each, in all.
pub fn make_batches(records: usize, record_bytes: usize, batch_bytes: usize) -> Vec<Vec<u8>> {
    let value = vec![b'x'; record_bytes];
    // A record's encoded size, plus 2 bytes for its offset delta growing past one varint byte.
    let record_cost = {
        let mut one = BatchBuilder::new();
        one.push_value(0, &value);
        one.build().len() - crate::log::batch::HEADER_LEN + 2
    };
    let per_batch =
        (batch_bytes.saturating_sub(crate::log::batch::HEADER_LEN) / record_cost).max(1);
    let ts = 1_700_000_000_000;
    let mut out = Vec::new();
    let mut left = records;
    while left > 0 {
        let n = per_batch.min(left);
        let mut b = BatchBuilder::new();
        for _ in 0..n {
            b.push_value(ts, &value);
        }
        out.push(b.build());
        left -= n;
    }
    out
}

/// Appends every batch like a producer with at most `in_flight` unacknowledged requests (appends
/// go on while earlier ones wait for their sync), then flushes; returns the elapsed time.
pub async fn append_all(
    log: &PartitionLog,
    batches: &mut [Vec<u8>],
    in_flight: usize,
) -> Result<Duration, LogError> {
    let start = Instant::now();
    let mut pending = VecDeque::with_capacity(in_flight + 1);
    for b in batches.iter_mut() {
        let info = log.append(b)?;
        pending.push_back(info.last_offset + 1);
        if pending.len() > in_flight {
            if let Some(end) = pending.pop_front() {
                log.wait_durable(end).await?;
            }
        }
    }
    if let Some(end) = pending.pop_back() {
        log.wait_durable(end).await?;
    }
    // Every policy ends with the bytes on disk, so all compare with a raw write + fdatasync.
    log.flush()?;
    Ok(start.elapsed())
}
