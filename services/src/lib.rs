//! The seckill services.
//!
//! - [`api`]: the order-ingest API (axum): `POST /buy`, `GET /orders/{id}`.
//! - [`db`]: the PostgreSQL pool and the migrations every service applies at start.
//! - [`inference`]: request/reply keyed by UUID for a model loaded once: the `Model` trait, the
//!   demo and command models, the inference worker, and the API's reply routing.
//! - [`queue`]: what both workers do with the queue: group membership, batches, commits, DLQ.
//! - [`orders`]: turning a batch of buy events into orders: stock allocation in offset order
//!   ([`orders::allocate`]) and the one transaction that applies it ([`orders::store`]).
//! - [`telemetry`]: tracing, shutdown signal, `/healthz` and `/metrics`.
//! - [`worker`]: the order worker: consumer group, batches, transaction, offset commit, DLQ.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod db;
pub mod inference;
pub mod orders;
pub mod queue;
pub mod telemetry;
pub mod worker;
