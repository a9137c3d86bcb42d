//! The seckill services.
//!
//! - [`api`]: the order-ingest API (axum): `POST /buy`, `GET /orders/{id}`, `/infer`; [`api::Api`]
//!   is its composition root.
//! - [`worker`]: the batch worker every worker runs ([`worker::Worker`]): consumer group, batches,
//!   commit after the handler, dead letters, retries, metrics port.
//! - [`orders`]: turning a batch of buy events into orders: stock allocation in offset order
//!   ([`orders::allocate`]), the one transaction that applies it ([`orders::store`]) and the order
//!   worker's batch handler ([`orders::handler`]).
//! - [`inference`]: request/reply keyed by UUID for a model that is loaded once: the `Model`
//!   trait and models, the inference worker's batch handler, and the API's reply routing.
//! - [`db`]: the PostgreSQL pool and the migrations every service applies at start.
//! - [`kafka`]: the Kafka client settings every service starts from, and the topics each
//!   creates at start (nothing relies on a broker creating topics).
//! - [`backoff`]: the one exponential backoff of the services.
//! - [`telemetry`]: `/healthz` and Prometheus `/metrics`.

// Library code never unwraps: anything from outside gets a typed error instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod backoff;
pub mod db;
pub mod failpoints;
pub mod inference;
pub mod kafka;
pub mod orders;
pub mod telemetry;
pub mod worker;
