//! What an operator asks about a group: its members, what each is assigned, and per partition
//! the committed offset, the log end and the lag (like `kafka-consumer-groups --describe`).
//! Served as JSON on the admin port, printed by `broker groups describe`, and exported as
//! metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::coordinator::{GroupCoordinator, GroupSummary};
use crate::topics::TopicRegistry;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupReport {
    pub group: String,
    pub state: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberReport>,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberReport {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// topic -> partitions, decoded from the consumer protocol's assignment.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing is committed yet.
    pub committed: i64,
    /// The high watermark: what a consumer can read up to.
    pub log_end_offset: i64,
    /// Records not yet committed as processed (from the log start when nothing is committed).
    pub lag: i64,
    pub member_id: Option<String>,
}

/// Decodes a ConsumerProtocolAssignment (version, [topic, [partition]], user data); `None` if the
/// bytes are not one (another protocol type, or corrupt).
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|x| i16::from_be_bytes([x[0], x[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    }
    let mut b = bytes;
    if b.is_empty() {
        return Some(BTreeMap::new());
    }
    let _version = i16_(&mut b)?;
    let topics = i32_(&mut b)?;
    let mut out = BTreeMap::new();
    for _ in 0..topics.max(0) {
        let len = usize::try_from(i16_(&mut b)?).ok()?;
        let name = String::from_utf8(take(&mut b, len)?.to_vec()).ok()?;
        let n = i32_(&mut b)?;
        if n < 0 || n as usize > b.len() / 4 {
            return None;
        }
        let parts = (0..n).map(|_| i32_(&mut b)).collect::<Option<Vec<i32>>>()?;
        out.insert(name, parts);
    }
    Some(out)
}

impl GroupCoordinator {
    /// Reports on every group known (live or with committed offsets).
    pub fn reports(&self, topics: &TopicRegistry) -> Vec<GroupReport> {
        self.describe_all()
            .iter()
            .map(|g| self.report_of(g, topics))
            .collect()
    }

    pub fn report(&self, group: &str, topics: &TopicRegistry) -> Option<GroupReport> {
        self.describe_all()
            .iter()
            .find(|g| g.id == group)
            .map(|g| self.report_of(g, topics))
    }

    fn report_of(&self, g: &GroupSummary, topics: &TopicRegistry) -> GroupReport {
        let members: Vec<MemberReport> = g
            .members
            .iter()
            .map(|m| MemberReport {
                member_id: m.id.clone(),
                client_id: m.client_id.clone(),
                host: m.client_host.clone(),
                assignment: decode_assignment(&m.assignment).unwrap_or_default(),
            })
            .collect();
        let owner = |t: &str, p: i32| {
            members
                .iter()
                .find(|m| m.assignment.get(t).is_some_and(|ps| ps.contains(&p)))
                .map(|m| m.member_id.clone())
        };
        // Every committed partition, plus assigned ones with no commit yet.
        let mut rows: BTreeMap<(String, i32), i64> = self
            .offsets
            .group_offsets(&g.id, &|t| topics.get(t).map(|t| t.id))
            .into_iter()
            .map(|(t, p, c)| ((t, p), c.offset))
            .collect();
        for m in &members {
            for (t, ps) in &m.assignment {
                for p in ps {
                    rows.entry((t.clone(), *p)).or_insert(-1);
                }
            }
        }
        let partitions = rows
            .into_iter()
            .map(|((topic, partition), committed)| {
                let log = topics
                    .get(&topic)
                    .and_then(|t| t.partition(partition).cloned());
                let (start, end) = log
                    .map(|l| (l.log_start_offset(), l.high_watermark()))
                    .unwrap_or((-1, -1));
                let lag = if end < 0 {
                    0
                } else if committed >= 0 {
                    (end - committed).max(0)
                } else {
                    end - start
                };
                PartitionLag {
                    member_id: owner(&topic, partition),
                    topic,
                    partition,
                    committed,
                    log_end_offset: end,
                    lag,
                }
            })
            .collect();
        GroupReport {
            group: g.id.clone(),
            state: g.state.to_string(),
            protocol: g.protocol.clone(),
            generation: g.generation,
            members,
            partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_consumer_assignment_and_refuses_garbage() {
        let mut b = vec![
            0, 1, 0, 0, 0, 1, 0, 2, b'o', b'k', 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5,
        ];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null user data
        let a = decode_assignment(&b).unwrap();
        assert_eq!(a.get("ok"), Some(&vec![3, 5]));
        assert_eq!(decode_assignment(&[]).unwrap().len(), 0);
        assert!(decode_assignment(&[0, 1, 0, 0, 0, 1, 0, 9, b'x']).is_none());
        assert!(
            decode_assignment(&[0, 1, 0, 0, 0, 1, 0, 1, b'x', 0x7f, 0xff, 0xff, 0xff]).is_none()
        );
    }
}
