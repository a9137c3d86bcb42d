//! Request/reply keyed by UUID, for a model that is loaded once and serves many requests.
//!
//! The API writes a `pending` row and produces an [`InferenceRequest`] to `inference.requests`
//! with its reply address (a topic and a partition it reads); an inference worker runs the model
//! on micro-batches, stores each result in PostgreSQL, produces the reply to that address keyed
//! by the UUID, and only then commits the offsets.
//!
//! - [`model`]: the [`model::Model`] trait (load once, infer on a micro-batch), [`model::AnyModel`]
//!   and the models: [`model::demo`] (built in) and [`model::command`] (an external program).
//! - [`store`]: the `inference_requests` table.
//! - [`pending`]: the API's pending rows, written in groups.
//! - [`handler`]: the inference worker's batch handler (the loop is [`crate::worker`]'s).
//! - [`replies`]: the API side: routes each reply to the request waiting for it.
//!
//! [`InferenceRequest`]: shared::messages::InferenceRequest

pub mod handler;
pub mod model;
pub mod pending;
pub mod replies;
pub mod store;
