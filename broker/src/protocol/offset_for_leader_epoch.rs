//! OffsetForLeaderEpoch: the leader epoch never changes on this single node (always 0), so any
//! epoch up to 0 ends at the high watermark, and a larger one is unknown. Clients use this to
//! validate their position after a seek or a metadata epoch change (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::error::{unknown_topic, NONE};
use super::RequestContext;
use super::{on_each, Need};
use crate::acl::{Operation, ResourceType};
use crate::log::batch::LEADER_EPOCH;
use crate::state::Broker;
/// DESCRIBE on each topic.
pub(crate) fn needs(_broker: &Broker, req: &OffsetForLeaderEpochRequest) -> Vec<Need> {
    on_each(
        Operation::Describe,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.topic.0.as_str()),
    )
}

/// Every partition TOPIC_AUTHORIZATION_FAILED.
pub(crate) fn denied(
    _version: i16,
    req: OffsetForLeaderEpochRequest,
    _lacking: &Need,
) -> OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic;
        for p in t.partitions {
            let mut pr = EpochEndOffset::default();
            pr.partition = p.partition;
            pr.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
            pr.leader_epoch = -1;
            pr.end_offset = -1;
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic.clone();
        let topic = broker.topics.get(t.topic.0.as_str());
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            match topic.as_ref().and_then(|tp| tp.partition(p.partition)) {
                None => e.error_code = unknown_topic(),
                Some(_)
                    if p.leader_epoch > LEADER_EPOCH || p.current_leader_epoch > LEADER_EPOCH =>
                {
                    e.error_code = ResponseError::UnknownLeaderEpoch.code()
                }
                Some(log) => {
                    e.error_code = NONE;
                    e.leader_epoch = LEADER_EPOCH;
                    e.end_offset = log.high_watermark();
                }
            }
            tr.partitions.push(e);
        }
        resp.topics.push(tr);
    }
    resp
}
