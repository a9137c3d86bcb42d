//! Shared pieces of the perf tools and the demo.

pub mod bench_db;
pub mod latency;
