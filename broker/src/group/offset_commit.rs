//! OffsetCommit and OffsetFetch rules: who may commit for a group (members of the current
//! generation, or assign()-mode consumers of an empty group with generation -1), and the
//! "no commit" answer (-1) that makes a client apply its auto.offset.reset.

use std::sync::Arc;

use tokio::time::Instant;
use uuid::Uuid;

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::offset_store::{OffsetEntry, MAX_METADATA_BYTES};
use super::state::GroupState;

#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// (topic, partition, offset, leader epoch, metadata)
    pub entries: Vec<(String, i32, i64, i32, Option<String>)>,
}

impl GroupCoordinator {
    /// Commits what may be committed; one result per entry, in order. `topic_id` gives the id
    /// of the topic a partition belongs to, `None` when there is no such partition.
    pub async fn commit_offsets(
        self: &Arc<Self>,
        req: CommitRequest,
        topic_id: impl Fn(&str, i32) -> Option<Uuid>,
    ) -> Vec<Result<(), GroupError>> {
        if let Err(e) = self.check_committer(&req) {
            return vec![Err(e); req.entries.len()];
        }
        let mut results = Vec::with_capacity(req.entries.len());
        let mut store = Vec::new();
        for (t, p, o, e, m) in req.entries {
            let m = m.unwrap_or_default();
            let result = if m.len() > MAX_METADATA_BYTES {
                Err(GroupError::OffsetMetadataTooLarge)
            } else if let Some(id) = topic_id(&t, p) {
                store.push(OffsetEntry {
                    topic: t,
                    topic_id: id,
                    partition: p,
                    offset: o,
                    leader_epoch: e,
                    metadata: m,
                });
                Ok(())
            } else {
                Err(GroupError::UnknownTopicOrPartition)
            };
            results.push(result);
        }
        if let Err(e) = self.offsets.commit(&req.group_id, store).await {
            tracing::error!(group = %req.group_id, error = %e, "offset commit not durable");
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(GroupError::CommitNotDurable);
            }
        }
        results
    }

    fn check_committer(self: &Arc<Self>, req: &CommitRequest) -> Result<(), GroupError> {
        let mut groups = self.lock();
        let simple =
            req.generation < 0 && req.member_id.is_empty() && req.group_instance_id.is_none();
        let Some(group) = groups.get_mut(&req.group_id) else {
            // No live group: only an assign()-mode ("simple") committer may store offsets.
            return if simple {
                Ok(())
            } else {
                Err(GroupError::IllegalGeneration)
            };
        };
        if simple {
            return if group.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::UnknownMember)
            };
        }
        group.check_instance(&req.member_id, req.group_instance_id.as_deref())?;
        let generation = group.generation;
        let state = group.state;
        let Some(m) = group.members.get_mut(&req.member_id) else {
            return Err(GroupError::UnknownMember);
        };
        if req.generation != generation {
            return Err(GroupError::IllegalGeneration);
        }
        if state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        m.last_seen = Instant::now();
        Ok(())
    }
}
