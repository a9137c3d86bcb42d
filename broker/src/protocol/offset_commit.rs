//! OffsetCommit: wire shapes around [`crate::group::GroupCoordinator::commit_offsets`].

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::error::group_result_code;
use super::RequestContext;
use super::{on_group_and_topics, Need};
use crate::acl::{Operation, ResourceType};
use crate::group::CommitRequest;
use crate::state::Broker;
/// READ on the group and on each topic (Kafka's rule).
pub(crate) fn needs(_broker: &Broker, req: &OffsetCommitRequest) -> Vec<Need> {
    on_group_and_topics(
        Operation::Read,
        &req.group_id.0,
        req.topics.iter().map(|t| t.name.0.as_str()),
    )
}

/// Every partition GROUP_AUTHORIZATION_FAILED when the group is what is lacking, else
/// TOPIC_AUTHORIZATION_FAILED; nothing is committed.
pub(crate) fn denied(
    _version: i16,
    req: OffsetCommitRequest,
    lacking: &Need,
) -> OffsetCommitResponse {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let code = if lacking.iter().any(|(_, rt, _)| *rt == ResourceType::Group) {
        kafka_protocol::ResponseError::GroupAuthorizationFailed.code()
    } else {
        kafka_protocol::ResponseError::TopicAuthorizationFailed.code()
    };
    let mut resp = OffsetCommitResponse::default();
    for t in req.topics {
        let mut tr = OffsetCommitResponseTopic::default();
        tr.name = t.name;
        tr.topic_id = t.topic_id;
        for p in t.partitions {
            let mut pr = OffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = code;
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

pub(crate) async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let mut layout: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = Vec::new();
    let mut entries = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        layout.push((
            t.name.clone(),
            t.partitions.iter().map(|p| p.partition_index).collect(),
        ));
        for p in &t.partitions {
            let epoch = if version >= 6 {
                p.committed_leader_epoch
            } else {
                -1
            };
            entries.push((
                name.clone(),
                p.partition_index,
                p.committed_offset,
                epoch,
                p.committed_metadata.as_ref().map(|m| m.to_string()),
            ));
        }
    }
    let commit = CommitRequest {
        group_id: req.group_id.0.to_string(),
        generation: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|g| g.to_string()),
        entries,
    };
    let topics = &broker.topics;
    let results = broker
        .groups
        .commit_offsets(commit, |t, p| {
            topics
                .get(t)
                .filter(|t| t.partition(p).is_some())
                .map(|t| t.id)
        })
        .await;
    let mut codes = results.into_iter().map(group_result_code);
    let mut resp = OffsetCommitResponse::default();
    for (name, parts) in layout {
        let mut tr = OffsetCommitResponseTopic::default();
        tr.name = name;
        tr.partitions = parts
            .into_iter()
            .map(|p| {
                let mut pr = OffsetCommitResponsePartition::default();
                pr.partition_index = p;
                pr.error_code = codes.next().unwrap_or_default();
                pr
            })
            .collect();
        resp.topics.push(tr);
    }
    resp
}
