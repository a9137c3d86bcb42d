//! DeleteTopics: by name (v1-5 `topic_names`, v6 `topics[]`) or by topic id (v6).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::{topic_error_code, NONE};
use super::Need;
use super::{off_runtime, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // Deleting renames directories and syncs them: off the runtime (see `off_runtime`).
    let b = broker.clone();
    off_runtime(move || delete_all(&b, version, req))
        .await
        .unwrap_or_default()
}

/// The topics a request names: by name (v1-5), or by name or topic id (v6+).
fn asked(version: i16, req: DeleteTopicsRequest) -> Vec<(Option<TopicName>, uuid::Uuid)> {
    if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    }
}

/// The answer for a caller that may not delete topics: TOPIC_AUTHORIZATION_FAILED (29) for each
/// topic, named as it was asked for, as Kafka answers without the DELETE permission.
/// DELETE on each topic; one named by id only is looked up (an unknown id needs DELETE on
/// every topic, so nothing is revealed about it).
pub(crate) fn needs(broker: &Broker, req: &DeleteTopicsRequest) -> Vec<Need> {
    let names: Vec<String> = if req.topics.is_empty() {
        req.topic_names.iter().map(|n| n.0.to_string()).collect()
    } else {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => n.0.to_string(),
                None => broker
                    .topics
                    .list()
                    .into_iter()
                    .find(|x| x.id == t.topic_id)
                    .map(|x| x.name.clone())
                    .unwrap_or_else(|| "*".to_string()),
            })
            .collect()
    };
    names
        .into_iter()
        .map(|n| vec![(Operation::Delete, ResourceType::Topic, n)])
        .collect()
}

pub(crate) fn denied(
    version: i16,
    req: DeleteTopicsRequest,
    _lacking: &Need,
) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in asked(version, req) {
        let mut r = DeletableTopicResult::default();
        r.name = name;
        r.topic_id = id;
        r.error_code = ResponseError::TopicAuthorizationFailed.code();
        if version >= 5 {
            r.error_message = Some(StrBytes::from_static_str(
                "Authorization failed: deleting topics is not allowed by the ACLs",
            ));
        }
        resp.responses.push(r);
    }
    resp
}

fn delete_all(broker: &Broker, version: i16, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in asked(version, req) {
        let mut r = DeletableTopicResult::default();
        let resolved = match &name {
            Some(n) => Some(n.0.as_str().to_string()),
            None => broker
                .topics
                .list()
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone()),
        };
        r.topic_id = id;
        match resolved {
            None => r.error_code = ResponseError::UnknownTopicId.code(),
            Some(n) => {
                r.name = Some(TopicName(StrBytes::from_string(n.clone())));
                let id = broker.topics.get(&n).map(|t| t.id);
                if let Some(id) = id {
                    r.topic_id = id; // v6 answers carry the id even when asked by name
                }
                match broker.topics.delete(&n) {
                    Ok(()) => {
                        r.error_code = NONE;
                        // Its commits stopped counting with it (they name its id); forget them.
                        if let Some(id) = id {
                            broker.groups.offsets().forget_topic(&n, id);
                        }
                    }
                    Err(e) => {
                        r.error_code = topic_error_code(&e);
                        if version >= 5 {
                            r.error_message = Some(StrBytes::from_string(e.to_string()));
                        }
                    }
                }
            }
        }
        if version < 6 && r.name.is_none() {
            r.name = name;
        }
        resp.responses.push(r);
    }
    resp
}
