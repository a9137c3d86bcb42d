//! Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to re-join.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::error::group_result_code;
use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
/// READ on the group (Kafka's rule for every group membership request).
pub(crate) fn needs(_broker: &Broker, req: &HeartbeatRequest) -> Vec<Need> {
    vec![vec![(
        Operation::Read,
        ResourceType::Group,
        req.group_id.0.to_string(),
    )]]
}

pub(crate) fn denied(_version: i16, _req: HeartbeatRequest, _lacking: &Need) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    _version: i16,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    resp.error_code = group_result_code(broker.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_deref(),
    ));
    resp
}
