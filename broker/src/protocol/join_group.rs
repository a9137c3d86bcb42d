//! JoinGroup: wire shapes around [`crate::group::GroupCoordinator::join`].

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::error::{group_error_code, NONE};
use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::JoinRequest;
use crate::state::Broker;

fn s(v: String) -> StrBytes {
    StrBytes::from_string(v)
}
/// READ on the group (Kafka's rule for every group membership request).
pub(crate) fn needs(_broker: &Broker, req: &JoinGroupRequest) -> Vec<Need> {
    vec![vec![(
        Operation::Read,
        ResourceType::Group,
        req.group_id.0.to_string(),
    )]]
}

pub(crate) fn denied(_version: i16, _req: JoinGroupRequest, _lacking: &Need) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
    resp
}

pub(crate) async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    version: i16,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|g| g.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let out = broker.groups.join(join).await;
    let mut resp = JoinGroupResponse::default();
    resp.error_code = out.error.map_or(NONE, group_error_code);
    resp.generation_id = out.generation;
    resp.leader = s(out.leader);
    resp.member_id = s(out.member_id);
    // Before v7 the protocol name is not nullable: an error answer still carries "".
    resp.protocol_name = match (out.protocol_name, version >= 7) {
        (Some(p), _) => Some(s(p)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    if version >= 7 {
        resp.protocol_type = out.protocol_type.map(s);
    }
    resp.members = out
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = s(id);
            if version >= 5 {
                m.group_instance_id = instance.map(s);
            }
            m.metadata = metadata;
            m
        })
        .collect();
    resp
}
