//! CreateAcls: adds ACLs (`kafka-acls.sh --add`, the AdminClient's createAcls), durably before
//! the answer. Needs ALTER on the cluster. Each creation is checked on its own: an invalid one
//! (unknown code, bad principal or host, ANY where a value is needed) gets INVALID_REQUEST with
//! the reason and the valid ones are stored.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::NONE;
use super::{off_runtime, on_cluster, Need, RequestContext};
use crate::acl::{Acl, InvalidAcl, Operation, PatternType, Permission, ResourceType};
use crate::state::Broker;

pub(crate) fn needs(_broker: &Broker, _req: &CreateAclsRequest) -> Vec<Need> {
    on_cluster(Operation::Alter)
}

pub(crate) fn denied(_version: i16, req: CreateAclsRequest, _lacking: &Need) -> CreateAclsResponse {
    every(
        req.creations.len(),
        ResponseError::ClusterAuthorizationFailed.code(),
        "Authorization failed: CreateAcls needs ALTER on the cluster",
    )
}

fn every(n: usize, code: i16, message: &str) -> CreateAclsResponse {
    let mut r = CreateAclsResponse::default();
    r.results = (0..n)
        .map(|_| {
            let mut c = AclCreationResult::default();
            c.error_code = code;
            c.error_message = Some(StrBytes::from_string(message.to_string()));
            c
        })
        .collect();
    r
}

fn concrete<T>(code: i8, f: fn(i8) -> Option<T>, what: &str) -> Result<T, InvalidAcl> {
    f(code).ok_or_else(|| InvalidAcl(format!("{what} code {code} is not a concrete {what}")))
}

pub(crate) async fn handle(
    broker: &std::sync::Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let Some(authorizer) = broker.authorizer.clone() else {
        return every(
            req.creations.len(),
            ResponseError::SecurityDisabled.code(),
            "No authorizer is configured (no SASL users)",
        );
    };
    let parsed: Vec<Result<Acl, InvalidAcl>> = req
        .creations
        .iter()
        .map(|c| {
            let acl = Acl {
                resource_type: concrete(c.resource_type, ResourceType::from_code, "resource type")?,
                pattern_type: concrete(
                    c.resource_pattern_type,
                    PatternType::from_code,
                    "pattern type",
                )?,
                name: c.resource_name.to_string(),
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: concrete(c.operation, Operation::from_code, "operation")?,
                permission: concrete(c.permission_type, Permission::from_code, "permission")?,
            };
            acl.validate()?;
            Ok(acl)
        })
        .collect();
    let valid: Vec<Acl> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let stored = off_runtime(move || authorizer.acls().create(&valid)).await;
    let store_error = match stored {
        Some(Ok(())) => None,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot store ACLs");
            Some(e.to_string())
        }
        None => Some("internal error".to_string()),
    };
    let mut r = CreateAclsResponse::default();
    r.results = parsed
        .into_iter()
        .map(|p| {
            let mut c = AclCreationResult::default();
            match (p, &store_error) {
                (Err(e), _) => {
                    c.error_code = ResponseError::InvalidRequest.code();
                    c.error_message = Some(StrBytes::from_string(e.0));
                }
                (Ok(_), Some(e)) => {
                    c.error_code = ResponseError::UnknownServerError.code();
                    c.error_message = Some(StrBytes::from_string(e.clone()));
                }
                (Ok(acl), None) => {
                    tracing::info!(?acl, "ACL created");
                    c.error_code = NONE;
                }
            }
            c
        })
        .collect();
    r
}
