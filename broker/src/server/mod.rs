//! The Kafka TCP server over the shared [`Broker`](crate::state::Broker) state.
//!
//! - `listener`: accept loop, connection limit, graceful shutdown.
//! - `connection`: one client: frames in, answers out, strictly in order.

mod connection;
mod listener;

pub(crate) use listener::serve;
