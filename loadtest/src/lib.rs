//! Shared pieces of the perf tools: latency summaries and an embedded broker to measure against.

pub mod embedded_broker;
pub mod latency;
