//! The flusher: one thread per partition log that does every fsync, so appends never wait on
//! the disk while holding the log lock.
//!
//! Under `fsync` it syncs as soon as there is something to sync, and appends that arrive while
//! a sync runs share the next one (group commit): waiters are woken through the `durable` watch
//! once an fdatasync covered their offset. Under `interval:<ms>` it syncs every `ms`; under
//! `never` only on close. A failed fdatasync is final: the log stops accepting writes (the kernel
//! may have dropped the dirty pages, so a later successful sync would prove nothing).

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use super::config::FlushPolicy;
use super::error::LogError;
use super::shared_state::{Durable, Shared, State};
use crate::durable::sync_dir;

/// Runs until the log closes, then does a final flush.
pub(super) fn flusher_loop(shared: &Shared) {
    let policy = shared.config.flush;
    let mut st = shared.lock();
    loop {
        if st.closed {
            break;
        }
        st = match policy {
            FlushPolicy::Fsync => {
                // After a failure there is nothing more to sync until close: sleep, don't spin.
                if !needs_flush(&st) || st.failure.is_some() {
                    shared
                        .wake_flusher
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner)
                } else {
                    st
                }
            }
            FlushPolicy::Interval(ms) => {
                shared
                    .wake_flusher
                    .wait_timeout(st, Duration::from_millis(ms))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            FlushPolicy::Never => shared
                .wake_flusher
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner),
        };
        if st.closed {
            break;
        }
        if needs_flush(&st) && st.failure.is_none() {
            // Errors are recorded in the state and published to waiters by flush_once.
            let _ = flush_once(shared, st);
            st = shared.lock();
        }
    }
    if needs_flush(&st) && st.failure.is_none() {
        if let Err(e) = flush_once(shared, st) {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

fn needs_flush(st: &State) -> bool {
    st.flushed_offset < st.log_end_offset || !st.unflushed.is_empty() || st.dir_dirty
}

/// Syncs everything appended before the call; releases the lock during the syncs.
pub(super) fn flush_once(shared: &Shared, mut st: MutexGuard<'_, State>) -> Result<(), LogError> {
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
            if shared.config.flush == FlushPolicy::Fsync {
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
