//! A single-node log broker that speaks the Apache Kafka wire protocol.
//!
//! Map of the crate, from the process down to the bytes on disk:
//! - [`node`]: the composition root: opens the data dir, binds the ports, runs every task until
//!   the shutdown token fires. [`config`] is what it is opened with; [`listeners`] the named
//!   listeners (Kafka's `listeners` settings) and [`tls`] the TLS of the SSL/SASL_SSL ones.
//! - [`state`]: [`state::Broker`], the state every handler shares.
//! - `server`: the TCP server: accept loop and connections.
//! - [`protocol`]: Kafka request decoding, the table of APIs, one handler per API, response
//!   encoding (no I/O).
//! - [`auth`]: SASL authentication (PLAIN, SCRAM-SHA-256/512), users and admin roles; off unless
//!   users are configured. The connection keeps who authenticated.
//! - [`acl`]: Kafka's ACLs, the authorizer every request is checked against once users are
//!   configured (`kafka_apis!` marks the APIs checked as a whole; Produce, Fetch and Metadata
//!   check per topic).
//! - [`group`]: the group coordinator: consumer groups, rebalances, committed offsets.
//! - [`topics`]: the registry of topics and their partition logs, persisted in the data dir.
//! - [`log`]: the storage engine (segments, indexes, flush policy, recovery, retention).
//! - [`producer_ids`]: durable, never-reused ids for idempotent producers.
//! - [`durable`]: directory syncs and atomic file replacement, used by everything that persists.
//! - [`admin`], [`metrics`]: the HTTP admin port (`/healthz`, Prometheus `/metrics`, `/groups`).
//! - [`alloc`]: the global allocator that keeps a hostile array count from aborting the process.
//! - [`clock`]: wall-clock time behind a trait, so tests can move time.
//! - `embedded`, `perf`, `test_pki` (feature `harness`): the broker inside another process,
//!   storage workload helpers and test certificates, for tests, perf tools and the demo.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod acl;
pub mod admin;
pub mod alloc;
pub mod auth;
pub mod clock;
pub mod config;
pub mod durable;
#[cfg(feature = "harness")]
pub mod embedded;
pub mod group;
pub mod listeners;
pub mod log;
pub mod metrics;
pub mod node;
#[cfg(feature = "harness")]
pub mod perf;
pub mod producer_ids;
pub mod protocol;
mod server;
pub mod state;
#[cfg(feature = "harness")]
pub mod test_pki;
pub mod tls;
pub mod topics;

pub use config::{AuthorizationConfig, NodeConfig};
#[cfg(feature = "harness")]
pub use embedded::EmbeddedBroker;
pub use node::Node;
#[cfg(feature = "harness")]
pub use server::frames_before_authentication;
