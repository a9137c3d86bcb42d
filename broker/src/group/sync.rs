//! SyncGroup: the leader hands in every member's assignment; each member gets its own.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::state::{Answer, GroupState, SyncOutcome};

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    /// v3+: the static member's `group.instance.id`.
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

fn error(code: GroupError) -> SyncOutcome {
    SyncOutcome {
        error: Some(code),
        ..SyncOutcome::default()
    }
}

impl GroupCoordinator {
    pub async fn sync(self: &Arc<Self>, req: SyncRequest) -> SyncOutcome {
        let rx = match self.sync_locked(req) {
            Answer::Wait(rx) => rx,
            Answer::Now(outcome) => return outcome,
        };
        rx.await
            .unwrap_or_else(|_| error(GroupError::UnknownMember))
    }

    fn sync_locked(self: &Arc<Self>, req: SyncRequest) -> Answer<SyncOutcome> {
        if self.is_closed() {
            return Answer::Now(error(GroupError::ShuttingDown));
        }
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Answer::Now(error(GroupError::UnknownMember));
        };
        if let Err(e) = group.check_instance(&req.member_id, req.group_instance_id.as_deref()) {
            return Answer::Now(error(e));
        }
        if !group.members.contains_key(&req.member_id) {
            return Answer::Now(error(GroupError::UnknownMember));
        }
        if req.generation != group.generation {
            return Answer::Now(error(GroupError::IllegalGeneration));
        }
        let mismatch =
            |asked: &Option<String>, have: &Option<String>| asked.is_some() && asked != have;
        if mismatch(&req.protocol_type, &group.protocol_type)
            || mismatch(&req.protocol_name, &group.protocol_name)
        {
            return Answer::Now(error(GroupError::InconsistentProtocol));
        }
        let answer = |assignment: Bytes, g: &super::state::Group| SyncOutcome {
            error: None,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty => Answer::Now(error(GroupError::UnknownMember)),
            GroupState::PreparingRebalance => Answer::Now(error(GroupError::RebalanceInProgress)),
            GroupState::Stable => {
                let m = group
                    .members
                    .get_mut(&req.member_id)
                    .expect("checked above");
                m.last_seen = Instant::now();
                let assignment = m.assignment.clone();
                Answer::Now(answer(assignment, group))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = group
                    .members
                    .get_mut(&req.member_id)
                    .expect("checked above");
                m.last_seen = Instant::now();
                if let Some(old) = m.sync_waiter.replace(tx) {
                    let _ = old.send(error(GroupError::RebalanceInProgress));
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    // Members the leader left out get an empty assignment, never a missing one.
                    let mut given: std::collections::HashMap<String, Bytes> =
                        req.assignments.into_iter().collect();
                    let outcome_base = (group.protocol_type.clone(), group.protocol_name.clone());
                    for m in group.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                        if let Some(tx) = m.sync_waiter.take() {
                            let _ = tx.send(SyncOutcome {
                                error: None,
                                protocol_type: outcome_base.0.clone(),
                                protocol_name: outcome_base.1.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                    group.state = GroupState::Stable;
                    self.membership_changed();
                    tracing::info!(group = %group.id, generation = group.generation, "rebalance complete: group stable");
                }
                Answer::Wait(rx)
            }
        }
    }
}
