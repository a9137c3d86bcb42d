//! The group coordinator: every consumer group of this broker, their rebalances, and their
//! committed offsets. The per-request logic lives beside this file (`join.rs`, `sync.rs`,
//! `heartbeat.rs` with LeaveGroup, `offset_commit.rs`); this file holds the shared state, the
//! rebalance completion and the session-expiry sweep.
//!
//! Concurrency: one mutex over all groups, never held across an `.await`. A request that must
//! wait (JoinGroup until the rebalance completes, SyncGroup until the leader's assignment) parks
//! a oneshot sender in its member and awaits the receiver after releasing the lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shared::shutdown::Tasks;
use tokio::time::Instant;

use super::error::GroupError;
use super::membership::{self, Membership, StoredGroup};
use super::offset_store::OffsetStore;
use super::state::{Group, GroupState, JoinOutcome};

/// Coordinator settings (Kafka's `group.*` broker configs).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How long an empty group waits for more members before its first rebalance completes, so
    /// consumers started together land in one generation (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
        }
    }
}

#[derive(Debug)]
pub struct GroupCoordinator {
    pub(super) config: CoordinatorConfig,
    groups: Mutex<HashMap<String, Group>>,
    pub(super) offsets: OffsetStore,
    /// Where each group's last stable generation is kept across restarts (`membership.rs`).
    membership: Membership,
    /// What was last stored per group, kept while the group rebalances.
    stored: Mutex<HashMap<String, StoredGroup>>,
    /// Runs the rebalance timers; they end when the node shuts down.
    tasks: Tasks,
    /// Set by [`GroupCoordinator::close`]: no request parks any more.
    closed: std::sync::atomic::AtomicBool,
}

impl GroupCoordinator {
    /// The coordinator, with the groups `membership` had stored (their members' sessions
    /// start now).
    pub fn new(
        config: CoordinatorConfig,
        offsets: OffsetStore,
        (membership, restored): (Membership, Vec<StoredGroup>),
        tasks: Tasks,
    ) -> Arc<Self> {
        let now = Instant::now();
        let groups: HashMap<String, Group> = restored
            .iter()
            .map(|s| (s.id.clone(), s.clone().restore(now)))
            .collect();
        if !groups.is_empty() {
            tracing::info!(
                groups = groups.len(),
                members = groups.values().map(|g| g.members.len()).sum::<usize>(),
                "restored group membership"
            );
        }
        let stored = restored.into_iter().map(|s| (s.id.clone(), s)).collect();
        Arc::new(GroupCoordinator {
            config,
            groups: Mutex::new(groups),
            offsets,
            membership,
            stored: Mutex::new(stored),
            tasks,
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Keeps `groups.json` up to date until the node shuts down (see `membership.rs`).
    pub async fn run_membership_writer(self: Arc<Self>) {
        let membership = self.membership.clone();
        membership
            .run_writer(|| {
                let groups = self.lock();
                let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
                membership::snapshot(&groups, &mut stored)
            })
            .await
    }

    /// A group became stable or empty, or was deleted: store it.
    pub(super) fn membership_changed(&self) {
        self.membership.changed();
    }

    /// Shutdown: answers every parked JoinGroup and SyncGroup with COORDINATOR_NOT_AVAILABLE
    /// (their rebalance timers stop with the node, so nothing else would), and refuses new ones
    /// the same way. Members keep their ids; they find the coordinator again after the restart.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut groups = self.lock();
        for g in groups.values_mut() {
            for m in g.members.values_mut() {
                m.fail_waiters(GroupError::ShuttingDown);
            }
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Starts a rebalance: the group waits for every member to (re)join, up to the largest
    /// rebalance timeout (or the initial delay when the group was empty).
    pub(super) fn prepare_rebalance(self: &Arc<Self>, group: &mut Group) {
        let was_empty = group.state == GroupState::Empty;
        if group.state == GroupState::CompletingRebalance {
            // Parked SyncGroups of the generation being abandoned learn to re-join.
            for m in group.members.values_mut() {
                if let Some(tx) = m.sync_waiter.take() {
                    let _ = tx.send(super::state::SyncOutcome {
                        error: Some(GroupError::RebalanceInProgress),
                        ..Default::default()
                    });
                }
            }
        }
        group.state = GroupState::PreparingRebalance;
        group.rebalance_id += 1;
        group.join_counter = 0;
        let now = Instant::now();
        let longest = group
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(self.config.initial_rebalance_delay);
        let deadline = if was_empty {
            let d = now + self.config.initial_rebalance_delay.min(longest);
            group.initial_delay_until = Some(d);
            d
        } else {
            group.initial_delay_until = None;
            now + longest
        };
        self.schedule_completion(&group.id, group.rebalance_id, deadline);
    }

    /// A new member joining an empty group's initial delay pushes the delay out (bounded by the
    /// rebalance timeout), as Kafka does.
    pub(super) fn extend_initial_delay(self: &Arc<Self>, group: &mut Group) {
        if let Some(until) = group.initial_delay_until {
            let longest = group.members.values().map(|m| m.rebalance_timeout).max();
            let extended = Instant::now() + self.config.initial_rebalance_delay;
            let cap = longest.map(|l| until + l).unwrap_or(extended);
            let new_until = extended.min(cap).max(until);
            if new_until > until {
                group.initial_delay_until = Some(new_until);
                self.schedule_completion(&group.id, group.rebalance_id, new_until);
            }
        }
    }

    fn schedule_completion(self: &Arc<Self>, group_id: &str, rebalance_id: u64, at: Instant) {
        let me = self.clone();
        let group_id = group_id.to_string();
        self.tasks.spawn_until_cancelled(async move {
            tokio::time::sleep_until(at).await;
            let mut groups = me.lock();
            if let Some(g) = groups.get_mut(&group_id) {
                if g.state == GroupState::PreparingRebalance && g.rebalance_id == rebalance_id {
                    let delay_over = g.initial_delay_until.is_none_or(|u| Instant::now() >= u);
                    if delay_over {
                        me.complete_join(g, true);
                    }
                }
            }
        });
    }

    /// Completes the join phase once every member has re-joined (and any initial delay is over).
    pub(super) fn maybe_complete_join(self: &Arc<Self>, group: &mut Group) {
        if group.state != GroupState::PreparingRebalance || !group.all_joined() {
            return;
        }
        if group
            .initial_delay_until
            .is_some_and(|u| Instant::now() < u)
        {
            return; // the delay timer completes it
        }
        self.complete_join(group, false);
    }

    /// Ends the join phase: drops members that did not re-join (at the deadline), bumps the
    /// generation, picks the protocol and the leader, and answers every parked JoinGroup.
    pub(super) fn complete_join(self: &Arc<Self>, group: &mut Group, deadline: bool) {
        if deadline {
            let gone: Vec<String> = group
                .members
                .values()
                .filter(|m| m.join_waiter.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in gone {
                if let Some(mut m) = group.members.remove(&id) {
                    tracing::info!(group = %group.id, member = %id, "member did not rejoin in time; removed");
                    if let Some(instance) = &m.group_instance_id {
                        group.static_members.remove(instance);
                    }
                    m.fail_waiters(GroupError::UnknownMember);
                }
            }
        }
        group.initial_delay_until = None;
        group.generation += 1;
        if group.members.is_empty() {
            group.become_empty();
            self.membership_changed();
            return;
        }
        let leader = match &group.leader {
            Some(l) if group.members.contains_key(l) => l.clone(),
            _ => group
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.id.clone())
                .unwrap_or_default(),
        };
        let Some(protocol) = group.select_protocol(&leader) else {
            // Joins check compatibility, so this cannot happen; fail safe rather than hang.
            for m in group.members.values_mut() {
                m.fail_waiters(GroupError::InconsistentProtocol);
            }
            group.members.clear();
            group.state = GroupState::Empty;
            return;
        };
        group.leader = Some(leader.clone());
        group.protocol_name = Some(protocol.clone());
        group.state = GroupState::CompletingRebalance;
        let all: Vec<(String, Option<String>, bytes::Bytes)> = group
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.group_instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        let now = Instant::now();
        for m in group.members.values_mut() {
            m.assignment = bytes::Bytes::new();
            m.last_seen = now;
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinOutcome {
                    error: None,
                    generation: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        tracing::info!(
            group = %group.id,
            generation = group.generation,
            members = group.members.len(),
            protocol = %protocol,
            leader = %leader,
            "rebalance: join phase complete"
        );
    }

    /// Removes a member (left, or its session expired) and rebalances the rest.
    pub(super) fn remove_member(
        self: &Arc<Self>,
        group: &mut Group,
        member_id: &str,
        error: GroupError,
    ) {
        let Some(mut m) = group.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &m.group_instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance);
            }
        }
        m.fail_waiters(error);
        if group.leader.as_deref() == Some(member_id) {
            group.leader = None;
        }
        if group.members.is_empty() {
            if group.state != GroupState::Empty {
                group.generation += 1;
                group.become_empty();
                self.membership_changed();
            }
            return;
        }
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(group),
            GroupState::PreparingRebalance => self.maybe_complete_join(group),
            GroupState::Empty => {}
        }
    }

    /// Removes members whose session ran out (no heartbeat, join, sync or commit for
    /// `session_timeout`) and pending member ids that never came back. Members with a parked
    /// JoinGroup or SyncGroup do not expire: they are waiting on the group, not gone (a leader
    /// that never syncs expires, and the rebalance that follows answers the parked syncs).
    pub fn expire_sessions(self: &Arc<Self>) {
        let now = Instant::now();
        let mut groups = self.lock();
        for group in groups.values_mut() {
            group.pending_members.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.join_waiter.is_none()
                        && m.sync_waiter.is_none()
                        && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %group.id, member = %id, "session expired; removing member");
                self.remove_member(group, &id, GroupError::UnknownMember);
            }
        }
        // Forget groups with no members and no committed offsets.
        groups.retain(|id, g| {
            g.state != GroupState::Empty
                || !g.pending_members.is_empty()
                || self.offsets.has_group(id)
        });
    }

    /// Runs [`GroupCoordinator::expire_sessions`] every `every`, for as long as it is polled.
    pub async fn run_expiry(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.expire_sessions();
        }
    }

    /// Snapshot of every group for ListGroups, DescribeGroups, metrics and the CLI.
    pub fn describe_all(&self) -> Vec<GroupSummary> {
        let groups = self.lock();
        let mut out: Vec<GroupSummary> = groups.values().map(GroupSummary::of).collect();
        for id in self.offsets.groups() {
            if !groups.contains_key(&id) {
                out.push(GroupSummary {
                    id,
                    state: GroupState::Empty.as_str(),
                    protocol_type: "consumer".into(),
                    protocol: String::new(),
                    generation: 0,
                    members: Vec::new(),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// A group as seen from outside.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberSummary>,
}

#[derive(Debug, Clone)]
pub struct MemberSummary {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

impl GroupSummary {
    fn of(g: &Group) -> Self {
        let protocol = g.protocol_name.clone().unwrap_or_default();
        GroupSummary {
            id: g.id.clone(),
            state: g.state.as_str(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            generation: g.generation,
            members: g
                .members
                .values()
                .map(|m| MemberSummary {
                    id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            protocol,
        }
    }
}
