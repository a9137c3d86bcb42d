//! Orders from buy events: [`allocate`] decides, [`store`] applies in one transaction, and
//! [`handler`] is the order worker's batch handler around both; [`signature`] is the API's
//! signature on the events, which the worker checks.

pub mod allocate;
pub mod handler;
pub mod signature;
pub mod store;

pub use allocate::{allocate, Buy, Decision, Invalid, Outcome, Sale};
pub use handler::{OrderHandler, OrderStats};
pub use signature::EventSigner;
pub use store::{apply_batch, BatchSummary};
