//! OffsetDelete: removes a group's committed offsets for some partitions, durably. Refused per
//! partition (GROUP_SUBSCRIBED_TO_TOPIC) for topics the group's members consume now; an unknown
//! group → GROUP_ID_NOT_FOUND, an unknown topic or partition → UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::error::{group_error_code, unknown_topic, NONE};
use super::RequestContext;
use super::{on_group_and_topics, Need};
use crate::acl::{Operation, ResourceType};
use crate::group::GroupError;
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.0.as_str();
    let mut resp = OffsetDeleteResponse::default();
    let consumed = match broker.groups.consumed_topics(group) {
        Ok(c) => c,
        Err(e) => {
            resp.error_code = group_error_code(e);
            return resp;
        }
    };
    let mut doomed = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let topic = broker.topics.get(&name);
        let mut tr = OffsetDeleteResponseTopic::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = OffsetDeleteResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = if topic
                .as_ref()
                .and_then(|t| t.partition(p.partition_index))
                .is_none()
            {
                unknown_topic()
            } else if consumed.as_ref().is_some_and(|c| c.contains(&name)) {
                group_error_code(GroupError::SubscribedToTopic)
            } else {
                doomed.push((name.clone(), p.partition_index));
                NONE
            };
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    if let Err(e) = broker.groups.delete_offsets(group, &doomed).await {
        resp.error_code = group_error_code(e);
        resp.topics.clear();
    }
    resp
}

/// A non-admin's request (SASL on): refused as a whole with GROUP_AUTHORIZATION_FAILED.
/// DELETE on the group and READ on each topic (Kafka's rule).
pub(crate) fn needs(_broker: &Broker, req: &OffsetDeleteRequest) -> Vec<Need> {
    on_group_and_topics(
        Operation::Delete,
        &req.group_id.0,
        req.topics.iter().map(|t| t.name.0.as_str()),
    )
}

/// GROUP_AUTHORIZATION_FAILED when the group is what is lacking, else every partition of the
/// request TOPIC_AUTHORIZATION_FAILED.
pub(crate) fn denied(
    _version: i16,
    req: OffsetDeleteRequest,
    lacking: &Need,
) -> OffsetDeleteResponse {
    use kafka_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let mut resp = OffsetDeleteResponse::default();
    if lacking.iter().any(|(_, rt, _)| *rt == ResourceType::Group) {
        resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
        return resp;
    }
    for t in req.topics {
        let mut tr = OffsetDeleteResponseTopic::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = OffsetDeleteResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
