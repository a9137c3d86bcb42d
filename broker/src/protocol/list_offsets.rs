//! ListOffsets: earliest (-2), latest (-1, the high watermark), max timestamp (-3), earliest local
//! (-4, v8+), latest tiered (-5, v9+), or the first offset whose timestamp is at or after a given
//! time.
//!
//! The tiered-storage specs (KIP-1005) are served because Apache Kafka 4.x's admin client and
//! tools ask for them with v8/v9 and refuse client-side when the broker's range stops below:
//! there is no tiered storage here, so, as Kafka answers with remote storage off, the local log
//! is the whole log (-4 = the log start) and nothing is tiered (-5 = offset -1, epoch -1).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::error::{log_error_code, unknown_topic, NONE};
use super::{off_runtime, RequestContext};
use super::{on_each, Need};
use crate::acl::{Operation, ResourceType};
use crate::log::batch::LEADER_EPOCH;
use crate::state::Broker;
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// DESCRIBE on each topic.
pub(crate) fn needs(_broker: &Broker, req: &ListOffsetsRequest) -> Vec<Need> {
    on_each(
        Operation::Describe,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    )
}

/// Every partition TOPIC_AUTHORIZATION_FAILED.
pub(crate) fn denied(
    _version: i16,
    req: ListOffsetsRequest,
    _lacking: &Need,
) -> ListOffsetsResponse {
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // Lookups by timestamp read the log: off the runtime (see `off_runtime`).
    let layout = req.clone();
    let b = broker.clone();
    match off_runtime(move || answer(&b, version, req)).await {
        Some(resp) => resp,
        None => failed(version, layout),
    }
}

/// Every partition answered with KAFKA_STORAGE_ERROR.
fn failed(version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name;
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            if version >= 4 {
                pr.leader_epoch = LEADER_EPOCH;
            }
            pr.error_code = ResponseError::KafkaStorageError.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

fn answer(broker: &Broker, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        let topic = broker.topics.get(t.name.0.as_str());
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            if version >= 4 {
                pr.leader_epoch = LEADER_EPOCH;
            }
            match topic
                .as_ref()
                .and_then(|tp| tp.partition(p.partition_index))
            {
                None => pr.error_code = unknown_topic(),
                Some(log) => {
                    let found = match p.timestamp {
                        EARLIEST => Ok(Some((log.log_start_offset(), -1))),
                        LATEST => Ok(Some((log.high_watermark(), -1))),
                        MAX_TIMESTAMP => log.max_timestamp(),
                        EARLIEST_LOCAL if version >= 8 => Ok(Some((log.log_start_offset(), -1))),
                        LATEST_TIERED if version >= 9 => {
                            pr.error_code = NONE;
                            pr.leader_epoch = -1;
                            tr.partitions.push(pr);
                            continue;
                        }
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => {
                            pr.error_code = ResponseError::InvalidRequest.code();
                            tr.partitions.push(pr);
                            continue;
                        }
                    };
                    match found {
                        Ok(Some((offset, ts))) => {
                            pr.error_code = NONE;
                            pr.offset = offset;
                            pr.timestamp = ts;
                        }
                        Ok(None) => pr.error_code = NONE,
                        Err(e) => pr.error_code = log_error_code(&e),
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
