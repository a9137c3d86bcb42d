//! Orders from buy events: [`allocate`] decides, [`store`] applies in one transaction.

pub mod allocate;
pub mod store;

pub use allocate::{allocate, Buy, Outcome};
pub use store::{apply_batch, BatchSummary};
