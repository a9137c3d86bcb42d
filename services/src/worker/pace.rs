//! An optional ceiling on how fast a worker applies events (`WorkerConfig::max_rate`), for a
//! database shared with the rest of the shop: the sale may take this much of it and no more,
//! and the queue holds the rest. Batches are cut to a tenth of a second's worth, so the pace is
//! smooth rather than a full batch and a long pause.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Pace {
    /// Events per second.
    rate: u32,
    /// When the next event may start.
    next: Instant,
}

impl Pace {
    pub fn new(rate: u32) -> Self {
        Pace {
            rate: rate.max(1),
            next: Instant::now(),
        }
    }

    /// The batch size that keeps pauses short.
    pub fn batch(&self, max_batch: usize) -> usize {
        max_batch.min((self.rate as usize / 10).max(1))
    }

    /// After `n` events: waits until they fit the rate (or `stop` is cancelled).
    pub async fn after(&mut self, n: usize, stop: &CancellationToken) {
        // A worker that was idle does not save up credit for a burst.
        self.next = self.next.max(Instant::now() - Duration::from_millis(100))
            + Duration::from_secs_f64(n as f64 / self.rate as f64);
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep_until(self.next.into()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paced_worker_applies_no_more_than_its_rate() {
        let mut pace = Pace::new(10_000);
        assert_eq!(pace.batch(1000), 1000);
        assert_eq!(Pace::new(2000).batch(1000), 200);
        let stop = CancellationToken::new();
        let start = Instant::now();
        for _ in 0..30 {
            pace.after(100, &stop).await;
        }
        // 3000 events at 10000/s: 300 ms, less the 100 ms of credit at most.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        // A stop cuts the wait short.
        stop.cancel();
        let t = Instant::now();
        pace.after(1_000_000, &stop).await;
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
