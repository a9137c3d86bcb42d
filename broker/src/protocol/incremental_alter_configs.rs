//! IncrementalAlterConfigs: SET or DELETE (back to the broker default) of single topic
//! settings, in force at once on every partition and persisted before the answer. Values are
//! checked with the rule topic creation uses (`LogConfig::validate`) → INVALID_CONFIG with the
//! reason; broker configs are read-only here.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs;
use super::Need;
use super::{off_runtime, RequestContext};
use crate::acl::Operation;
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    // Persisting is an fsync or two per topic: off the runtime.
    let b = broker.clone();
    off_runtime(move || alter_all(&b, req))
        .await
        .unwrap_or_default()
}

/// A non-admin's request (SASL on): every resource refused, as Kafka's authorizer answers.
pub(crate) fn needs(_broker: &Broker, req: &IncrementalAlterConfigsRequest) -> Vec<Need> {
    req.resources
        .iter()
        .map(|r| {
            configs::need(
                Operation::AlterConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            )
        })
        .collect()
}

pub(crate) fn denied(
    _version: i16,
    req: IncrementalAlterConfigsRequest,
    _lacking: &Need,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let (code, message) = configs::denied(res.resource_type);
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        r.error_code = code;
        r.error_message = Some(StrBytes::from_static_str(message));
        resp.responses.push(r);
    }
    resp
}

fn alter_all(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let keys: Vec<&str> = res.configs.iter().map(|c| c.name.as_str()).collect();
        let outcome = configs::alter_resource(
            broker,
            res.resource_type,
            res.resource_name.as_str(),
            &keys,
            req.validate_only,
            |current, defaults| {
                let mut config = current.clone();
                for c in &res.configs {
                    configs::apply_incremental(
                        &mut config,
                        defaults,
                        c.name.as_str(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.as_str()),
                    )?;
                }
                Ok(config)
            },
        );
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        (r.error_code, r.error_message) = configs::answer(outcome);
        resp.responses.push(r);
    }
    resp
}
