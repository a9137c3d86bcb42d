//! Latency samples and their percentiles.

use std::time::Duration;

/// Collected latencies, in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u64>,
}

impl Latencies {
    pub fn with_capacity(n: usize) -> Self {
        Latencies {
            micros: Vec::with_capacity(n),
        }
    }

    pub fn record(&mut self, d: Duration) {
        self.micros.push(d.as_micros() as u64);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// p50, p99 and max in milliseconds (0 when empty).
    pub fn summary_ms(&mut self) -> (f64, f64, f64) {
        if self.micros.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        self.micros.sort_unstable();
        let at = |q: f64| {
            let i = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
            self.micros[i] as f64 / 1000.0
        };
        (at(0.50), at(0.99), at(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for us in 1..=100u64 {
            l.record(Duration::from_micros(us * 1000));
        }
        let (p50, p99, max) = l.summary_ms();
        assert_eq!((p50.round(), p99, max), (51.0, 99.0, 100.0));
        assert_eq!(Latencies::default().summary_ms(), (0.0, 0.0, 0.0));
    }
}
