//! What the request path records for the dashboard, lock-free: `/buy` answers by class, and the
//! enqueue latency of 202s in logarithmic buckets (10% wide), which the collector empties every
//! tick to get that tick's p50 and p99. One atomic add per request each; nothing allocates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The answer classes the dashboard charts, in its order.
pub const CLASSES: [&str; 7] = ["202", "409", "410", "429", "4xx", "503", "5xx"];

fn class(status: u16) -> Option<usize> {
    Some(match status {
        202 => 0,
        409 => 1,
        410 => 2,
        429 => 3,
        400..=499 => 4,
        503 => 5,
        500..=599 => 6,
        _ => return None,
    })
}

/// Buckets: bucket `i` holds latencies in [GROWTH^i, GROWTH^(i+1)) microseconds; 200 buckets
/// reach past three minutes.
const BUCKETS: usize = 200;
const GROWTH: f64 = 1.1;

#[derive(Debug)]
pub struct LiveCounters {
    answers: [AtomicU64; CLASSES.len()],
    latency: [AtomicU64; BUCKETS],
}

impl Default for LiveCounters {
    fn default() -> Self {
        LiveCounters {
            answers: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl LiveCounters {
    /// Counts one `/buy` answer.
    pub fn answer(&self, status: u16) {
        if let Some(c) = class(status) {
            self.answers[c].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one enqueue (valid buy to the broker's ack).
    pub fn enqueued(&self, took: Duration) {
        let us = took.as_micros().max(1) as f64;
        let i = (us.ln() / GROWTH.ln()) as usize;
        self.latency[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Answers per class since start.
    pub fn answers(&self) -> [u64; CLASSES.len()] {
        std::array::from_fn(|i| self.answers[i].load(Ordering::Relaxed))
    }

    /// p50 and p99 in ms of the enqueues since the last call (each to within one bucket, 10%),
    /// `None` if there were none; empties the buckets.
    pub fn take_latency(&self) -> Option<(f64, f64)> {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    // The bucket's geometric middle, in ms.
                    return GROWTH.powf(i as f64 + 0.5) / 1000.0;
                }
            }
            GROWTH.powf(BUCKETS as f64) / 1000.0
        };
        Some((at(0.50), at(0.99)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classed_as_the_dashboard_charts_them() {
        let c = LiveCounters::default();
        for s in [202, 202, 409, 410, 429, 401, 425, 503, 500, 200] {
            c.answer(s);
        }
        assert_eq!(c.answers(), [2, 1, 1, 1, 2, 1, 1]);
    }

    #[test]
    fn percentiles_are_within_a_bucket_and_taken_once() {
        let c = LiveCounters::default();
        for _ in 0..98 {
            c.enqueued(Duration::from_millis(2));
        }
        c.enqueued(Duration::from_millis(40));
        c.enqueued(Duration::from_millis(40));
        let (p50, p99) = c.take_latency().unwrap();
        assert!((1.9..=2.2).contains(&p50), "{p50}");
        assert!((38.0..=44.0).contains(&p99), "{p99}");
        assert_eq!(c.take_latency(), None, "emptied");
    }
}
