//! Shared pieces of the perf tools and the demo.

pub mod answers;
pub mod apache_kafka;
pub mod bench_db;
pub mod bot;
pub mod burst;
pub mod chart;
pub mod direct;
pub mod embedded;
pub mod fire;
pub mod http1;
pub mod latency;
pub mod netns;
pub mod processes;
pub mod run_topic;
pub mod throwaway_pg;
pub mod verify;
