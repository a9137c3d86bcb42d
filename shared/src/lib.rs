//! Types and helpers the seckill services and the broker share.
//!
//! - [`topics`]: the names of the topics every service agrees on.
//! - [`messages`]: the JSON payloads of those topics, with their validation.
//! - [`allocator`]: the heap allocator every long-running binary declares.
//! - [`listener`]: binding a TCP port with room for a crowd of connections arriving at once.
//! - [`shutdown`]: the one shutdown mechanism of every process: a cancellation token fired by
//!   SIGTERM or Ctrl-C.
//! - [`telemetry`]: tracing set-up.
//! - [`time`]: wall-clock milliseconds, the unit every message and table uses.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod allocator;
pub mod listener;
pub mod messages;
pub mod shutdown;
pub mod telemetry;
pub mod time;
pub mod topics;
