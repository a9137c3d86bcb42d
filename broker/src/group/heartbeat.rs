//! Heartbeat and LeaveGroup: liveness, and leaving at once instead of waiting for the session.

use std::sync::Arc;

use tokio::time::Instant;

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::state::GroupState;

impl GroupCoordinator {
    /// Keeps the member's session alive; REBALANCE_IN_PROGRESS tells it to re-join.
    pub fn heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        let mut groups = self.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMember)?;
        group.check_instance(member_id, instance_id)?;
        let state = group.state;
        let current = group.generation;
        let m = group
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMember)?;
        if generation != current && state != GroupState::PreparingRebalance {
            return Err(GroupError::IllegalGeneration);
        }
        m.last_seen = Instant::now();
        match state {
            GroupState::Empty => Err(GroupError::UnknownMember),
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Removes the members, each named by member id, by `group.instance.id`, or both (v3+);
    /// per-member errors: UNKNOWN_MEMBER_ID for ones not in the group, FENCED_INSTANCE_ID for a
    /// static member whose instance another member holds now.
    pub fn leave(
        self: &Arc<Self>,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Result<(), GroupError>> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![Err(GroupError::UnknownMember); members.len()];
        };
        members
            .iter()
            .map(|(member_id, instance)| {
                let id = match instance.as_ref().and_then(|i| group.static_members.get(i)) {
                    Some(holder) if !member_id.is_empty() && holder != member_id => {
                        return Err(GroupError::FencedInstanceId)
                    }
                    Some(holder) => holder.clone(),
                    None => member_id.clone(),
                };
                let id = &id;
                if group.members.contains_key(id) {
                    tracing::info!(group = %group_id, member = %id, "member left");
                    self.remove_member(group, id, GroupError::UnknownMember);
                    Ok(())
                } else {
                    Err(GroupError::UnknownMember)
                }
            })
            .collect()
    }
}
