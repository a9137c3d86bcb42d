//! Group membership, durable: each group's last stable generation (its protocol, leader, and
//! members with their subscriptions and assignments) is kept in `<data>/groups.json` and loaded
//! at start. A broker that restarts, or is killed and started again, finds its groups as they
//! were: their members carry on with their next heartbeat and commit under the same generation,
//! instead of being told they are unknown and rejoining, which costs a rebalance and, for a
//! group left empty, the initial rebalance delay (3 s by default) before anyone consumes again.
//! Kafka keeps the same thing in `__consumer_offsets` for the same reason.
//!
//! Invariants:
//! - What is stored for a group is a state it was in: its last `Stable` generation (every member
//!   with its assignment), or, once it became empty, its generation alone (so a restart never
//!   hands out a generation number again). A rebalance in progress is not stored: after a crash
//!   in the middle of one, the group comes back at the generation before it, whose members are
//!   told ILLEGAL_GENERATION or rejoin as they would anyway.
//! - The file is replaced atomically (`durable::write_atomically`), by one writer task, after
//!   the change: a crash loses at most the last change, which is then a rebalance again.
//! - Restored members' sessions start at the load: a member that is gone for good expires after
//!   its session timeout, as it would have had the broker stayed up.
//! - A file that cannot be read is moved aside and the broker starts without it (its groups
//!   rebalance, nothing else is lost): membership is a convenience, never the only copy of
//!   anything a client was promised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::state::{Group, GroupState, Member};

pub const FILE: &str = "groups.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    pub id: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Empty for a group stored as empty.
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMember {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileContents {
    version: u32,
    groups: Vec<StoredGroup>,
}

impl StoredGroup {
    /// What to store for `g` now: its members while `Stable`, its generation alone while
    /// `Empty`; `None` in the middle of a rebalance (the last stored state stays).
    pub fn of(g: &Group) -> Option<StoredGroup> {
        let members = match g.state {
            GroupState::Stable => g
                .members
                .values()
                .map(|m| StoredMember {
                    id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as u64,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                    protocols: m
                        .protocols
                        .iter()
                        .map(|(p, meta)| (p.clone(), meta.to_vec()))
                        .collect(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
            GroupState::Empty => Vec::new(),
            GroupState::PreparingRebalance | GroupState::CompletingRebalance => return None,
        };
        Some(StoredGroup {
            id: g.id.clone(),
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone().filter(|_| !members.is_empty()),
            leader: g.leader.clone().filter(|_| !members.is_empty()),
            members,
        })
    }

    /// Why this entry cannot be restored, if it cannot (a file from outside is input too).
    fn problem(&self) -> Option<String> {
        if self.id.is_empty() || self.generation < 0 {
            return Some("an empty id or a negative generation".into());
        }
        if self.members.is_empty() {
            return None;
        }
        let leader_is_member = self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.iter().any(|m| &m.id == l));
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        if !leader_is_member || protocol.is_empty() {
            return Some("members without a leader among them or without a protocol".into());
        }
        self.members.iter().find_map(|m| {
            let bad = m.id.is_empty()
                || m.session_timeout_ms == 0
                || !m.protocols.iter().any(|(p, _)| p == protocol);
            bad.then(|| format!("member {:?} is incomplete", m.id))
        })
    }

    /// The group as it was stored, its members' sessions starting `now`.
    pub fn restore(self, now: Instant) -> Group {
        let mut g = Group::new(&self.id);
        g.generation = self.generation;
        g.protocol_type = self.protocol_type;
        if self.members.is_empty() {
            return g;
        }
        g.state = GroupState::Stable;
        g.protocol_name = self.protocol_name;
        g.leader = self.leader;
        for (seq, m) in self.members.into_iter().enumerate() {
            if let Some(instance) = &m.group_instance_id {
                g.static_members.insert(instance.clone(), m.id.clone());
            }
            g.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: std::time::Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: std::time::Duration::from_millis(m.rebalance_timeout_ms),
                    protocols: m
                        .protocols
                        .into_iter()
                        .map(|(p, meta)| (p, Bytes::from(meta)))
                        .collect(),
                    assignment: Bytes::from(m.assignment),
                    join_waiter: None,
                    sync_waiter: None,
                    last_seen: now,
                    join_seq: seq as u64,
                },
            );
        }
        g
    }
}

/// Where membership is kept: `groups.json` in a data directory, or nowhere (tests of the state
/// machine alone).
#[derive(Debug, Clone)]
pub struct Membership {
    path: Option<PathBuf>,
    changed: Arc<Notify>,
}

impl Membership {
    pub fn in_memory() -> Membership {
        Membership {
            path: None,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Membership kept in `dir`; returns the groups stored there (see the module doc for a
    /// file that cannot be read).
    pub fn open(dir: &Path) -> (Membership, Vec<StoredGroup>) {
        let path = dir.join(FILE);
        let groups = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<FileContents>(&bytes) {
                Ok(f) if f.version == VERSION => f.groups,
                Ok(f) => set_aside(&path, &format!("version {} is not {VERSION}", f.version)),
                Err(e) => set_aside(&path, &e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => set_aside(&path, &e.to_string()),
        };
        let groups = groups
            .into_iter()
            .filter(|g| match g.problem() {
                None => true,
                Some(why) => {
                    tracing::warn!(group = %g.id, %why, "stored group membership skipped; its members will rejoin");
                    false
                }
            })
            .collect();
        (
            Membership {
                path: Some(path),
                changed: Arc::new(Notify::new()),
            },
            groups,
        )
    }

    /// A group's stored state changed: the writer replaces the file soon.
    pub fn changed(&self) {
        if self.path.is_some() {
            self.changed.notify_one();
        }
    }

    /// Writes the file each time it is told of a change (changes that arrive while it writes
    /// are taken together in the next write), until the task is cancelled. `snapshot` gives
    /// what to store, taken under the coordinator's lock.
    pub async fn run_writer(self, snapshot: impl Fn() -> Vec<StoredGroup>) {
        let Some(path) = self.path.clone() else {
            return;
        };
        loop {
            self.changed.notified().await;
            let contents = FileContents {
                version: VERSION,
                groups: snapshot(),
            };
            let bytes = match serde_json::to_vec(&contents) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode group membership");
                    continue;
                }
            };
            let target = path.clone();
            let written = tokio::task::spawn_blocking(move || {
                crate::durable::write_atomically(&target, &bytes)
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                // Not fatal: a restart would then rebalance the groups, as before this existed.
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, path = %path.display(), "cannot write group membership")
                }
                Err(e) => tracing::warn!(error = %e, "group membership writer failed"),
            }
        }
    }
}

fn set_aside(path: &Path, why: &str) -> Vec<StoredGroup> {
    let aside = path.with_extension("json.unreadable");
    let moved = std::fs::rename(path, &aside);
    tracing::warn!(
        path = %path.display(),
        %why,
        moved_to = %aside.display(),
        moved = moved.is_ok(),
        "group membership file cannot be read; starting without it (its groups rebalance)"
    );
    Vec::new()
}

/// The stored state of every group, for the writer: each group's [`StoredGroup::of`], or its
/// last stored state while it rebalances.
pub(super) fn snapshot(
    groups: &HashMap<String, Group>,
    last: &mut HashMap<String, StoredGroup>,
) -> Vec<StoredGroup> {
    last.retain(|id, _| groups.contains_key(id));
    for g in groups.values() {
        if let Some(s) = StoredGroup::of(g) {
            last.insert(g.id.clone(), s);
        }
    }
    let mut all: Vec<StoredGroup> = last.values().cloned().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stable_group() -> StoredGroup {
        StoredGroup {
            id: "workers".into(),
            generation: 7,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: Some("m-1".into()),
            members: ["m-1", "m-2"]
                .iter()
                .map(|id| StoredMember {
                    id: id.to_string(),
                    group_instance_id: (*id == "m-2").then(|| "worker-2".to_string()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    session_timeout_ms: 10_000,
                    rebalance_timeout_ms: 30_000,
                    protocols: vec![("range".into(), vec![1, 2, 3])],
                    assignment: vec![id.len() as u8, 9],
                })
                .collect(),
        }
    }

    #[test]
    fn a_stable_group_is_restored_as_it_was_stored() {
        let stored = stable_group();
        let g = stored.clone().restore(Instant::now());
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.generation, 7);
        assert_eq!(
            g.static_members.get("worker-2").map(String::as_str),
            Some("m-2")
        );
        assert_eq!(StoredGroup::of(&g), Some(stored));
    }

    #[test]
    fn a_group_in_a_rebalance_keeps_its_last_stable_state() {
        let mut groups = HashMap::new();
        let mut g = stable_group().restore(Instant::now());
        g.state = GroupState::PreparingRebalance;
        g.generation = 8;
        groups.insert(g.id.clone(), g);
        let mut last = HashMap::from([("workers".to_string(), stable_group())]);
        assert_eq!(snapshot(&groups, &mut last), vec![stable_group()]);
        // Deleted groups are dropped from what is stored.
        groups.clear();
        assert!(snapshot(&groups, &mut last).is_empty());
    }

    #[test]
    fn a_file_that_cannot_be_read_is_set_aside_and_bad_entries_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let (_, groups) = Membership::open(dir.path());
        assert!(groups.is_empty());
        assert!(!dir.path().join(FILE).exists());
        assert!(dir.path().join("groups.json.unreadable").exists());

        let mut leaderless = stable_group();
        leaderless.id = "leaderless".into();
        leaderless.leader = Some("nobody".into());
        let contents = FileContents {
            version: VERSION,
            groups: vec![stable_group(), leaderless],
        };
        std::fs::write(
            dir.path().join(FILE),
            serde_json::to_vec(&contents).unwrap(),
        )
        .unwrap();
        let (_, groups) = Membership::open(dir.path());
        assert_eq!(groups, vec![stable_group()]);
    }
}
