//! DescribeGroups: state, protocol and members (with their metadata and assignments) per group;
//! an unknown group is described as Dead, as Kafka does.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{on_each, Need};
use super::{str_bytes as s, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
/// DESCRIBE on each group.
pub(crate) fn needs(_broker: &Broker, req: &DescribeGroupsRequest) -> Vec<Need> {
    on_each(
        Operation::Describe,
        ResourceType::Group,
        req.groups.iter().map(|g| g.0.as_str()),
    )
}

pub(crate) fn denied(
    _version: i16,
    req: DescribeGroupsRequest,
    _lacking: &Need,
) -> DescribeGroupsResponse {
    use kafka_protocol::messages::describe_groups_response::DescribedGroup;
    let mut resp = DescribeGroupsResponse::default();
    for g in req.groups {
        let mut d = DescribedGroup::default();
        d.group_id = g;
        d.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
        d.authorized_operations = i32::MIN;
        resp.groups.push(d);
    }
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    _version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let all = broker.groups.describe_all();
    let mut resp = DescribeGroupsResponse::default();
    for id in req.groups {
        let mut d = DescribedGroup::default();
        d.authorized_operations = i32::MIN;
        match all.iter().find(|g| g.id == id.0.as_str()) {
            Some(g) => {
                d.group_state = s(g.state);
                d.protocol_type = s(&g.protocol_type);
                d.protocol_data = s(&g.protocol);
                d.members = g
                    .members
                    .iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = s(&m.id);
                        dm.group_instance_id = m.group_instance_id.as_deref().map(s);
                        dm.client_id = s(&m.client_id);
                        dm.client_host = s(&m.client_host);
                        dm.member_metadata = m.metadata.clone();
                        dm.member_assignment = m.assignment.clone();
                        dm
                    })
                    .collect();
            }
            // Kafka describes an unknown group as Dead with no members, not as an error.
            None => d.group_state = s("Dead"),
        }
        d.group_id = id;
        resp.groups.push(d);
    }
    resp
}
