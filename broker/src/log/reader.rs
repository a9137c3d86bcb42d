//! Reading a segment file without the log lock: the log hands out the file, an index position
//! and the bounds it observed under the lock, and these scan batch headers from there with
//! `pread`, so a reader never blocks the writer on I/O.

use std::fs::File;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::segment::{self, read_exact_at, ReadMode};

/// How much a read may return.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadLimit {
    pub(super) max_bytes: usize,
    /// Return the first batch whole even if it is larger than `max_bytes`.
    pub(super) at_least_one: bool,
    /// Only batches below the high watermark.
    pub(super) hwm: i64,
    pub(super) how: ReadMode,
}

/// From the indexed position `pos`, skips batches that end before `offset` and reads whole
/// batches from the one containing it, reading no more than the limit lets it return (plus the
/// rest of a batch it then cuts off). `None` when the segment (up to `end`) has no such batch.
pub(super) fn read_batches(
    file: &File,
    mut pos: u64,
    end: u64,
    offset: i64,
    limit: ReadLimit,
) -> std::io::Result<Option<Vec<u8>>> {
    let ReadLimit {
        max_bytes,
        at_least_one,
        hwm,
        how,
    } = limit;
    let first = loop {
        let Some(h) = segment::read_header_at(file, pos, end, how)? else {
            return Ok(None);
        };
        if h.last_offset() >= offset {
            break h;
        }
        pos += h.total_len() as u64;
    };
    if first.base_offset >= hwm || (!at_least_one && first.total_len() > max_bytes) {
        return Ok(Some(Vec::new()));
    }
    let available = (end - pos) as usize;
    let want = first.total_len().max(max_bytes.min(available));
    let mut buf = vec![0u8; want.min(available)];
    read_exact_at(file, &mut buf, pos, how)?;
    // Keep whole batches below the high watermark.
    let mut cut = 0;
    while cut + HEADER_LEN <= buf.len() {
        let Ok(h) = BatchHeader::parse(&buf[cut..]) else {
            break;
        };
        if h.base_offset >= hwm || cut + h.total_len() > buf.len() {
            break;
        }
        cut += h.total_len();
    }
    buf.truncate(cut);
    Ok(Some(buf))
}

/// Scans batches from `pos` for the first record with timestamp >= `ts` below `hwm`.
pub(super) fn find_timestamp(
    file: &File,
    mut pos: u64,
    end: u64,
    ts: i64,
    hwm: i64,
) -> std::io::Result<Option<(i64, i64)>> {
    while let Some(h) = segment::read_header_at(file, pos, end, ReadMode::Blocking)? {
        if h.base_offset >= hwm {
            return Ok(None);
        }
        if h.max_timestamp >= ts {
            let mut buf = vec![0u8; h.total_len()];
            read_exact_at(file, &mut buf, pos, ReadMode::Blocking)?;
            return Ok(Some(match batch::record_timestamps(&buf) {
                Some(stamps) => stamps
                    .iter()
                    .position(|&t| t >= ts)
                    .map(|i| (h.base_offset + i as i64, stamps[i]))
                    .unwrap_or((h.base_offset, h.max_timestamp)),
                None => (h.base_offset, h.max_timestamp),
            }));
        }
        pos += h.total_len() as u64;
    }
    Ok(None)
}
