//! Consumer groups (Kafka's classic protocol) and committed offsets.
//!
//! - [`coordinator`]: all groups, rebalance completion, session expiry.
//! - [`error`]: why a group request was refused (mapped to Kafka codes by the protocol layer).
//! - [`state`]: one group and its members; the answers parked requests get.
//! - `join` / `sync` / `heartbeat` (with LeaveGroup) / `offset_commit` / `delete` (DeleteGroups,
//!   OffsetDelete): the rules per request.
//! - [`offset_store`]: committed offsets in an internal log, replayed at start.
//! - [`membership`]: each group's last stable generation, kept across restarts.
//! - [`report`]: members, assignments, committed offsets and lag, for operators.

pub mod coordinator;
mod delete;
mod error;
mod heartbeat;
mod join;
pub mod membership;
mod offset_commit;
pub mod offset_store;
pub mod report;
pub mod state;
mod sync;

pub use coordinator::{CoordinatorConfig, GroupCoordinator, GroupSummary, MemberSummary};
pub use error::GroupError;
pub use join::JoinRequest;
pub use membership::Membership;
pub use offset_commit::CommitRequest;
pub use offset_store::{Committed, OffsetStore};
pub use report::{GroupReport, PartitionLag};
pub use state::{GroupState, JoinOutcome, SyncOutcome};
pub use sync::SyncRequest;
