//! OffsetFetch: committed offsets, or -1 where there is none (so the client applies its
//! auto.offset.reset). v8+ ask for several groups at once; null topics mean every committed one.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::state::Broker;

/// (topic, [(partition, offset, leader epoch, metadata)]) for a group.
type Answer = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn lookup(broker: &Broker, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Answer {
    let store = broker.groups.offsets();
    // Commits count only for the topic they were made for, not an older one of the same name.
    let id_of = |t: &str| broker.topics.get(t).map(|t| t.id);
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let rows = parts
                    .into_iter()
                    .map(
                        |p| match id_of(&t).and_then(|id| store.fetch(group, &t, id, p)) {
                            Some(c) => (p, c.offset, c.leader_epoch, c.metadata),
                            None => (p, -1, -1, String::new()),
                        },
                    )
                    .collect();
                (t, rows)
            })
            .collect(),
        None => {
            let mut out: Answer = Vec::new();
            for (t, p, c) in store.group_offsets(group, &id_of) {
                let row = (p, c.offset, c.leader_epoch, c.metadata);
                match out.last_mut() {
                    Some((last, rows)) if *last == t => rows.push(row),
                    _ => out.push((t, vec![row])),
                }
            }
            out
        }
    }
}

fn name(t: String) -> TopicName {
    TopicName(StrBytes::from_string(t))
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if version >= 8 {
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut gr = OffsetFetchResponseGroup::default();
            gr.topics = lookup(broker, g.group_id.0.as_str(), topics)
                .into_iter()
                .map(|(t, rows)| {
                    let mut tr = OffsetFetchResponseTopics::default();
                    tr.name = name(t);
                    tr.partitions = rows
                        .into_iter()
                        .map(|(p, o, e, m)| {
                            let mut pr = OffsetFetchResponsePartitions::default();
                            pr.partition_index = p;
                            pr.committed_offset = o;
                            pr.committed_leader_epoch = e;
                            pr.metadata = Some(StrBytes::from_string(m));
                            pr
                        })
                        .collect();
                    tr
                })
                .collect();
            gr.group_id = g.group_id;
            resp.groups.push(gr);
        }
        return resp;
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    resp.topics = lookup(broker, req.group_id.0.as_str(), topics)
        .into_iter()
        .map(|(t, rows)| {
            let mut tr = OffsetFetchResponseTopic::default();
            tr.name = name(t);
            tr.partitions = rows
                .into_iter()
                .map(|(p, o, e, m)| {
                    let mut pr = OffsetFetchResponsePartition::default();
                    pr.partition_index = p;
                    pr.committed_offset = o;
                    if version >= 5 {
                        pr.committed_leader_epoch = e;
                    }
                    pr.metadata = Some(StrBytes::from_string(m));
                    pr
                })
                .collect();
            tr
        })
        .collect();
    resp
}
