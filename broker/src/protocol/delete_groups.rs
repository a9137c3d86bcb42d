//! DeleteGroups: removes empty groups with all their committed offsets, durably. A group with
//! members → NON_EMPTY_GROUP; an unknown one → GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::error::group_result_code;
use super::RequestContext;
use super::{on_each, Need};
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let outcome = broker.groups.delete_group(id.0.as_str()).await;
        let mut r = DeletableGroupResult::default();
        r.group_id = id;
        r.error_code = group_result_code(outcome);
        resp.results.push(r);
    }
    resp
}

/// A non-admin's request (SASL on): every group refused with GROUP_AUTHORIZATION_FAILED.
pub(crate) fn needs(_broker: &Broker, req: &DeleteGroupsRequest) -> Vec<Need> {
    on_each(
        Operation::Delete,
        ResourceType::Group,
        req.groups_names.iter().map(|g| g.0.as_str()),
    )
}

pub(crate) fn denied(
    _version: i16,
    req: DeleteGroupsRequest,
    _lacking: &Need,
) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let mut r = DeletableGroupResult::default();
        r.group_id = id;
        r.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
        resp.results.push(r);
    }
    resp
}
