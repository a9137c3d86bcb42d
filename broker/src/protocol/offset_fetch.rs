//! OffsetFetch: committed offsets, or -1 where there is none (so the client applies its
//! auto.offset.reset). v8+ ask for several groups at once; null topics mean every committed one.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
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
/// DESCRIBE on each group and on each topic named (a request for every topic needs only the
/// group).
pub(crate) fn needs(_broker: &Broker, req: &OffsetFetchRequest) -> Vec<Need> {
    let group = |g: &str| vec![(Operation::Describe, ResourceType::Group, g.to_string())];
    let topic = |t: &str| vec![(Operation::Describe, ResourceType::Topic, t.to_string())];
    let mut needs = Vec::new();
    if req.groups.is_empty() {
        needs.push(group(&req.group_id.0));
        for t in req.topics.iter().flatten() {
            needs.push(topic(&t.name.0));
        }
    }
    for g in &req.groups {
        needs.push(group(&g.group_id.0));
        for t in g.topics.iter().flatten() {
            needs.push(topic(&t.name.0));
        }
    }
    needs
}

/// GROUP_AUTHORIZATION_FAILED, or TOPIC_AUTHORIZATION_FAILED when a topic is what is lacking
/// (v8+: per group; before: the top-level code, v2+).
pub(crate) fn denied(
    _version: i16,
    req: OffsetFetchRequest,
    lacking: &Need,
) -> OffsetFetchResponse {
    use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
    let code = if lacking.iter().any(|(_, rt, _)| *rt == ResourceType::Group) {
        kafka_protocol::ResponseError::GroupAuthorizationFailed.code()
    } else {
        kafka_protocol::ResponseError::TopicAuthorizationFailed.code()
    };
    let mut resp = OffsetFetchResponse::default();
    resp.error_code = code;
    for g in req.groups {
        let mut gr = OffsetFetchResponseGroup::default();
        gr.group_id = g.group_id;
        gr.error_code = code;
        resp.groups.push(gr);
    }
    resp
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
