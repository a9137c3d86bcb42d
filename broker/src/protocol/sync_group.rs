//! SyncGroup: wire shapes around [`crate::group::GroupCoordinator::sync`].

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::error::{group_error_code, NONE};
use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::SyncRequest;
use crate::state::Broker;
/// READ on the group (Kafka's rule for every group membership request).
pub(crate) fn needs(_broker: &Broker, req: &SyncGroupRequest) -> Vec<Need> {
    vec![vec![(
        Operation::Read,
        ResourceType::Group,
        req.group_id.0.to_string(),
    )]]
}

pub(crate) fn denied(_version: i16, _req: SyncGroupRequest, _lacking: &Need) -> SyncGroupResponse {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
    resp
}

pub(crate) async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|g| g.to_string()),
        protocol_type: req.protocol_type.map(|p| p.to_string()),
        protocol_name: req.protocol_name.map(|p| p.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let out = broker.groups.sync(sync).await;
    let mut resp = SyncGroupResponse::default();
    resp.error_code = out.error.map_or(NONE, group_error_code);
    resp.assignment = out.assignment;
    if version >= 5 {
        resp.protocol_type = out.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = out.protocol_name.map(StrBytes::from_string);
    }
    resp
}
