//! The state of one consumer group (Kafka's classic group protocol) and its members.
//!
//! Invariants:
//! - `generation` grows by one per completed rebalance, never otherwise.
//! - In `Stable` and `CompletingRebalance`, `leader` and `protocol_name` are set and name a
//!   member and a protocol every member supports.
//! - A member has at most one parked JoinGroup and one parked SyncGroup; every parked request is
//!   answered exactly once (by completion, by an error when the member leaves or expires, or by
//!   REBALANCE_IN_PROGRESS when a new rebalance overtakes it).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::error::GroupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name Kafka's DescribeGroups/ListGroups use.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A request either answered at once or parked until the group moves on.
#[derive(Debug)]
pub enum Answer<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// What a parked JoinGroup is answered with.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members and their metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a parked SyncGroup is answered with.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    /// Last sign of life (join, sync, heartbeat, commit); the session runs from here.
    pub last_seen: Instant,
    /// Order of (re)joining in the current rebalance, to pick a new leader deterministically.
    pub join_seq: u64,
}

impl Member {
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(p, _)| p == protocol)
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Answers a parked JoinGroup or SyncGroup with `error` (the member left, expired, or a new
    /// rebalance overtook the request).
    pub fn fail_waiters(&mut self, error: GroupError) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(JoinOutcome {
                error: Some(error),
                generation: -1,
                member_id: self.id.clone(),
                ..JoinOutcome::default()
            });
        }
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(SyncOutcome {
                error: Some(error),
                ..SyncOutcome::default()
            });
        }
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Static members (KIP-345): `group.instance.id` -> the member id that holds it now.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet back; dropped at the deadline.
    pub pending_members: HashMap<String, Instant>,
    /// Identifies the current rebalance, so a stale timer does not complete a later one.
    pub rebalance_id: u64,
    /// While the first members of an empty group gather, completion waits until this instant
    /// (Kafka's `group.initial.rebalance.delay.ms`).
    pub initial_delay_until: Option<Instant>,
    pub join_counter: u64,
}

impl Group {
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_id: 0,
            initial_delay_until: None,
            join_counter: 0,
        }
    }

    /// Whether `protocols` share a name with every member other than `except`.
    pub fn protocols_compatible(&self, protocols: &[(String, Bytes)], except: &str) -> bool {
        self.members
            .values()
            .filter(|m| m.id != except)
            .all(|m| protocols.iter().any(|(p, _)| m.supports(p)))
    }

    /// Picks the protocol for this generation: among names every member supports, each member
    /// votes for its most preferred; most votes wins, ties go to the leader's preference order.
    pub fn select_protocol(&self, leader: &str) -> Option<String> {
        let first = self
            .members
            .get(leader)
            .or_else(|| self.members.values().next())?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(p, _)| p)
            .filter(|p| self.members.values().all(|m| m.supports(p)))
            .collect();
        let votes = |c: &String| {
            self.members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .find(|(p, _)| candidates.contains(&p))
                        .map(|(p, _)| p)
                        == Some(c)
                })
                .count()
        };
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            let v = votes(c);
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((c, v));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    /// No members left: forget the generation's leader and protocol (the generation number
    /// stays, so late requests of the old one are still told ILLEGAL_GENERATION).
    pub fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.leader = None;
        self.protocol_name = None;
        self.initial_delay_until = None;
    }

    /// Checks a request that names `instance_id` (v3+ requests of static members): the
    /// instance must be held by `member_id`, or the sender was replaced (fenced).
    pub fn check_instance(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(holder) if holder != member_id => Err(GroupError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some())
    }
}
