//! The log of one topic partition: an ordered list of segments of which the last is active.
//!
//! Invariants:
//! - Segments are sorted by base offset and contiguous: each segment's base offset is the
//!   previous one's next offset (a corrupt sealed segment found at open may leave a gap).
//! - `log_start_offset <= high_watermark <= log_end_offset`. The log end offset is the offset the
//!   next appended record gets. The high watermark is what readers may see: with the `fsync`
//!   policy only what a completed fdatasync covers, otherwise everything appended.
//! - Appends are serialised by `state`; the lock is held while bytes go to the page cache, never
//!   across an fsync. Readers hold it only to find the segment and index position, then read the
//!   file with `pread` on their own `Arc<File>`, so they never block the writer on I/O. Deleted
//!   segments stay readable through such handles until the last reader drops them.
//! - The process-wide flush pool does every fsync (`flusher.rs`), a few threads for all logs.
//!   Under `fsync` a log is queued for a sync as soon as there is something to sync; appends that
//!   arrive meanwhile share the next sync (group commit).
//!
//! Opening (`recovery.rs`), the retention decision (`retention.rs`) and lock-free reads of a
//! segment file (`reader.rs`) live beside this file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::batch::{self, BatchError, BatchHeader};
use super::config::{FlushPolicy, LogConfig, TimestampType};
use super::error::LogError;
use super::flusher::{self, flush_once, needs_flush, FlushPool};
use super::producer_state::{ProducerError, SequenceCheck};
use super::reader::{find_timestamp, read_batches, ReadLimit};
use super::recovery;
pub use super::recovery::{OpenReport, SyncOnOpen};
use super::retention::{self, SegmentStats};
use super::segment::{ReadMode, Segment};
use super::shared_state::{Durable, Shared, State};
use crate::clock::Clock;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The time stamped into the batches for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub bytes: usize,
    /// The batch was a retry of one already in the log (idempotent producer); nothing was
    /// written and the offsets are the original ones.
    pub duplicate: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// Stored batches back to back, starting with the one that contains the requested offset.
    pub bytes: Vec<u8>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// Whether a log takes writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteStatus {
    Writable,
    /// The last write failed (disk full, a failed roll) and was taken back; the next append
    /// tries again, and the first that succeeds makes the log writable again.
    Refusing(String),
    /// Stopped for good after a failed fsync: nothing more is accepted until a restart.
    Failed(String),
}

impl WriteStatus {
    pub fn is_writable(&self) -> bool {
        matches!(self, WriteStatus::Writable)
    }
}

/// Completed flushes of a log, readable after it closed.
#[derive(Debug, Clone)]
pub struct FlushCounter(Arc<AtomicU64>);

impl FlushCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A partition's log. Cheap to share behind an `Arc`; dropping it closes it with a final flush.
#[derive(Debug)]
pub struct PartitionLog {
    shared: Arc<Shared>,
    pool: Arc<FlushPool>,
    /// Serialises DeleteRecords on this log, so checkpoints are written in the order the start
    /// moves (the log lock is not held across their fsyncs).
    trim_lock: Mutex<()>,
    open: bool,
}

/// The file in a partition's directory that keeps a log start offset DeleteRecords moved past
/// the first segment's base (Kafka keeps the same in its `log-start-offset-checkpoint`).
pub const LOG_START_CHECKPOINT: &str = "log-start-offset";

fn read_log_start_checkpoint(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_CHECKPOINT);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|e| LogError::Io {
                context: format!("read {}", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(format!("read {}", path.display()))(e)),
    }
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering the active segment and checking the
    /// indexes of the sealed ones, and syncs everything it found before calling it durable.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, OpenReport), LogError> {
        Self::open_with(dir, config, clock, SyncOnOpen::All)
    }

    /// [`PartitionLog::open`], syncing what `sync` says: [`SyncOnOpen::Repaired`] only when the
    /// last stop is known to have been clean.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        clock: Arc<dyn Clock>,
        sync: SyncOnOpen,
    ) -> Result<(Self, OpenReport), LogError> {
        config.validate()?;
        let (segments, report) = recovery::open_segments(dir, &config, sync)?;
        let log_end_offset = segments.last().map_or(0, |s| s.next_offset());
        // DeleteRecords may have moved the start past the first segment's base: the checkpoint
        // keeps that across restarts (never past the end recovery found).
        let log_start_offset = segments.first().map_or(0, |s| s.base_offset()).max(
            read_log_start_checkpoint(dir)?
                .unwrap_or(0)
                .min(log_end_offset),
        );
        let producers = recovery::rebuild_producer_state(&segments).map_err(LogError::io(
            format!("scan producer state in {}", dir.display()),
        ))?;
        let state = State {
            segments,
            log_start_offset,
            log_end_offset,
            flushed_offset: log_end_offset,
            unflushed: Vec::new(),
            dir_dirty: false,
            failure: None,
            write_error: None,
            closed: false,
            flush_scheduled: false,
            producers,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            flush: config.flush,
            config: RwLock::new(Arc::new(config)),
            clock,
            state: Mutex::new(state),
            sync_lock: Mutex::new(()),
            durable: watch::Sender::new(Durable {
                offset: log_end_offset,
                failure: None,
            }),
            high_watermark: watch::Sender::new(log_end_offset),
            flushes: Arc::new(AtomicU64::new(0)),
        });
        let pool = flusher::pool()?;
        if let Some(every) = shared.flush.interval() {
            pool.every(Arc::downgrade(&shared), every);
        }
        let log = PartitionLog {
            shared,
            pool,
            trim_lock: Mutex::new(()),
            open: true,
        };
        // Segments wholly below a moved start that a crash left behind (DeleteRecords writes
        // its checkpoint before it deletes them).
        log.delete_segments_below_start()?;
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The settings now in force (altered configs included).
    pub fn config(&self) -> Arc<LogConfig> {
        self.shared.config()
    }

    /// Puts `config` in force for every operation that starts from now on, without a restart
    /// (IncrementalAlterConfigs). Retention, segment size and age apply from the next append or
    /// retention pass; `index.interval.bytes` and the segment size's index capacity apply to
    /// segments created from then on. The flush policy cannot change under a running log.
    pub fn set_config(&self, config: LogConfig) -> Result<(), LogError> {
        config.validate()?;
        if config.flush != self.shared.flush {
            return Err(super::config::InvalidConfig(format!(
                "flush.policy cannot change at run time (it is {})",
                self.shared.flush
            ))
            .into());
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    pub fn log_start_offset(&self) -> i64 {
        self.shared.lock().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.shared.lock().log_end_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.shared.lock().high_watermark(self.shared.flush)
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.shared.lock().segments.iter().map(Segment::size).sum()
    }

    /// Whether the log stopped accepting writes after an I/O failure.
    pub fn is_failed(&self) -> bool {
        self.shared.lock().failure.is_some()
    }

    /// Whether the log takes writes now, and if not why.
    pub fn write_status(&self) -> WriteStatus {
        let st = self.shared.lock();
        match (&st.failure, &st.write_error) {
            (Some(reason), _) => WriteStatus::Failed(reason.clone()),
            (None, Some(reason)) => WriteStatus::Refusing(reason.clone()),
            (None, None) => WriteStatus::Writable,
        }
    }

    /// Flushes completed since open. Under `fsync`, far fewer than appends when they overlap.
    pub fn flush_count(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    /// A handle on [`PartitionLog::flush_count`] that outlives the log, to see the final flush
    /// of [`PartitionLog::close`].
    pub fn flush_counter(&self) -> FlushCounter {
        FlushCounter(self.shared.flushes.clone())
    }

    pub fn segment_count(&self) -> usize {
        self.shared.lock().segments.len()
    }

    /// Follows the high watermark, for readers waiting on new data (Fetch long polls).
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.shared.high_watermark.subscribe()
    }

    /// Validates and appends a record set (one or more v2 batches back to back), assigning
    /// offsets in place. Returns once the bytes are in the page cache; await
    /// [`PartitionLog::wait_durable`] before acknowledging.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo, LogError> {
        let headers = batch::validate_record_set(records)?;
        let config = self.shared.config();
        let limit = config.max_message_bytes;
        if let Some(h) = headers.iter().find(|h| h.total_len() > limit) {
            return Err(BatchError::TooLarge {
                size: h.total_len(),
                limit,
            }
            .into());
        }
        let config = &*config;
        let mut st = self.shared.lock();
        if let Some(reason) = &st.failure {
            return Err(self.shared.failed(reason));
        }
        if st.closed {
            return Err(LogError::Closed);
        }
        // Idempotent producers: a retried batch is answered with its original offsets.
        for h in &headers {
            match st.producers.check(h)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                } if headers.len() == 1 => {
                    return Ok(AppendInfo {
                        base_offset,
                        last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: st.log_start_offset,
                        bytes: 0,
                        duplicate: true,
                    });
                }
                // Record sets of several batches come only from the broker itself; a retried
                // batch inside one cannot be answered with a single offset range.
                SequenceCheck::Duplicate { .. } => {
                    return Err(ProducerError::OutOfOrderSequence {
                        producer_id: h.producer_id,
                        expected: -1,
                        got: h.base_sequence,
                    }
                    .into())
                }
            }
        }
        let now = self.shared.clock.now_ms();
        if st.active().should_roll(records.len() as u64, now, config) {
            if let Err(e) = self.roll(&mut st) {
                st.write_error = Some(e.to_string());
                return Err(e);
            }
        }

        let base_offset = st.log_end_offset;
        let log_append_time = match config.timestamp_type {
            TimestampType::LogAppendTime => now,
            TimestampType::CreateTime => -1,
        };
        let mut stamped = Vec::with_capacity(headers.len());
        let (mut pos, mut next) = (0usize, base_offset);
        for h in &headers {
            let end = pos + h.total_len();
            let bytes = &mut records[pos..end];
            batch::assign_offset(bytes, next);
            if log_append_time >= 0 {
                batch::set_log_append_time(bytes, log_append_time);
            }
            let h = BatchHeader::parse(bytes)?;
            next = h.next_offset();
            stamped.push(h);
            pos = end;
        }

        let active = st.active();
        let (old_size, old_next) = (active.size(), active.next_offset());
        if let Err(e) = active.append(records, &stamped, now) {
            // Take back a partial write so the segment keeps only whole batches. A write that
            // failed (ENOSPC, EIO on write) was never acknowledged and is cut off again here, so
            // the log may go on: the next append retries. Only if the cut fails is it final.
            if let Err(e2) = active.truncate_to(old_size, old_next) {
                let reason = format!("append failed ({e}) and could not be undone ({e2})");
                st.failure = Some(reason.clone());
                return Err(self.shared.failed(&reason));
            }
            let e = LogError::Io {
                context: format!("append to {}", self.shared.dir.display()),
                source: e,
            };
            st.write_error = Some(e.to_string());
            return Err(e);
        }
        st.write_error = None;
        st.log_end_offset = next;
        for h in &stamped {
            st.producers.record(h);
        }
        let info = AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time_ms: log_append_time,
            log_start_offset: st.log_start_offset,
            bytes: records.len(),
            duplicate: false,
        };
        let queue = self.claim_flush(&mut st);
        drop(st);
        if queue {
            self.pool.request(self.shared.clone());
        }
        if config.flush != FlushPolicy::Fsync {
            self.shared.high_watermark.send_replace(next);
        }
        Ok(info)
    }

    /// Under `fsync`: whether the caller must queue this log in the flush pool (it was not queued
    /// yet; now it counts as queued). Called with the log lock held, so an append either finds
    /// the log queued, and the flush that follows covers it, or queues it (see `flusher.rs`).
    fn claim_flush(&self, st: &mut State) -> bool {
        self.shared.flush == FlushPolicy::Fsync
            && !st.closed
            && !std::mem::replace(&mut st.flush_scheduled, true)
    }

    /// Seals the active segment and starts a new one at the log end offset. Retry-safe: the new
    /// segment is created first and removed again if sealing fails, so a failure at any step
    /// leaves the log as it was and the next append simply tries again.
    fn roll(&self, st: &mut State) -> Result<(), LogError> {
        let dir = &self.shared.dir;
        let leo = st.log_end_offset;
        // Before the next segment exists (see `Segment::trim_to_size`).
        st.active()
            .trim_to_size()
            .map_err(LogError::io(format!("trim segment in {}", dir.display())))?;
        let seg = Segment::create(dir, leo, &self.shared.config()).map_err(LogError::io(
            format!("create segment {leo} in {}", dir.display()),
        ))?;
        let active = st.active();
        let sealed = active
            .seal()
            .map_err(LogError::io(format!("seal segment in {}", dir.display())))
            .and_then(|()| {
                active
                    .files_to_sync()
                    .map_err(LogError::io("open sealed segment files for sync"))
            });
        match sealed {
            Ok(files) => st.unflushed.extend(files),
            Err(e) => {
                let _ = seg.delete_files();
                return Err(e);
            }
        }
        st.segments.push(seg);
        st.dir_dirty = true;
        tracing::debug!(dir = %dir.display(), base_offset = leo, "rolled segment");
        Ok(())
    }

    /// Resolves once everything before `end_offset` is durable under the flush policy: under
    /// `fsync` after an fdatasync covered it, under the other policies at once (their promise is
    /// the weaker one documented on [`FlushPolicy`]).
    pub async fn wait_durable(&self, end_offset: i64) -> Result<(), LogError> {
        if self.shared.flush != FlushPolicy::Fsync {
            return Ok(());
        }
        let mut rx = self.shared.durable.subscribe();
        let seen = rx
            .wait_for(|d| d.offset >= end_offset || d.failure.is_some())
            .await
            .map_err(|_| LogError::Closed)?
            .clone();
        match seen.failure {
            Some(reason) if seen.offset < end_offset => Err(self.shared.failed(&reason)),
            _ => Ok(()),
        }
    }

    /// Holds back every flush of this log while the guard lives, as a disk that slow to sync
    /// would: for tests of what waits on durability (appends go on; nothing becomes durable).
    #[cfg(feature = "harness")]
    pub fn hold_flushes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.shared
            .sync_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Flushes everything appended so far, now, on the calling thread.
    pub fn flush(&self) -> Result<(), LogError> {
        flush_once(&self.shared)
    }

    /// Reads whole batches starting with the one that contains `offset`, up to `max_bytes` (but
    /// always at least one whole batch, so a reader can make progress past a large one). Only
    /// batches below the high watermark are returned, from one segment at a time.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_batches(offset, max_bytes, true, ReadMode::Blocking)
    }

    /// [`PartitionLog::read`], but never more than `max_bytes`: empty when the batch containing
    /// `offset` alone is larger (a Fetch gives only its first non-empty partition more, KIP-74).
    pub fn read_at_most(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_batches(offset, max_bytes, false, ReadMode::Blocking)
    }

    /// [`PartitionLog::read`] (`at_least_one`) or [`PartitionLog::read_at_most`] from the page
    /// cache only: `Ok(None)` at once if any of it would have to wait for the disk, so a caller
    /// on an async runtime can read cached data in place and hand the rest to a blocking pool.
    pub fn read_cached(
        &self,
        offset: i64,
        max_bytes: usize,
        at_least_one: bool,
    ) -> Result<Option<ReadResult>, LogError> {
        match self.read_batches(offset, max_bytes, at_least_one, ReadMode::CachedOnly) {
            Ok(r) => Ok(Some(r)),
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the next append of `len` bytes starts a new segment (creating files: work that
    /// can wait on the filesystem's journal, done off the async runtime).
    pub fn append_rolls(&self, len: usize) -> bool {
        let now = self.shared.clock.now_ms();
        let mut st = self.shared.lock();
        st.active()
            .should_roll(len as u64, now, &self.shared.config())
    }

    fn read_batches(
        &self,
        offset: i64,
        max_bytes: usize,
        at_least_one: bool,
        how: ReadMode,
    ) -> Result<ReadResult, LogError> {
        let mut cursor = offset;
        loop {
            let (file, pos, end, hwm, log_start, next_base) = {
                let st = self.shared.lock();
                let hwm = st.high_watermark(self.shared.flush);
                if offset < st.log_start_offset || offset > st.log_end_offset {
                    return Err(LogError::OffsetOutOfRange {
                        requested: offset,
                        log_start: st.log_start_offset,
                        log_end: st.log_end_offset,
                    });
                }
                let empty = ReadResult {
                    bytes: Vec::new(),
                    high_watermark: hwm,
                    log_start_offset: st.log_start_offset,
                };
                if cursor >= hwm {
                    return Ok(empty);
                }
                let i = st.segment_for(cursor);
                let seg = &st.segments[i];
                let next_base = st.segments.get(i + 1).map(Segment::base_offset);
                (
                    seg.log_file().clone(),
                    seg.index_lookup(cursor),
                    seg.size(),
                    hwm,
                    st.log_start_offset,
                    next_base,
                )
            };
            let limit = ReadLimit {
                max_bytes,
                at_least_one,
                hwm,
                how,
            };
            let found = read_batches(&file, pos, end, cursor, limit)
                .map_err(LogError::io(format!("read {}", self.shared.dir.display())))?;
            match (found, next_base) {
                (Some(bytes), _) => {
                    return Ok(ReadResult {
                        bytes,
                        high_watermark: hwm,
                        log_start_offset: log_start,
                    })
                }
                // Not in this segment (a gap left by a damaged segment): go on in the next one.
                (None, Some(next)) => cursor = next,
                (None, None) => {
                    return Ok(ReadResult {
                        bytes: Vec::new(),
                        high_watermark: hwm,
                        log_start_offset: log_start,
                    })
                }
            }
        }
    }

    /// The first offset whose record timestamp is >= `ts`, with that timestamp; `None` if every
    /// visible record is older. For compressed batches (whose records are not decoded here) the
    /// answer is the batch's base offset and max timestamp, which never skips a matching record.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (file, pos, end, hwm, log_start) = {
            let st = self.shared.lock();
            let hwm = st.high_watermark(self.shared.flush);
            let Some(seg) = st.segments.iter().find(|s| s.max_timestamp() >= ts) else {
                return Ok(None);
            };
            let start = seg.time_lookup(ts);
            (
                seg.log_file().clone(),
                seg.index_lookup(start),
                seg.size(),
                hwm,
                st.log_start_offset,
            )
        };
        // Records below a start DeleteRecords moved into a segment are gone for readers: the
        // answer is never an offset a Fetch would refuse (Kafka answers the same).
        Ok(find_timestamp(&file, pos, end, ts, hwm)
            .map_err(LogError::io(format!("scan {}", self.shared.dir.display())))?
            .map(|(offset, found_ts)| (offset.max(log_start), found_ts)))
    }

    /// The record with the largest timestamp (ListOffsets -3): its offset and timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max = {
            let st = self.shared.lock();
            st.segments.iter().map(Segment::max_timestamp).max()
        };
        match max {
            Some(ts) if ts >= 0 => self.offset_for_timestamp(ts),
            _ => Ok(None),
        }
    }

    /// Deletes whole sealed segments past `retention_ms` (by their newest timestamp) or beyond
    /// `retention_bytes` (oldest first), and advances the log start offset. The active segment
    /// is never deleted.
    pub fn enforce_retention(&self) -> Result<RetentionReport, LogError> {
        let config = &*self.shared.config();
        let now = self.shared.clock.now_ms();
        let (doomed, log_start_offset) = {
            let mut st = self.shared.lock();
            let stats: Vec<SegmentStats> = st
                .segments
                .iter()
                .map(|s| SegmentStats {
                    size: s.size(),
                    max_timestamp: s.max_timestamp(),
                })
                .collect();
            let n = retention::segments_to_delete(&stats, now, config);
            if n == 0 {
                return Ok(RetentionReport {
                    log_start_offset: st.log_start_offset,
                    ..RetentionReport::default()
                });
            }
            let doomed: Vec<Segment> = st.segments.drain(..n).collect();
            // Never back below a start DeleteRecords moved into the new first segment.
            st.log_start_offset = st.log_start_offset.max(st.segments[0].base_offset());
            st.dir_dirty = true;
            if self.claim_flush(&mut st) {
                // The deletions become durable with the directory sync of the next flush.
                self.pool.request(self.shared.clone());
            }
            (doomed, st.log_start_offset)
        };
        let report = RetentionReport {
            deleted_segments: doomed.len(),
            deleted_bytes: doomed.iter().map(Segment::size).sum(),
            log_start_offset,
        };
        for seg in &doomed {
            seg.delete_files().map_err(LogError::io(format!(
                "delete segment in {}",
                self.shared.dir.display()
            )))?;
        }
        tracing::info!(
            dir = %self.shared.dir.display(),
            segments = report.deleted_segments,
            bytes = report.deleted_bytes,
            log_start_offset = report.log_start_offset,
            "retention deleted segments"
        );
        Ok(report)
    }

    /// DeleteRecords: makes `offset` the log start offset (`-1`: the high watermark), durably,
    /// and deletes the sealed segments wholly below it. Returns the new start (the old one if
    /// it is already past `offset`). Reads below it get [`LogError::OffsetOutOfRange`] from now
    /// on; an offset above the high watermark is refused the same way. File work: call it off
    /// the async runtime.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _serial = self.trim_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (target, start) = {
            let st = self.shared.lock();
            let hwm = st.high_watermark(self.shared.flush);
            let target = if offset == -1 { hwm } else { offset };
            if target < 0 || target > hwm {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    log_start: st.log_start_offset,
                    log_end: hwm,
                });
            }
            (target, st.log_start_offset)
        };
        if target <= start {
            return Ok(start);
        }
        // Durable before anyone is told: a crash after the answer must not bring the records
        // back.
        let path = self.shared.dir.join(LOG_START_CHECKPOINT);
        crate::durable::write_atomically(&path, format!("{target}\n").as_bytes())
            .map_err(LogError::io(format!("write {}", path.display())))?;
        {
            let mut st = self.shared.lock();
            st.log_start_offset = st.log_start_offset.max(target);
        }
        self.delete_segments_below_start()?;
        tracing::info!(dir = %self.shared.dir.display(), log_start_offset = target, "records deleted");
        Ok(target)
    }

    /// Deletes the sealed segments whose every offset is below the log start offset (never
    /// the active one).
    fn delete_segments_below_start(&self) -> Result<(), LogError> {
        let doomed: Vec<Segment> = {
            let mut st = self.shared.lock();
            let start = st.log_start_offset;
            let sealed = st.segments.len().saturating_sub(1);
            let n = st.segments[..sealed]
                .iter()
                .take_while(|s| s.next_offset() <= start)
                .count();
            if n == 0 {
                return Ok(());
            }
            st.dir_dirty = true;
            let doomed = st.segments.drain(..n).collect();
            if self.claim_flush(&mut st) {
                self.pool.request(self.shared.clone());
            }
            doomed
        };
        for seg in &doomed {
            seg.delete_files().map_err(LogError::io(format!(
                "delete segment in {}",
                self.shared.dir.display()
            )))?;
        }
        Ok(())
    }

    /// Flushes what is left and closes the log. Later appends fail with [`LogError::Closed`].
    pub fn close(mut self) -> Result<(), LogError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LogError> {
        self.open = false;
        let pending = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.failure.is_none() && needs_flush(&st)
        };
        // The pool skips closed logs from now on; a flush it is running finishes first (the
        // final flush waits for its sync_lock).
        if pending {
            if let Err(e) = flush_once(&self.shared) {
                tracing::error!(error = %e, "final flush failed");
            }
        }
        let st = self.shared.lock();
        match &st.failure {
            Some(reason) => Err(self.shared.failed(reason)),
            None => Ok(()),
        }
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.shutdown() {
                tracing::error!(error = %e, "log closed with an error");
            }
        }
    }
}
