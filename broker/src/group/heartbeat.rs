//! Heartbeat and LeaveGroup: liveness, and leaving at once instead of waiting for the session.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::coordinator::GroupCoordinator;
use super::state::GroupState;

impl GroupCoordinator {
    /// Keeps the member's session alive; REBALANCE_IN_PROGRESS tells it to re-join.
    pub fn heartbeat(self: &Arc<Self>, group_id: &str, generation: i32, member_id: &str) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        let state = group.state;
        let current = group.generation;
        let Some(m) = group.members.get_mut(member_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        if generation != current && state != GroupState::PreparingRebalance {
            return ResponseError::IllegalGeneration.code();
        }
        m.last_seen = Instant::now();
        match state {
            GroupState::Empty => ResponseError::UnknownMemberId.code(),
            GroupState::PreparingRebalance => ResponseError::RebalanceInProgress.code(),
            GroupState::CompletingRebalance | GroupState::Stable => 0,
        }
    }

    /// Removes the members; per-member errors (UNKNOWN_MEMBER_ID for ones not in the group).
    pub fn leave(self: &Arc<Self>, group_id: &str, member_ids: &[String]) -> Vec<i16> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![ResponseError::UnknownMemberId.code(); member_ids.len()];
        };
        member_ids
            .iter()
            .map(|id| {
                if group.members.contains_key(id) {
                    tracing::info!(group = %group_id, member = %id, "member left");
                    self.remove_member(group, id, ResponseError::UnknownMemberId.code());
                    0
                } else {
                    ResponseError::UnknownMemberId.code()
                }
            })
            .collect()
    }
}
