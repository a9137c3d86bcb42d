//! CreatePartitions: raises a topic's partition count, persisted and visible in Metadata at
//! once. A count not above the current one → INVALID_PARTITIONS; an assignment naming
//! another broker → INVALID_REPLICA_ASSIGNMENT (a single node holds every partition).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::{topic_error_code, NONE};
use super::{off_runtime, RequestContext};
use super::{on_each, Need};
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
use crate::topics::{TopicError, MAX_PARTITIONS};
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // New partitions are new directories and files, synced: off the runtime.
    let b = broker.clone();
    off_runtime(move || create_all(&b, req))
        .await
        .unwrap_or_default()
}

/// A non-admin's request (SASL on): every topic refused with TOPIC_AUTHORIZATION_FAILED.
pub(crate) fn needs(_broker: &Broker, req: &CreatePartitionsRequest) -> Vec<Need> {
    on_each(
        Operation::Alter,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    )
}

pub(crate) fn denied(
    _version: i16,
    req: CreatePartitionsRequest,
    _lacking: &Need,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for t in req.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name;
        r.error_code = ResponseError::TopicAuthorizationFailed.code();
        r.error_message = Some(StrBytes::from_static_str(
            "Authorization failed: adding partitions is not allowed by the ACLs",
        ));
        resp.results.push(r);
    }
    resp
}

fn create_all(broker: &Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for t in req.topics {
        let name = t.name.0.as_str();
        let outcome: Result<(), (i16, String)> = (|| {
            let topic_err = |e: TopicError| (topic_error_code(&e), e.to_string());
            if t.assignments
                .iter()
                .flatten()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.config.node_id))
            {
                return Err((
                    ResponseError::InvalidReplicaAssignment.code(),
                    "assignment names an unknown broker".into(),
                ));
            }
            let topic = broker
                .topics
                .get(name)
                .ok_or_else(|| topic_err(TopicError::Unknown(name.to_string())))?;
            let current = topic.partition_count();
            if t.count <= current {
                return Err(topic_err(TopicError::PartitionsNotIncreased {
                    name: name.to_string(),
                    current,
                    requested: t.count,
                }));
            }
            if t.count > MAX_PARTITIONS {
                return Err(topic_err(TopicError::InvalidPartitions(t.count)));
            }
            if req.validate_only {
                return Ok(());
            }
            broker
                .topics
                .add_partitions(name, t.count)
                .map(|_| ())
                .map_err(topic_err)
        })();
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        match outcome {
            Ok(()) => r.error_code = NONE,
            Err((code, msg)) => {
                r.error_code = code;
                r.error_message = Some(StrBytes::from_string(msg));
            }
        }
        resp.results.push(r);
    }
    resp
}
