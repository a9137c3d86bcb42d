//! DescribeConfigs: a topic's settings (value, whether it is the broker default or the topic's
//! own, read-only flag, type) and this broker's, as admin tools list them. Unknown topic →
//! UNKNOWN_TOPIC_OR_PARTITION; other resource types → INVALID_REQUEST, per resource.

use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{self, ConfigError, Resource};
use super::error::{config_error_code, NONE};
use super::Need;
use super::RequestContext;
use crate::acl::Operation;
use crate::state::Broker;
use crate::topics::TopicError;
/// DESCRIBE_CONFIGS on each resource (the cluster for the broker's).
pub(crate) fn needs(_broker: &Broker, req: &DescribeConfigsRequest) -> Vec<Need> {
    req.resources
        .iter()
        .map(|r| {
            configs::need(
                Operation::DescribeConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            )
        })
        .collect()
}

pub(crate) fn denied(
    _version: i16,
    req: DescribeConfigsRequest,
    _lacking: &Need,
) -> DescribeConfigsResponse {
    use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
    let mut resp = DescribeConfigsResponse::default();
    for r in req.resources {
        let (code, message) = configs::denied(r.resource_type);
        let mut d = DescribeConfigsResult::default();
        d.resource_type = r.resource_type;
        d.resource_name = r.resource_name;
        d.error_code = code;
        d.error_message = Some(kafka_protocol::protocol::StrBytes::from_static_str(message));
        resp.results.push(d);
    }
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for res in req.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let entries = Resource::parse(broker, res.resource_type, res.resource_name.as_str())
            .and_then(|resource| match resource {
                Resource::Broker => Ok(configs::describe_broker(broker)),
                Resource::Topic(name) => broker
                    .topics
                    .get(&name)
                    .map(|t| configs::describe_topic(&t.config, broker.topics.defaults()))
                    .ok_or(ConfigError::Topic(TopicError::Unknown(name))),
            });
        match entries {
            Ok(entries) => {
                r.error_code = NONE;
                r.configs = configs::to_wire(
                    entries,
                    res.configuration_keys.as_deref(),
                    version,
                    req.include_synonyms,
                    req.include_documentation,
                );
            }
            Err(e) => {
                r.error_code = config_error_code(&e);
                r.error_message = Some(StrBytes::from_string(e.to_string()));
            }
        }
        resp.results.push(r);
    }
    resp
}
