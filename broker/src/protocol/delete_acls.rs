//! DeleteAcls: removes every ACL each filter selects (`kafka-acls.sh --remove`), durably before
//! the answer, and reports per filter what it removed. Needs ALTER on the cluster.

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{off_runtime, on_cluster, Need, RequestContext};
use crate::acl::{AclFilter, Operation};
use crate::state::Broker;

pub(crate) fn needs(_broker: &Broker, _req: &DeleteAclsRequest) -> Vec<Need> {
    on_cluster(Operation::Alter)
}

pub(crate) fn denied(_version: i16, req: DeleteAclsRequest, _lacking: &Need) -> DeleteAclsResponse {
    every(
        req.filters.len(),
        ResponseError::ClusterAuthorizationFailed.code(),
        "Authorization failed: DeleteAcls needs ALTER on the cluster",
    )
}

fn every(n: usize, code: i16, message: &str) -> DeleteAclsResponse {
    let mut r = DeleteAclsResponse::default();
    r.filter_results = (0..n).map(|_| failed(code, message)).collect();
    r
}

fn failed(code: i16, message: &str) -> DeleteAclsFilterResult {
    let mut f = DeleteAclsFilterResult::default();
    f.error_code = code;
    f.error_message = Some(StrBytes::from_string(message.to_string()));
    f
}

pub(crate) async fn handle(
    broker: &std::sync::Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let Some(authorizer) = broker.authorizer.clone() else {
        return every(
            req.filters.len(),
            ResponseError::SecurityDisabled.code(),
            "No authorizer is configured (no SASL users)",
        );
    };
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.as_str()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.as_str()),
                f.host_filter.as_ref().map(|s| s.as_str()),
                f.operation,
                f.permission_type,
            )
            .map_err(|e| e.0)
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let removed = off_runtime(move || authorizer.acls().delete(&valid)).await;
    let mut removed = match removed {
        Some(Ok(r)) => r.into_iter(),
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot store ACLs");
            return every(
                req.filters.len(),
                ResponseError::UnknownServerError.code(),
                &e.to_string(),
            );
        }
        None => {
            return every(
                req.filters.len(),
                ResponseError::UnknownServerError.code(),
                "internal error",
            )
        }
    };
    let mut r = DeleteAclsResponse::default();
    r.filter_results = parsed
        .into_iter()
        .map(|p| match p {
            Err(e) => failed(ResponseError::InvalidRequest.code(), &e),
            Ok(_) => {
                let mut f = DeleteAclsFilterResult::default();
                f.matching_acls = removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| {
                        tracing::info!(acl = ?a, "ACL deleted");
                        let mut m = DeleteAclsMatchingAcl::default();
                        m.resource_type = a.resource_type.code();
                        m.resource_name = StrBytes::from_string(a.name);
                        m.pattern_type = a.pattern_type.code();
                        m.principal = StrBytes::from_string(a.principal);
                        m.host = StrBytes::from_string(a.host);
                        m.operation = a.operation.code();
                        m.permission_type = a.permission.code();
                        m
                    })
                    .collect();
                f
            }
        })
        .collect();
    r
}
