//! Opening a partition log after a clean stop or a crash: lists the segment files, checks the
//! sealed segments' indexes (rebuilding them from the log if missing or inconsistent), recovers
//! the active segment (cutting a torn or corrupt tail at the last valid batch), and makes what
//! it kept durable (every segment, the sealed ones' indexes, the directory) before the log calls
//! it so. Also replays the newest batch headers into the
//! idempotent-producer table, so retried batches are recognised across restarts.

use std::fs;
use std::path::Path;

use super::config::LogConfig;
use super::error::LogError;
use super::producer_state::ProducerStateTable;
use super::segment::{self, ReadMode, Recovery, Segment};
use crate::durable::sync_dir;

/// What opening the log found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    /// Sealed segments whose indexes had to be rebuilt from the log.
    pub rebuilt_indexes: usize,
    pub active: Recovery,
}

/// How much of what it finds opening a log syncs before calling it durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncOnOpen {
    /// Every segment, the sealed ones' indexes and the directory: after a crash (the page cache
    /// may hold what never reached the disk), or when nothing is known about the last stop.
    #[default]
    All,
    /// Only what opening repaired (a cut tail, rebuilt indexes) and the directory: after a clean
    /// shutdown, which flushed everything before it wrote its marker (see `crate::state`).
    Repaired,
}

/// Opens every segment in `dir` (creating the first one in an empty dir), oldest first.
pub(super) fn open_segments(
    dir: &Path,
    config: &LogConfig,
    sync: SyncOnOpen,
) -> Result<(Vec<Segment>, OpenReport), LogError> {
    fs::create_dir_all(dir).map_err(LogError::io(format!("create {}", dir.display())))?;
    let bases = list_segments(dir)?;
    let mut report = OpenReport::default();
    // Segments whose files opening rewrote (indexes rebuilt), by position.
    let mut repaired = Vec::new();
    let mut segments = Vec::with_capacity(bases.len().max(1));
    if bases.is_empty() {
        segments.push(
            Segment::create(dir, 0, config).map_err(LogError::io(format!(
                "create first segment in {}",
                dir.display()
            )))?,
        );
    } else {
        for (i, &base) in bases.iter().enumerate() {
            if let Some(&next) = bases.get(i + 1) {
                let (seg, rebuilt) = Segment::open_sealed(dir, base, next, config).map_err(
                    LogError::io(format!("open {}", segment::log_path(dir, base).display())),
                )?;
                if rebuilt {
                    repaired.push(segments.len());
                    tracing::warn!(dir = %dir.display(), base, "rebuilt segment indexes");
                    report.rebuilt_indexes += 1;
                }
                if seg.next_offset() != next {
                    tracing::error!(
                        dir = %dir.display(),
                        base,
                        ends_at = seg.next_offset(),
                        next_segment = next,
                        "offset gap between segments"
                    );
                }
                segments.push(seg);
            } else {
                let (seg, recovery) =
                    Segment::open_active(dir, base, config).map_err(LogError::io(format!(
                        "recover {}",
                        segment::log_path(dir, base).display()
                    )))?;
                if recovery.truncated_bytes > 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        kept_batches = recovery.batches,
                        truncated_bytes = recovery.truncated_bytes,
                        "truncated a torn or corrupt tail of the active segment"
                    );
                }
                report.active = recovery;
                segments.push(seg);
            }
        }
    }
    report.segments = segments.len();
    // Recovery read the page cache, which after a process crash may hold data that never
    // reached the disk: sealed segments whose flush had not run yet, index files, the directory
    // entries of new segments. The log is about to call everything it found durable (and to
    // answer retried idempotent batches from it), so every file it relies on is synced first;
    // a sync that fails here fails the open, as a failed fsync stops a running log.
    let to_sync: Vec<&Segment> = match sync {
        SyncOnOpen::All => segments.iter().collect(),
        // The active segment was synced by `open_active` if it was cut.
        SyncOnOpen::Repaired => repaired.iter().map(|&i| &segments[i]).collect(),
    };
    for seg in to_sync {
        seg.sync_files().map_err(LogError::io(format!(
            "sync recovered segment {}",
            segment::log_path(dir, seg.base_offset()).display()
        )))?;
    }
    sync_dir(dir).map_err(LogError::io(format!("sync {}", dir.display())))?;

    Ok((segments, report))
}

/// Segments scanned for producer state at open: a retry only ever repeats a recent batch.
const PRODUCER_STATE_SEGMENTS: usize = 2;

/// Replays the batch headers of the newest segments into a fresh producer-state table.
pub(super) fn rebuild_producer_state(segments: &[Segment]) -> std::io::Result<ProducerStateTable> {
    let mut table = ProducerStateTable::default();
    let from = segments.len().saturating_sub(PRODUCER_STATE_SEGMENTS);
    for seg in &segments[from..] {
        let mut pos = 0;
        while let Some(h) =
            segment::read_header_at(seg.log_file(), pos, seg.size(), ReadMode::Blocking)?
        {
            table.record(&h);
            pos += h.total_len() as u64;
        }
    }
    if table.len() > 0 {
        tracing::debug!(producers = table.len(), "rebuilt producer state");
    }
    Ok(table)
}

/// Base offsets of the `.log` files in `dir`, ascending. Other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let entries = fs::read_dir(dir).map_err(LogError::io(format!("list {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io(format!("list {}", dir.display())))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        match stem.parse::<i64>() {
            Ok(base) if stem.len() == 20 && base >= 0 => bases.push(base),
            _ => {
                tracing::warn!(file = ?name, "ignoring a .log file whose name is not a base offset")
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only files named as Kafka names segments (20 digits, a base offset) are segments: a
    /// stray `5.log` or a negative name must never be opened as part of the partition.
    #[test]
    fn only_twenty_digit_base_offsets_are_segments() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "00000000000000000005.log",
            "00000000000000000000.log",
            "5.log",
            "-0000000000000000001.log",
            "notes.log",
            "00000000000000000007.index",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(list_segments(dir.path()).unwrap(), vec![0, 5]);
    }
}
