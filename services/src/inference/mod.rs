//! Request/reply keyed by UUID, for a model that is loaded once and serves many requests.
//!
//! The API writes a `pending` row and produces an [`InferenceRequest`] to `inference.requests`
//! with its reply address (a topic and a partition it reads); an inference worker runs the model
//! on micro-batches, stores each result in PostgreSQL, produces the reply to that address keyed
//! by the UUID, and only then commits the offsets.
//!
//! - [`model`]: the [`model::Model`] trait (load once, infer on a micro-batch) and [`model::AnyModel`].
//! - [`demo_model`]: a built-in model with a configurable load time and latency.
//! - [`command_model`]: an external program, started once, speaking JSON lines.
//! - [`store`]: the `inference_requests` table.
//! - [`worker`]: the inference worker.
//! - [`replies`]: the API side: routes each reply to the request waiting for it.
//!
//! [`InferenceRequest`]: shared::messages::InferenceRequest

pub mod command_model;
pub mod demo_model;
pub mod model;
pub mod replies;
pub mod store;
pub mod worker;
