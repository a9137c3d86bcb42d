//! Orders from buy events: [`allocate`] decides, [`store`] applies in one transaction, and
//! [`handler`] is the order worker's batch handler around both.

pub mod allocate;
pub mod handler;
pub mod store;

pub use allocate::{allocate, Buy, Outcome};
pub use handler::{OrderHandler, OrderStats};
pub use store::{apply_batch, BatchSummary};
