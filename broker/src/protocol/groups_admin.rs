//! ListGroups and DescribeGroups.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::server::Broker;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn list(broker: &Broker, _version: i16, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    resp.groups = broker
        .groups
        .describe_all()
        .into_iter()
        .filter(|g| {
            req.states_filter.is_empty() || req.states_filter.iter().any(|f| f.as_str() == g.state)
        })
        .map(|g| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(s(&g.id));
            l.protocol_type = s(&g.protocol_type);
            l.group_state = s(g.state);
            l.group_type = s("classic");
            l
        })
        .collect();
    resp
}

pub(crate) fn describe(
    broker: &Broker,
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
