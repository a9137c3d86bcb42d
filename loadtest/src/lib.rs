//! Shared pieces of the perf tools: latency summaries.

pub mod latency;
