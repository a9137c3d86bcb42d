//! CreateTopics: N partitions (or the broker default for -1), replication factor 1 (or -1), the
//! request's configs applied over the broker defaults; unknown configs are INVALID_CONFIG.

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::{topic_error_code, NONE};
use super::Need;
use super::{off_runtime, RequestContext};
use crate::acl::{Operation, ResourceType, CLUSTER};
use crate::state::Broker;
use crate::topics::validate_topic_name;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // Creating is file work, a few hundred ms for 100 partitions: off the runtime (see
    // `off_runtime`), so other requests are served meanwhile.
    let b = broker.clone();
    off_runtime(move || create_all(&b, version, req))
        .await
        .unwrap_or_default()
}

/// The answer for a caller that may not create topics: TOPIC_AUTHORIZATION_FAILED (29) for each
/// topic, as Kafka answers without the CREATE permission.
/// CREATE on the cluster, or on each topic (Kafka's rule).
pub(crate) fn needs(_broker: &Broker, req: &CreateTopicsRequest) -> Vec<Need> {
    req.topics
        .iter()
        .map(|t| {
            vec![
                (
                    Operation::Create,
                    ResourceType::Cluster,
                    CLUSTER.to_string(),
                ),
                (Operation::Create, ResourceType::Topic, t.name.0.to_string()),
            ]
        })
        .collect()
}

pub(crate) fn denied(
    version: i16,
    req: CreateTopicsRequest,
    _lacking: &Need,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    for t in req.topics {
        let mut r = CreatableTopicResult::default();
        r.name = t.name;
        r.num_partitions = -1;
        r.replication_factor = -1;
        r.error_code = ResponseError::TopicAuthorizationFailed.code();
        if version >= 1 {
            r.error_message = Some(StrBytes::from_static_str(
                "Authorization failed: creating topics is not allowed by the ACLs",
            ));
        }
        resp.topics.push(r);
    }
    resp
}

fn create_all(broker: &Broker, version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    for t in req.topics {
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        let name = t.name.0.as_str();
        let partitions = if t.num_partitions == -1 {
            broker.config.default_partitions
        } else {
            t.num_partitions
        };
        let mut config = broker.topics.defaults().clone();
        let outcome: Result<(), (i16, String)> = (|| {
            validate_topic_name(name).map_err(|e| (topic_error_code(&e), e.to_string()))?;
            if partitions < 1 {
                return Err((
                    ResponseError::InvalidPartitions.code(),
                    format!("num_partitions {partitions} must be >= 1"),
                ));
            }
            if !(t.replication_factor == 1 || t.replication_factor == -1) {
                return Err((
                    ResponseError::InvalidReplicationFactor.code(),
                    format!(
                        "replication factor {} but this broker is a single node",
                        t.replication_factor
                    ),
                ));
            }
            if t.assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.config.node_id))
            {
                return Err((
                    ResponseError::InvalidReplicaAssignment.code(),
                    "assignment names an unknown broker".into(),
                ));
            }
            for c in &t.configs {
                let value = c.value.as_ref().map(|v| v.as_str()).unwrap_or("");
                config
                    .set(c.name.as_str(), value)
                    .map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
            }
            // The broker's defaults are the operator's; what the client changed must be sane.
            let keys: Vec<&str> = t.configs.iter().map(|c| c.name.as_str()).collect();
            config
                .validate_client_set(&keys)
                .map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
            if broker.topics.get(name).is_some() {
                return Err((
                    ResponseError::TopicAlreadyExists.code(),
                    format!("topic {name} already exists"),
                ));
            }
            if req.validate_only {
                return Ok(());
            }
            let topic = broker
                .topics
                .create(name, partitions, config.clone())
                .map_err(|e| (topic_error_code(&e), e.to_string()))?;
            r.topic_id = topic.id;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                r.error_code = NONE;
                if version >= 5 {
                    r.num_partitions = partitions;
                    r.replication_factor = 1;
                    r.configs = Some(
                        config
                            .to_pairs()
                            .into_iter()
                            .map(|(k, v)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = StrBytes::from_static_str(k);
                                c.value = Some(StrBytes::from_string(v));
                                c.config_source = 5; // DEFAULT_CONFIG
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err((code, msg)) => {
                r.error_code = code;
                if version >= 1 {
                    r.error_message = Some(StrBytes::from_string(msg));
                }
            }
        }
        resp.topics.push(r);
    }
    resp
}
