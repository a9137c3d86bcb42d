//! The closed-loop HTTP driver the perf tools share: `n` requests over `connections` concurrent
//! tasks, each with its own client, taking the next index from a shared counter.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::latency::Latencies;

/// Runs `op(client, i)` for every `i` in `0..n`; `op` says whether request `i` succeeded. Returns
/// the elapsed time, the latencies of the successes and the number of failures.
pub async fn fire<F, Fut>(n: usize, connections: usize, op: F) -> (Duration, Latencies, usize)
where
    F: Fn(reqwest::Client, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let connections = connections.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap_or_default();
                let mut lat = Latencies::with_capacity(n / connections + 1);
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return (lat, failed);
                    }
                    let t = Instant::now();
                    if op(client.clone(), i).await {
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
