//! Deleting groups and their committed offsets (DeleteGroups, OffsetDelete), as admin tools do
//! to clean up after consumers that are gone. Only what no live member relies on may go: a
//! group with members is refused, and so are the offsets of a topic its members consume.

use std::collections::BTreeSet;

use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::report::decode_assignment;
use super::state::{Group, GroupState};

impl GroupCoordinator {
    /// Deletes an empty group and all its committed offsets, durably. A group with members →
    /// [`GroupError::NonEmptyGroup`]; one with neither members nor commits →
    /// [`GroupError::GroupIdNotFound`].
    pub async fn delete_group(&self, id: &str) -> Result<(), GroupError> {
        if id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let had_state = {
            let mut groups = self.lock();
            match groups.get(id) {
                Some(g) if g.state != GroupState::Empty || !g.members.is_empty() => {
                    return Err(GroupError::NonEmptyGroup)
                }
                // An empty group's in-memory state goes now; a member that joins after this
                // starts a new group, which is what Kafka does too.
                Some(_) => {
                    groups.remove(id);
                    self.membership_changed();
                    true
                }
                None => false,
            }
        };
        if !had_state && !self.offsets.has_group(id) {
            return Err(GroupError::GroupIdNotFound);
        }
        self.offsets.delete(id, None).await.map_err(|e| {
            tracing::error!(group = id, error = %e, "cannot delete the group's offsets");
            GroupError::CommitNotDurable
        })?;
        tracing::info!(group = id, "group deleted");
        Ok(())
    }

    /// The topics a group's members consume now (by their subscriptions and assignments);
    /// `None` if the group has no members (or no state), so every offset of it may go.
    pub fn consumed_topics(&self, id: &str) -> Result<Option<BTreeSet<String>>, GroupError> {
        let groups = self.lock();
        match groups.get(id) {
            None if self.offsets.has_group(id) => Ok(None),
            None => Err(GroupError::GroupIdNotFound),
            Some(g) if g.members.is_empty() => Ok(None),
            Some(g) => Ok(Some(member_topics(g))),
        }
    }

    /// Deletes the group's commits of `partitions`, durably (OffsetDelete). The caller has
    /// checked them against [`GroupCoordinator::consumed_topics`].
    pub async fn delete_offsets(
        &self,
        id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), GroupError> {
        self.offsets
            .delete(id, Some(partitions))
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(group = id, error = %e, "cannot delete committed offsets");
                GroupError::CommitNotDurable
            })
    }
}

/// Topics in the members' assignments and in their subscriptions (the consumer protocol's
/// member metadata), so a group in the middle of a rebalance still counts as consuming them.
fn member_topics(g: &Group) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for m in g.members.values() {
        if let Some(a) = decode_assignment(&m.assignment) {
            topics.extend(a.into_keys());
        }
        for (_, metadata) in &m.protocols {
            topics.extend(decode_subscription_topics(metadata).unwrap_or_default());
        }
    }
    topics
}

/// The topic list at the start of a ConsumerProtocolSubscription (version, [topic], ...);
/// `None` if the bytes are not one.
fn decode_subscription_topics(mut b: &[u8]) -> Option<Vec<String>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    take(&mut b, 2)?; // version
    let n = take(&mut b, 4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))?;
    let n = usize::try_from(n).ok()?;
    let mut out = Vec::with_capacity(n.min(b.len() / 2));
    for _ in 0..n {
        let len = take(&mut b, 2).map(|x| i16::from_be_bytes([x[0], x[1]]))?;
        let s = take(&mut b, usize::try_from(len).ok()?)?;
        out.push(String::from_utf8(s.to_vec()).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_topics_decode_and_refuse_garbage() {
        let mut b = vec![0, 1, 0, 0, 0, 2];
        for t in ["orders", "ab"] {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
        }
        b.extend([0xff, 0xff, 0xff, 0xff]); // null user data
        assert_eq!(
            decode_subscription_topics(&b),
            Some(vec!["orders".to_string(), "ab".to_string()])
        );
        assert_eq!(decode_subscription_topics(&b[..9]), None);
        assert_eq!(
            decode_subscription_topics(&[0, 0, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }
}
