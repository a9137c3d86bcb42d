//! The state a partition log shares between the threads that append and read and the flush
//! pool: the segments and offsets under one mutex, the lock that serialises its flushes, and the
//! watches through which waiters learn what is durable and visible. The invariants are stated in
//! `partition_log.rs`, which owns every change to this state, and `flusher.rs`; the flushers only
//! sync and advance `flushed_offset`.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use tokio::sync::watch;

use super::config::{FlushPolicy, LogConfig};
use super::error::LogError;
use super::producer_state::ProducerStateTable;
use super::segment::Segment;
use crate::clock::Clock;

/// Progress of the flusher, published to waiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Durable {
    pub(super) offset: i64,
    pub(super) failure: Option<String>,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) segments: Vec<Segment>,
    pub(super) log_start_offset: i64,
    pub(super) log_end_offset: i64,
    pub(super) flushed_offset: i64,
    /// Files of segments sealed since the last flush; the next flush syncs them.
    pub(super) unflushed: Vec<Arc<File>>,
    /// A segment file was created or deleted since the last flush: the directory needs a sync.
    pub(super) dir_dirty: bool,
    /// Final: a failed fsync (or a failed write that could not be taken back). No more writes.
    pub(super) failure: Option<String>,
    /// Why the last append failed, if it did; cleared by the next one that succeeds.
    pub(super) write_error: Option<String>,
    pub(super) closed: bool,
    /// The log is queued in the flush pool or being flushed by it (`fsync` policy).
    pub(super) flush_scheduled: bool,
    pub(super) producers: ProducerStateTable,
}

impl State {
    pub(super) fn active(&mut self) -> &mut Segment {
        // `open` and every roll leave at least one segment.
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Index of the segment that may contain `offset` (the last with base <= offset).
    pub(super) fn segment_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    pub(super) fn high_watermark(&self, policy: FlushPolicy) -> i64 {
        match policy {
            FlushPolicy::Fsync => self.flushed_offset,
            _ => self.log_end_offset,
        }
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    /// The settings, replaced whole when a topic's config is altered at run time
    /// (IncrementalAlterConfigs): every operation takes one snapshot and keeps to it, so an
    /// append never sees half of an old config and half of a new one. Its `flush` is never
    /// changed after open (see `flush` below).
    pub(super) config: RwLock<Arc<LogConfig>>,
    /// The flush policy, fixed at open: the flusher's schedule and the meaning of the high
    /// watermark depend on it, so it cannot change under a running log.
    pub(super) flush: FlushPolicy,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) state: Mutex<State>,
    /// Held by every flush from taking its target to publishing it (see `flusher.rs`).
    pub(super) sync_lock: Mutex<()>,
    pub(super) durable: watch::Sender<Durable>,
    pub(super) high_watermark: watch::Sender<i64>,
    /// Completed flushes (fdatasync rounds), for metrics and to observe group commit. Shared,
    /// so it can be read after the log closed (the final flush included).
    pub(super) flushes: Arc<AtomicU64>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the on-disk log inconsistent (recovery
        // handles any tail), so keep serving rather than cascade the panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current settings (a snapshot; see `config`).
    pub(super) fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn failed(&self, reason: &str) -> LogError {
        LogError::Failed {
            dir: self.dir.clone(),
            reason: reason.to_string(),
        }
    }
}
