//! The one shutdown mechanism of every process: a [`CancellationToken`] that SIGTERM or Ctrl-C
//! cancels. Each process's builder (the broker's `Node`, the services' API and workers) takes the
//! token, hands child tokens to what it starts, tracks its tasks with a
//! [`tokio_util::task::TaskTracker`], and returns from `run` only once every task it started has
//! ended. Tests and the demo cancel the same token instead of sending a signal.

use tokio_util::sync::CancellationToken;

/// A token cancelled on SIGTERM or Ctrl-C (or by whoever holds a clone). The task that waits for
/// the signals ends with the token, so it never outlives the process's shutdown.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let watched = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = signal() => {
                tracing::info!("shutdown signal received");
                watched.cancel();
            }
            _ = watched.cancelled() => {}
        }
    });
    token
}

/// Resolves on SIGTERM or Ctrl-C.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this process");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// What a builder owns to run its tasks: the token they stop on and the tracker that waits for
/// them. Cheap to clone; every clone starts into and stops the same set.
///
/// Invariant: once [`Tasks::shutdown`] returned, every task spawned through this set has ended.
#[derive(Debug, Clone)]
pub struct Tasks {
    token: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
}

impl Tasks {
    /// Tasks that stop when `token` is cancelled.
    pub fn new(token: CancellationToken) -> Self {
        Tasks {
            token,
            tracker: tokio_util::task::TaskTracker::new(),
        }
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Spawns a task that is itself responsible for watching [`Tasks::token`] (a server with a
    /// graceful shutdown, a loop that finishes its current step first).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Spawns a task that is dropped wherever it is waiting once the token is cancelled: for
    /// work with nothing to finish (timers, loops whose every await is safe to abandon).
    pub fn spawn_until_cancelled<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Cancels the token and waits until every task spawned here has ended.
    pub async fn shutdown(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}
