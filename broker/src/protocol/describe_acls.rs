//! DescribeAcls: the ACLs a filter selects, grouped by resource pattern, as `kafka-acls.sh
//! --list` shows them. Needs DESCRIBE on the cluster. Without an authorizer (no SASL users)
//! there are no ACLs: SECURITY_DISABLED, as Kafka answers without `authorizer.class.name`.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{on_cluster, Need, RequestContext};
use crate::acl::{AclFilter, Operation};
use crate::state::Broker;

pub(crate) fn needs(_broker: &Broker, _req: &DescribeAclsRequest) -> Vec<Need> {
    on_cluster(Operation::Describe)
}

pub(crate) fn denied(
    _version: i16,
    _req: DescribeAclsRequest,
    _lacking: &Need,
) -> DescribeAclsResponse {
    failed(
        ResponseError::ClusterAuthorizationFailed.code(),
        "Authorization failed: DescribeAcls needs DESCRIBE on the cluster",
    )
}

fn failed(code: i16, message: &str) -> DescribeAclsResponse {
    let mut r = DescribeAclsResponse::default();
    r.error_code = code;
    r.error_message = Some(StrBytes::from_string(message.to_string()));
    r
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    _version: i16,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let Some(authorizer) = &broker.authorizer else {
        return failed(
            ResponseError::SecurityDisabled.code(),
            "No authorizer is configured (no SASL users)",
        );
    };
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_ref().map(|s| s.as_str()),
        req.pattern_type_filter,
        req.principal_filter.as_ref().map(|s| s.as_str()),
        req.host_filter.as_ref().map(|s| s.as_str()),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return failed(ResponseError::InvalidRequest.code(), &e.0),
    };
    // One entry per resource pattern, in a stable order.
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    authorizer.acls().with(|acls| {
        for a in acls.iter().filter(|a| filter.matches(a)) {
            let mut d = AclDescription::default();
            d.principal = StrBytes::from_string(a.principal.clone());
            d.host = StrBytes::from_string(a.host.clone());
            d.operation = a.operation.code();
            d.permission_type = a.permission.code();
            by_resource
                .entry((
                    a.resource_type.code(),
                    a.name.clone(),
                    a.pattern_type.code(),
                ))
                .or_default()
                .push(d);
        }
    });
    let mut r = DescribeAclsResponse::default();
    r.resources = by_resource
        .into_iter()
        .map(|((rt, name, pattern), acls)| {
            let mut res = DescribeAclsResource::default();
            res.resource_type = rt;
            res.resource_name = StrBytes::from_string(name);
            res.pattern_type = pattern;
            res.acls = acls;
            res
        })
        .collect();
    r
}
