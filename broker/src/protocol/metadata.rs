//! Metadata: this broker as the only node, and the topics asked for, auto-created when both the
//! broker and the client allow it (Kafka auto-creates in Metadata only, never on Produce/Fetch).

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::{topic_error_code, NONE};
use super::{off_runtime, RequestContext};
use crate::acl::{Operation, ResourceType, CLUSTER};
use crate::state::Broker;
use crate::topics::{validate_topic_name, Topic, TopicError};
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    req: MetadataRequest,
) -> MetadataResponse {
    let node = BrokerId(broker.config.node_id);
    let mut resp = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = node;
    b.host = StrBytes::from_string(ctx.listener.host.clone());
    b.port = i32::from(ctx.listener.port);
    resp.brokers = vec![b];
    resp.cluster_id = Some(StrBytes::from_string(broker.config.cluster_id.clone()));
    resp.controller_id = node;
    resp.cluster_authorized_operations = i32::MIN;

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    if all {
        // Every topic the caller may DESCRIBE; the others are left out, as Kafka does.
        resp.topics = broker
            .topics
            .list()
            .iter()
            .filter(|t| ctx.on_topic(Operation::Describe, &t.name))
            .map(|t| topic_entry(broker, t))
            .collect();
        return resp;
    }
    // Clients older than v4 cannot say; Kafka treats them as allowing creation. Creating needs
    // CREATE on the cluster or the topic: without it an unknown topic is
    // UNKNOWN_TOPIC_OR_PARTITION, as with auto-creation off.
    let may_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let create_on_cluster = ctx.allows(Operation::Create, ResourceType::Cluster, CLUSTER);
    for requested in req.topics.unwrap_or_default() {
        let entry = match requested.name {
            // A topic the caller may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED whether it
            // exists or not, so its existence is not revealed.
            Some(name) if !ctx.on_topic(Operation::Describe, name.0.as_str()) => error_entry(
                Some(name),
                Default::default(),
                ResponseError::TopicAuthorizationFailed.code(),
            ),
            Some(name) => {
                let allow_create = may_create
                    && (create_on_cluster || ctx.on_topic(Operation::Create, name.0.as_str()));
                by_name(broker, name.0.as_str(), allow_create).await
            }
            None => match broker
                .topics
                .list()
                .into_iter()
                .find(|t| t.id == requested.topic_id)
            {
                Some(t) if !ctx.on_topic(Operation::Describe, &t.name) => error_entry(
                    None,
                    requested.topic_id,
                    ResponseError::TopicAuthorizationFailed.code(),
                ),
                Some(t) => topic_entry(broker, &t),
                None => error_entry(
                    None,
                    requested.topic_id,
                    ResponseError::UnknownTopicId.code(),
                ),
            },
        };
        resp.topics.push(entry);
    }
    resp
}

async fn by_name(broker: &Arc<Broker>, name: &str, allow_create: bool) -> MetadataResponseTopic {
    let sname = || Some(TopicName(StrBytes::from_string(name.to_string())));
    if let Err(e) = validate_topic_name(name) {
        return error_entry(sname(), Default::default(), topic_error_code(&e));
    }
    if let Some(t) = broker.topics.get(name) {
        return topic_entry(broker, &t);
    }
    if broker.topics.unavailable_reason(name).is_some() {
        return error_entry(
            sname(),
            Default::default(),
            ResponseError::KafkaStorageError.code(),
        );
    }
    if !allow_create {
        return error_entry(sname(), Default::default(), super::error::unknown_topic());
    }
    let config = broker.topics.defaults().clone();
    // Creating is file work: off the runtime (see `off_runtime`).
    let (b, n) = (broker.clone(), name.to_string());
    let created =
        off_runtime(move || b.topics.create(&n, b.config.default_partitions, config)).await;
    let Some(created) = created else {
        return error_entry(
            sname(),
            Default::default(),
            ResponseError::KafkaStorageError.code(),
        );
    };
    match created {
        Ok(t) => topic_entry(broker, &t),
        // Lost a race with another creator: fine, it exists now.
        Err(TopicError::AlreadyExists(_)) => match broker.topics.get(name) {
            Some(t) => topic_entry(broker, &t),
            None => error_entry(
                sname(),
                Default::default(),
                ResponseError::LeaderNotAvailable.code(),
            ),
        },
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-create failed");
            error_entry(sname(), Default::default(), topic_error_code(&e))
        }
    }
}

fn error_entry(name: Option<TopicName>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code;
    t.name = name;
    t.topic_id = id;
    t.topic_authorized_operations = i32::MIN;
    t
}

pub(crate) fn topic_entry(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let mut t = MetadataResponseTopic::default();
    t.error_code = NONE;
    t.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    t.topic_id = topic.id;
    t.topic_authorized_operations = i32::MIN;
    t.partitions = (0..topic.partition_count())
        .map(|i| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = i;
            p.leader_id = node;
            p.leader_epoch = crate::log::batch::LEADER_EPOCH;
            p.replica_nodes = vec![node];
            p.isr_nodes = vec![node];
            p
        })
        .collect();
    t
}
