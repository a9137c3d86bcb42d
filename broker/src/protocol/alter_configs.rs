//! AlterConfigs, the pre-KIP-339 form older admin clients send: the request holds a topic's
//! complete set of overrides, and settings it leaves out return to the broker default. Same
//! checks, persistence and immediate effect as IncrementalAlterConfigs.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{self, ConfigError, Resource};
use super::error::{config_error_code, NONE};
use super::{off_runtime, RequestContext};
use crate::state::Broker;
use crate::topics::TopicError;
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

fn alter_all(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let outcome = (|| -> Result<(), ConfigError> {
            match Resource::parse(broker, res.resource_type, res.resource_name.as_str())? {
                Resource::Broker => Err(ConfigError::BrokerReadOnly),
                Resource::Topic(name) => {
                    let topic = broker
                        .topics
                        .get(&name)
                        .ok_or_else(|| TopicError::Unknown(name.clone()))?;
                    let config = configs::apply_legacy(
                        &topic.config,
                        broker.topics.defaults(),
                        res.configs
                            .iter()
                            .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))),
                    )?;
                    // What the client set is held to the bounds a create's settings are.
                    let keys: Vec<&str> = res.configs.iter().map(|c| c.name.as_str()).collect();
                    config.validate_client_set(&keys)?;
                    if !req.validate_only {
                        broker.topics.alter_config(&name, config)?;
                    }
                    Ok(())
                }
            }
        })();
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        match outcome {
            Ok(()) => r.error_code = NONE,
            Err(e) => {
                r.error_code = config_error_code(&e);
                r.error_message = Some(StrBytes::from_string(e.to_string()));
            }
        }
        resp.responses.push(r);
    }
    resp
}
