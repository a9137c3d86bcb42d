//! Sparse offset index of one segment: maps an offset to the file position of a batch at or before
//! it, so a read seeks close to its target and scans only a few batch headers.
//!
//! Entry (8 bytes, big-endian): `relative_offset: u32` (batch base offset - segment base offset),
//! `position: u32` (byte position of that batch in the `.log`).
//!
//! Invariants: relative offsets and positions strictly increase; every position is the start of
//! a batch whose base offset is `segment base + relative_offset`. One entry is added when at least
//! `index_interval_bytes` of log were written since the previous entry, so a lookup scans at most
//! about that many bytes of headers.

use std::io;
use std::path::Path;

use super::index_file::IndexFile;

const ENTRY: usize = 8;

#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: IndexFile,
}

impl OffsetIndex {
    /// A new, empty index for at most `max_entries` entries.
    pub(crate) fn create(path: &Path, base_offset: i64, max_entries: usize) -> io::Result<Self> {
        Ok(OffsetIndex {
            base_offset,
            file: IndexFile::create(path, ENTRY, max_entries)?,
        })
    }

    /// Opens a sealed segment's index; `None` if it is missing or malformed.
    pub(crate) fn open_checked(
        path: &Path,
        base_offset: i64,
        log_size: u64,
    ) -> io::Result<Option<Self>> {
        let Some(file) = IndexFile::open_existing(path, ENTRY)? else {
            return Ok(None);
        };
        let index = OffsetIndex { base_offset, file };
        Ok(index.is_sane(log_size).then_some(index))
    }

    fn is_sane(&self, log_size: u64) -> bool {
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..self.file.len() {
            let (rel, pos) = self.raw(i);
            if pos as u64 >= log_size {
                return false;
            }
            if let Some((prel, ppos)) = prev {
                if rel <= prel || pos <= ppos {
                    return false;
                }
            }
            prev = Some((rel, pos));
        }
        true
    }

    fn raw(&self, i: usize) -> (u32, u32) {
        let e = self.file.entry(i);
        (
            u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
            u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
        )
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Records that the batch with base `offset` starts at `position`. `Ok(false)` when full;
    /// an error when the file could not grow (the index is unchanged).
    pub(crate) fn append(&mut self, offset: i64, position: u64) -> io::Result<bool> {
        let rel = (offset - self.base_offset) as u32;
        let mut e = [0u8; ENTRY];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&(position as u32).to_be_bytes());
        self.file.push(&e)
    }

    /// The last indexed (offset, position) at or before `offset`; the segment start if none.
    pub(crate) fn lookup(&self, offset: i64) -> (i64, u64) {
        let target = offset - self.base_offset;
        if target < 0 {
            return (self.base_offset, 0);
        }
        // Binary search for the number of entries with rel <= target.
        let (mut lo, mut hi) = (0usize, self.file.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (self.raw(mid).0 as i64) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            (self.base_offset, 0)
        } else {
            let (rel, pos) = self.raw(lo - 1);
            (self.base_offset + rel as i64, pos as u64)
        }
    }

    /// Drops entries for positions at or past `position` (after truncating the log there).
    pub(crate) fn truncate_to_position(&mut self, position: u64) {
        let keep = (0..self.file.len())
            .take_while(|&i| (self.raw(i).1 as u64) < position)
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
