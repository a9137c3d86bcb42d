//! One file per endpoint.

pub mod buy;
pub mod dashboard;
pub mod health;
pub mod infer;
pub mod items;
pub mod orders;
