//! The flushers: a small pool of threads, shared by every partition log of the process, that
//! does every fsync, so appends never wait on the disk while holding the log lock and a broker
//! with thousands of partitions does not need a thread for each.
//!
//! Under `fsync` a log asks the pool for a flush as soon as it has something to sync
//! ([`FlushPool::request`]); appends that arrive while its sync runs share the next one (group
//! commit): waiters are woken through the `durable` watch once an fdatasync covered their
//! offset. Under `interval:<ms>` the pool syncs the log every `ms` (a timer per log); under
//! `never` only on close. A failed fdatasync is final: the log stops accepting writes (the kernel
//! may have dropped the dirty pages, so a later successful sync would prove nothing).
//!
//! Invariants:
//! - A log is in the pool's ready queue at most once, and is flushed by at most one pool thread
//!   at a time: `State::flush_scheduled` is set when it is queued and cleared only by the thread
//!   that finds nothing more to sync, under the log lock, so an append either sees the flag set
//!   (and its bytes are covered by the flush that follows) or sets it and queues the log itself.
//! - Every flush of a log, by the pool or by a caller of `flush_once` (close, `flush()`), holds
//!   the log's `sync_lock` from taking the target to publishing it, so a flush never publishes
//!   an offset whose sealed segments another flush is still syncing.
//! - Lock order: `sync_lock`, then the log's state lock, then the pool's queue lock; none is held
//!   while taking an earlier one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::config::FlushPolicy;
use super::error::LogError;
use super::shared_state::{Durable, Shared, State};
use crate::durable::sync_dir;

/// Threads in the process-wide flush pool. An fdatasync is waiting on the device, not CPU, and
/// one log is flushed by one thread at a time, so a few threads keep several devices' queues
/// busy while a slow sync on one log does not hold up the others; more would only add threads.
pub(crate) const FLUSH_THREADS: usize = 4;

/// The process-wide pool, started by the first log that is opened.
static POOL: Mutex<Option<Arc<FlushPool>>> = Mutex::new(None);

/// The shared pool, starting its threads on first use. Fails only if no thread could be started
/// (a later call tries again).
pub(super) fn pool() -> Result<Arc<FlushPool>, LogError> {
    let mut slot = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = slot.as_ref() {
        return Ok(p.clone());
    }
    let pool = Arc::new(FlushPool {
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    });
    for i in 0..FLUSH_THREADS {
        let p = pool.clone();
        let started = std::thread::Builder::new()
            .name(format!("log-flush-{i}"))
            .spawn(move || p.work());
        if let Err(e) = started {
            if i == 0 {
                return Err(LogError::Io {
                    context: "start the log flush pool".into(),
                    source: e,
                });
            }
            // Fewer threads than planned still serve every log.
            tracing::warn!(error = %e, threads = i, "log flush pool started with fewer threads");
            break;
        }
    }
    *slot = Some(pool.clone());
    Ok(pool)
}

#[derive(Debug)]
pub(super) struct FlushPool {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Logs with a flush due, oldest request first.
    ready: VecDeque<Arc<Shared>>,
    /// `interval` logs' next flush, earliest first (the sequence number breaks ties).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_logs: std::collections::HashMap<u64, (Weak<Shared>, Duration)>,
    next_timer: u64,
}

enum Job {
    Flush(Arc<Shared>),
    Tick(u64, Weak<Shared>, Duration),
}

impl FlushPool {
    /// Queues a flush of `log`. The caller set `flush_scheduled` under the log lock.
    pub(super) fn request(&self, log: Arc<Shared>) {
        self.lock().ready.push_back(log);
        self.wake.notify_one();
    }

    /// Flushes `log` every `every` until it is closed or dropped.
    pub(super) fn every(&self, log: Weak<Shared>, every: Duration) {
        let mut q = self.lock();
        let id = q.next_timer;
        q.next_timer += 1;
        q.timers.push(Reverse((Instant::now() + every, id)));
        q.timer_logs.insert(id, (log, every));
        drop(q);
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work(&self) {
        loop {
            match self.next_job() {
                Job::Flush(log) => flush_scheduled(&log, self),
                Job::Tick(id, log, every) => {
                    let Some(log) = log.upgrade() else { continue };
                    if log.lock().closed {
                        continue;
                    }
                    tick(&log);
                    let mut q = self.lock();
                    q.timers.push(Reverse((Instant::now() + every, id)));
                    q.timer_logs.insert(id, (Arc::downgrade(&log), every));
                }
            }
        }
    }

    /// Waits for the next queued flush or due timer.
    fn next_job(&self) -> Job {
        let mut q = self.lock();
        loop {
            if let Some(log) = q.ready.pop_front() {
                return Job::Flush(log);
            }
            let now = Instant::now();
            match q.timers.peek().copied() {
                Some(Reverse((due, id))) if due <= now => {
                    q.timers.pop();
                    if let Some((log, every)) = q.timer_logs.remove(&id) {
                        return Job::Tick(id, log, every);
                    }
                }
                Some(Reverse((due, _))) => {
                    q = self
                        .wake
                        .wait_timeout(q, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner),
            }
        }
    }
}

/// One queued flush of an `fsync` log. If appends arrived during the sync, the log goes to the
/// back of the queue for the next one (group commit, and fairness between logs).
fn flush_scheduled(log: &Arc<Shared>, pool: &FlushPool) {
    let due = {
        let st = log.lock();
        !st.closed && st.failure.is_none() && needs_flush(&st)
    };
    if due {
        // Errors are recorded in the state and published to waiters by flush_once.
        let _ = flush_once(log);
    }
    let mut st = log.lock();
    if !st.closed && st.failure.is_none() && needs_flush(&st) {
        drop(st);
        pool.request(log.clone());
    } else {
        st.flush_scheduled = false;
    }
}

/// An `interval` log's timer fired.
fn tick(log: &Shared) {
    let due = {
        let st = log.lock();
        st.failure.is_none() && needs_flush(&st)
    };
    if due {
        let _ = flush_once(log);
    }
}

pub(super) fn needs_flush(st: &State) -> bool {
    st.flushed_offset < st.log_end_offset || !st.unflushed.is_empty() || st.dir_dirty
}

/// Syncs everything appended before the call. Holds the log's `sync_lock` throughout and its
/// state lock only to take and publish the target, never during the syncs.
pub(super) fn flush_once(shared: &Shared) -> Result<(), LogError> {
    let _one_at_a_time = shared
        .sync_lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut st = shared.lock();
    if let Some(reason) = &st.failure {
        return Err(shared.failed(reason));
    }
    let target = st.log_end_offset;
    let mut files = std::mem::take(&mut st.unflushed);
    files.push(st.active().log_file().clone());
    let dir_dirty = std::mem::replace(&mut st.dir_dirty, false);
    drop(st);

    let mut result = files.iter().try_for_each(|f| f.sync_data());
    if result.is_ok() && dir_dirty {
        result = sync_dir(&shared.dir);
    }

    let mut st = shared.lock();
    match result {
        Ok(()) => {
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            if target > st.flushed_offset {
                st.flushed_offset = target;
            }
            let flushed = st.flushed_offset;
            drop(st);
            shared.durable.send_replace(Durable {
                offset: flushed,
                failure: None,
            });
            if shared.flush == FlushPolicy::Fsync {
                shared.high_watermark.send_replace(flushed);
            }
            Ok(())
        }
        Err(e) => {
            let reason = format!("fdatasync failed: {e}");
            tracing::error!(dir = %shared.dir.display(), error = %e, "flush failed; log is now read-only");
            st.failure = Some(reason.clone());
            let flushed = st.flushed_offset;
            drop(st);
            shared.durable.send_replace(Durable {
                offset: flushed,
                failure: Some(reason.clone()),
            });
            Err(shared.failed(&reason))
        }
    }
}
