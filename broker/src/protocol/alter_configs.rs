//! AlterConfigs, the pre-KIP-339 form older admin clients send: the request holds a topic's
//! complete set of overrides, and settings it leaves out return to the broker default. Same
//! checks, persistence and immediate effect as IncrementalAlterConfigs.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
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
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    // Persisting is an fsync or two per topic: off the runtime.
    let b = broker.clone();
    off_runtime(move || alter_all(&b, req))
        .await
        .unwrap_or_default()
}

/// A non-admin's request (SASL on): every resource refused, as Kafka's authorizer answers.
pub(crate) fn needs(_broker: &Broker, req: &AlterConfigsRequest) -> Vec<Need> {
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
    req: AlterConfigsRequest,
    _lacking: &Need,
) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
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

fn alter_all(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let keys: Vec<&str> = res.configs.iter().map(|c| c.name.as_str()).collect();
        let outcome = configs::alter_resource(
            broker,
            res.resource_type,
            res.resource_name.as_str(),
            &keys,
            req.validate_only,
            |current, defaults| {
                configs::apply_legacy(
                    current,
                    defaults,
                    res.configs
                        .iter()
                        .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))),
                )
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
