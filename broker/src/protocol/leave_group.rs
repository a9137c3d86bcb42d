//! LeaveGroup: members leave at once instead of waiting for their session to run out (v0-2 one
//! member, v3+ a list with an answer per member).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::error::{group_result_code, NONE};
use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
/// READ on the group (Kafka's rule for every group membership request).
pub(crate) fn needs(_broker: &Broker, req: &LeaveGroupRequest) -> Vec<Need> {
    vec![vec![(
        Operation::Read,
        ResourceType::Group,
        req.group_id.0.to_string(),
    )]]
}

pub(crate) fn denied(
    _version: i16,
    _req: LeaveGroupRequest,
    _lacking: &Need,
) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    let group = req.group_id.0.as_str();
    if version < 3 {
        let results = broker
            .groups
            .leave(group, &[(req.member_id.to_string(), None)]);
        resp.error_code = results.into_iter().next().map_or(NONE, group_result_code);
        return resp;
    }
    let ids: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|g| g.to_string()),
            )
        })
        .collect();
    let results = broker.groups.leave(group, &ids);
    resp.members = req
        .members
        .into_iter()
        .zip(results)
        .map(|(m, result)| {
            let mut r = MemberResponse::default();
            r.member_id = m.member_id;
            r.group_instance_id = m.group_instance_id;
            r.error_code = group_result_code(result);
            r
        })
        .collect();
    resp
}
