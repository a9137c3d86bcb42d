//! The Kafka TCP server over the shared [`Broker`](crate::state::Broker) state.
//!
//! - `listener`: accept loops (one per listener), connection limits, TLS handshakes, graceful
//!   shutdown.
//! - `connection`: one client: requests in, answers out in order (a Produce's answer waits for
//!   its fsync while the next request is read).
//! - `frames`: whole request frames off the socket, cancel-safe.

mod connection;
mod frames;
mod listener;

pub(crate) use listener::{serve, Bound};
