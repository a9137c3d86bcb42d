//! The closed-loop HTTP driver the perf tools share: `n` requests over `connections` concurrent
//! tasks, each with its own keep-alive connection ([`crate::http1`]), taking the next index
//! from a shared counter.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http1::{Connection, Target};
use crate::latency::Latencies;

/// Runs `op(connection, i)` for every `i` in `0..n`; `op` hands the connection back and says
/// whether request `i` succeeded. Returns the elapsed time, the latencies of the successes and
/// the number of failures.
pub async fn fire<F, Fut>(
    target: &Target,
    n: usize,
    connections: usize,
    op: F,
) -> (Duration, Latencies, usize)
where
    F: Fn(Connection, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Connection, bool)> + Send,
{
    let connections = connections.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (next, op, target) = (next.clone(), op.clone(), target.clone());
            tokio::spawn(async move {
                let mut conn = Connection::new(target);
                let mut lat = Latencies::with_capacity(n / connections + 1);
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return (lat, failed);
                    }
                    let t = Instant::now();
                    let (c, ok) = op(conn, i).await;
                    conn = c;
                    if ok {
                        lat.record(t.elapsed());
                    } else {
                        failed += 1;
                    }
                }
            })
        })
        .collect();
    let mut all = Latencies::default();
    let mut failed = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            all.extend(l);
            failed += f;
        }
    }
    (started.elapsed(), all, failed)
}
