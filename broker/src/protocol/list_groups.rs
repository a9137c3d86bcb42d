//! ListGroups: every group with its state and protocol type (optionally filtered by state).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes as s, RequestContext};
use crate::acl::{Operation, ResourceType, CLUSTER};
use crate::state::Broker;

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    _version: i16,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    // DESCRIBE on the cluster lists every group; otherwise those the caller may DESCRIBE.
    let all = ctx.allows(Operation::Describe, ResourceType::Cluster, CLUSTER);
    resp.groups = broker
        .groups
        .describe_all()
        .into_iter()
        .filter(|g| {
            req.states_filter.is_empty() || req.states_filter.iter().any(|f| f.as_str() == g.state)
        })
        .filter(|g| all || ctx.allows(Operation::Describe, ResourceType::Group, &g.id))
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
