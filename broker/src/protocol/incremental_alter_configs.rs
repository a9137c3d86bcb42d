//! IncrementalAlterConfigs: SET or DELETE (back to the broker default) of single topic
//! settings, in force at once on every partition and persisted before the answer. Values are
//! checked with the rule topic creation uses (`LogConfig::validate`) → INVALID_CONFIG with the
//! reason; broker configs are read-only here.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
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
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    // Persisting is an fsync or two per topic: off the runtime.
    let b = broker.clone();
    off_runtime(move || alter_all(&b, req))
        .await
        .unwrap_or_default()
}

fn alter_all(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let outcome = (|| -> Result<(), ConfigError> {
            match Resource::parse(broker, res.resource_type, res.resource_name.as_str())? {
                Resource::Broker => Err(ConfigError::BrokerReadOnly),
                Resource::Topic(name) => {
                    let topic = broker
                        .topics
                        .get(&name)
                        .ok_or_else(|| TopicError::Unknown(name.clone()))?;
                    let defaults = broker.topics.defaults();
                    let mut config = topic.config.clone();
                    for c in &res.configs {
                        configs::apply_incremental(
                            &mut config,
                            defaults,
                            c.name.as_str(),
                            c.config_operation,
                            c.value.as_ref().map(|v| v.as_str()),
                        )?;
                    }
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
