//! JoinGroup: membership, the member-id-required round (KIP-394), and waiting for the rebalance.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::state::{Answer, Group, GroupState, JoinOutcome, Member};

/// A JoinGroup request, decoupled from its wire version.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the session timeout is used.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets an id with MEMBER_ID_REQUIRED and must come back with it.
    pub require_known_member_id: bool,
}

fn error(code: GroupError, member_id: &str) -> JoinOutcome {
    JoinOutcome {
        error: Some(code),
        generation: -1,
        member_id: member_id.to_string(),
        ..JoinOutcome::default()
    }
}

impl GroupCoordinator {
    pub async fn join(self: &Arc<Self>, req: JoinRequest) -> JoinOutcome {
        let rx = match self.join_locked(req) {
            Answer::Wait(rx) => rx,
            Answer::Now(outcome) => return outcome,
        };
        // The sender is answered on completion or failure; a dropped sender means the member
        // was removed meanwhile.
        rx.await
            .unwrap_or_else(|_| error(GroupError::UnknownMember, ""))
    }

    fn join_locked(self: &Arc<Self>, req: JoinRequest) -> Answer<JoinOutcome> {
        if self.is_closed() {
            return Answer::Now(error(GroupError::ShuttingDown, &req.member_id));
        }
        if req.group_id.is_empty() {
            return Answer::Now(error(GroupError::InvalidGroupId, &req.member_id));
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0
            || session < self.config.min_session_timeout
            || session > self.config.max_session_timeout
        {
            return Answer::Now(error(GroupError::InvalidSessionTimeout, &req.member_id));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Answer::Now(error(GroupError::InconsistentProtocol, &req.member_id));
        }
        let rebalance = if req.rebalance_timeout_ms > 0 {
            Duration::from_millis(req.rebalance_timeout_ms as u64)
        } else {
            session
        };

        let mut groups = self.lock();
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        if !group.members.is_empty()
            && group.protocol_type.as_deref() != Some(req.protocol_type.as_str())
        {
            return Answer::Now(error(GroupError::InconsistentProtocol, &req.member_id));
        }
        if !group.protocols_compatible(&req.protocols, &req.member_id) {
            return Answer::Now(error(GroupError::InconsistentProtocol, &req.member_id));
        }

        let now = Instant::now();
        let held_by = req
            .group_instance_id
            .as_ref()
            .and_then(|i| group.static_members.get(i).cloned());
        let member_id = match (&req.group_instance_id, held_by) {
            // A static member whose id was taken over by a newer incarnation.
            (Some(_), Some(holder)) if !req.member_id.is_empty() && holder != req.member_id => {
                return Answer::Now(error(GroupError::FencedInstanceId, &req.member_id));
            }
            // A static member restarted (KIP-345): it takes over its old place, assignment
            // included, under a new member id; the old incarnation is fenced.
            (Some(instance), Some(holder)) if req.member_id.is_empty() => {
                let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
                let Some(mut m) = group.members.remove(&holder) else {
                    return Answer::Now(error(GroupError::UnknownMember, &req.member_id));
                };
                m.fail_waiters(GroupError::FencedInstanceId);
                let unchanged = m.protocols == req.protocols;
                m.id = new_id.clone();
                m.client_id = req.client_id.clone();
                m.client_host = req.client_host.clone();
                m.last_seen = now;
                group.members.insert(new_id.clone(), m);
                group
                    .static_members
                    .insert(instance.clone(), new_id.clone());
                let was_leader = group.leader.as_deref() == Some(holder.as_str());
                if was_leader {
                    group.leader = Some(new_id.clone());
                }
                tracing::info!(group = %group.id, instance = %instance, old = %holder, new = %new_id, "static member rejoined");
                // A follower of a stable group with the same protocols carries on without a
                // rebalance: the others keep their partitions, it gets its own back in
                // SyncGroup. A returning leader must assign again, so that is a rebalance.
                if group.state == GroupState::Stable && unchanged && !was_leader {
                    return Answer::Now(JoinOutcome {
                        error: None,
                        generation: group.generation,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        leader: group.leader.clone().unwrap_or_default(),
                        member_id: new_id,
                        members: Vec::new(),
                    });
                }
                new_id
            }
            _ if req.member_id.is_empty() => {
                let id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
                // Static members skip the member-id round (KIP-394 exempts them).
                if req.require_known_member_id && req.group_instance_id.is_none() {
                    group.pending_members.insert(id.clone(), now + session);
                    return Answer::Now(error(GroupError::MemberIdRequired, &id));
                }
                id
            }
            _ if group.members.contains_key(&req.member_id)
                || group.pending_members.remove(&req.member_id).is_some() =>
            {
                req.member_id.clone()
            }
            _ => return Answer::Now(error(GroupError::UnknownMember, &req.member_id)),
        };
        if let Some(instance) = &req.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }

        let (tx, rx) = oneshot::channel();
        let is_new = !group.members.contains_key(&member_id);
        if !is_new {
            let m = group.members.get_mut(&member_id).expect("checked above");
            // A follower of a stable group re-joining with the same protocols gets the current
            // generation back at once; nothing changed, so no rebalance.
            let unchanged = m.protocols == req.protocols;
            if group.state == GroupState::Stable
                && unchanged
                && group.leader.as_deref() != Some(member_id.as_str())
            {
                m.last_seen = now;
                return Answer::Now(JoinOutcome {
                    error: None,
                    generation: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    leader: group.leader.clone().unwrap_or_default(),
                    member_id,
                    members: Vec::new(),
                });
            }
        }
        group.join_counter += 1;
        let seq = group.join_counter;
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                id: member_id.clone(),
                group_instance_id: req.group_instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: session,
                rebalance_timeout: rebalance,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                join_waiter: None,
                sync_waiter: None,
                last_seen: now,
                join_seq: seq,
            });
        member.protocols = req.protocols;
        member.session_timeout = session;
        member.rebalance_timeout = rebalance;
        member.last_seen = now;
        member.join_seq = seq;
        if let Some(old) = member.join_waiter.replace(tx) {
            // The client re-sent JoinGroup (e.g. after a timeout): the newest request wins.
            let _ = old.send(error(GroupError::RebalanceInProgress, &member_id));
        }
        group.protocol_type = Some(req.protocol_type);

        match group.state {
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group);
            }
            GroupState::PreparingRebalance => {
                if is_new {
                    self.extend_initial_delay(group);
                }
            }
        }
        self.maybe_complete_join(group);
        Answer::Wait(rx)
    }
}
