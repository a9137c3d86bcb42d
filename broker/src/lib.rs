//! A single-node log broker that speaks the Apache Kafka wire protocol.
//!
//! Map of the crate:
//! - [`log`]: the storage engine (segments, indexes, flush policy, recovery, retention).
//! - [`topics`]: the registry of topics and their partition logs, persisted in the data dir.
//! - [`producer_ids`]: durable, never-reused ids for idempotent producers.
//! - [`admin`], [`metrics`]: the HTTP admin port (`/healthz`, Prometheus `/metrics`).
//! - [`perf`]: workload helpers for the storage benchmark and the perf tools.
//! - [`alloc`]: the global allocator that keeps a hostile array count from aborting the process.
//! - [`group`]: the group coordinator: consumer groups, rebalances, committed offsets.
//! - [`clock`]: wall-clock time behind a trait, so tests can move time.
//! - [`protocol`]: Kafka request decoding, one handler per API, response encoding (no I/O).
//! - [`server`]: the TCP server: listener, connections, shared broker state.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod alloc;
pub mod clock;
pub mod group;
pub mod log;
pub mod metrics;
pub mod perf;
pub mod producer_ids;
pub mod protocol;
pub mod server;
pub mod topics;
