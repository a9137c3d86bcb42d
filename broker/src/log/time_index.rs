//! Sparse time index of one segment: finds where to start scanning for the first record with a
//! timestamp at or after T (ListOffsets by time) without reading the whole segment.
//!
//! Entry (12 bytes, big-endian): `max_timestamp_before: i64`, `relative_offset: u32`. It means
//! "every batch with a base offset below `segment base + relative_offset` has all its timestamps
//! <= `max_timestamp_before`". Both fields never decrease from one entry to the next, so the
//! last entry with `max_timestamp_before < T` is a safe place to start the scan.
//!
//! When a segment seals, a final entry is written with the segment's largest timestamp and its
//! next offset; a sealed segment's max timestamp (for retention) is read back from it.

use std::io;
use std::path::Path;

use super::index_file::IndexFile;

const ENTRY: usize = 12;

#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
}

impl TimeIndex {
    /// A new, empty index for at most `max_entries` entries.
    pub(crate) fn create(path: &Path, base_offset: i64, max_entries: usize) -> io::Result<Self> {
        Ok(TimeIndex {
            base_offset,
            file: IndexFile::create(path, ENTRY, max_entries)?,
        })
    }

    /// Opens a sealed segment's time index; `None` if it is missing, malformed, or does not end
    /// with the seal entry for `next_offset`.
    pub(crate) fn open_checked(
        path: &Path,
        base_offset: i64,
        next_offset: i64,
    ) -> io::Result<Option<Self>> {
        let Some(file) = IndexFile::open_existing(path, ENTRY)? else {
            return Ok(None);
        };
        let index = TimeIndex { base_offset, file };
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..index.file.len() {
            let (ts, rel) = index.raw(i);
            if let Some((pts, prel)) = prev {
                if ts < pts || rel < prel {
                    return Ok(None);
                }
            }
            prev = Some((ts, rel));
        }
        match prev {
            Some((_, rel)) if base_offset + rel as i64 == next_offset => Ok(Some(index)),
            _ => Ok(None),
        }
    }

    fn raw(&self, i: usize) -> (i64, u32) {
        let e = self.file.entry(i);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        (
            i64::from_be_bytes(ts),
            u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
        )
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// The newest entry's timestamp (for a sealed segment: its largest timestamp).
    pub(crate) fn last_timestamp(&self) -> Option<i64> {
        (self.file.len() > 0).then(|| self.raw(self.file.len() - 1).0)
    }

    /// Adds an entry unless it would say nothing new (same timestamp as the last one). An error
    /// when the file could not grow (the index is unchanged).
    pub(crate) fn maybe_append(
        &mut self,
        max_timestamp_before: i64,
        offset: i64,
    ) -> io::Result<bool> {
        if let Some(last) = self.last_timestamp() {
            if max_timestamp_before <= last {
                return Ok(true);
            }
        }
        self.push(max_timestamp_before, offset)
    }

    /// Adds the final entry of a sealing segment (even if the timestamp did not grow).
    pub(crate) fn append_seal(&mut self, max_timestamp: i64, next_offset: i64) -> io::Result<bool> {
        self.push(max_timestamp, next_offset)
    }

    fn push(&mut self, ts: i64, offset: i64) -> io::Result<bool> {
        let mut e = [0u8; ENTRY];
        e[..8].copy_from_slice(&ts.to_be_bytes());
        e[8..].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.file.push(&e)
    }

    /// The offset to start scanning from for the first timestamp >= `ts`.
    pub(crate) fn lookup(&self, ts: i64) -> i64 {
        let (mut lo, mut hi) = (0usize, self.file.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.raw(mid).0 < ts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            self.base_offset
        } else {
            self.base_offset + self.raw(lo - 1).1 as i64
        }
    }

    /// Drops entries that refer to offsets at or past `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let keep = (0..self.file.len())
            .take_while(|&i| self.base_offset + (self.raw(i).1 as i64) < offset)
            .count();
        self.file.truncate_entries(keep);
    }

    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.file.trim()
    }

    pub(crate) fn file(&self) -> &IndexFile {
        &self.file
    }
}
