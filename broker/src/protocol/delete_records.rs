//! DeleteRecords: moves a partition's log start offset forward (offset -1: to the high
//! watermark), durably; reads below it get OFFSET_OUT_OF_RANGE and ListOffsets earliest
//! answers the new start. Whole segments below it are deleted.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::error::{log_error_code, unknown_topic, NONE};
use super::{off_runtime, RequestContext};
use super::{on_each, Need};
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    // A checkpoint write (fsync) and segment deletions per partition: off the runtime.
    let layout = req.clone();
    let b = broker.clone();
    match off_runtime(move || delete_all(&b, req)).await {
        Some(resp) => resp,
        None => failed(layout),
    }
}

/// A non-admin's request (SASL on): every partition refused with TOPIC_AUTHORIZATION_FAILED.
pub(crate) fn needs(_broker: &Broker, req: &DeleteRecordsRequest) -> Vec<Need> {
    on_each(
        Operation::Delete,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    )
}

pub(crate) fn denied(
    _version: i16,
    req: DeleteRecordsRequest,
    _lacking: &Need,
) -> DeleteRecordsResponse {
    every_partition(req, ResponseError::TopicAuthorizationFailed.code())
}

/// Every partition answered with KAFKA_STORAGE_ERROR (the blocking work panicked).
fn failed(req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    every_partition(req, ResponseError::KafkaStorageError.code())
}

/// Every partition of the request answered with `code`, nothing deleted.
fn every_partition(req: DeleteRecordsRequest, code: i16) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            pr.error_code = code;
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

fn delete_all(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => pr.error_code = unknown_topic(),
                Some(log) => match log.delete_records_before(p.offset) {
                    Ok(start) => {
                        pr.error_code = NONE;
                        pr.low_watermark = start;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, partition = p.partition_index, "DeleteRecords refused");
                        pr.error_code = log_error_code(&e);
                    }
                },
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
