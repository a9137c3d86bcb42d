//! Produce: append each partition's record batch, then answer once every append is durable under
//! the partition's flush policy (acks 1 and -1 are the same on a single node). acks=0 gets no
//! answer at all (the connection layer drops the response).
//!
//! The two steps are apart ([`append`], then [`Appended::durable`]) so a connection can read
//! and append its next Produce while this one waits for its fsync (`server/connection.rs`).

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::error::{log_error_code, unknown_topic, NONE};
use super::{off_runtime, RequestContext};
use crate::acl::Operation;
use crate::log::{batch, PartitionLog};
use crate::state::Broker;
use std::sync::Arc;

/// `None` for acks=0: the client expects no answer.
pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let appended = append(broker, ctx, req).await;
    if acks == 0 {
        return None;
    }
    Some(appended.durable().await)
}

/// A request whose batches are in their logs (or refused), not yet known durable.
pub(crate) struct Appended {
    resp: ProduceResponse,
    /// Per appended partition: where it sits in `resp`, its log and the offset after its batch.
    waits: Vec<(usize, usize, Arc<PartitionLog>, i64)>,
}

impl Appended {
    /// The answer, once every append is durable under its partition's flush policy; an append
    /// that cannot be made durable is answered with the log's error and no offset.
    pub(crate) async fn durable(self) -> ProduceResponse {
        let Appended { mut resp, waits } = self;
        for (ti, pi, log, end) in waits {
            if let Err(e) = log.wait_durable(end).await {
                tracing::error!(error = %e, "append not durable");
                let pr = &mut resp.responses[ti].partition_responses[pi];
                pr.error_code = log_error_code(&e);
                pr.base_offset = -1;
            }
        }
        resp
    }
}

/// One partition's batch, to append off the runtime.
struct Append {
    topic: usize,
    partition: usize,
    log: Arc<PartitionLog>,
    bytes: Vec<u8>,
}

/// Appends each partition's batch, in the request's order; a topic the caller may not WRITE
/// gets TOPIC_AUTHORIZATION_FAILED for each of its partitions and nothing appended.
pub(crate) async fn append(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ProduceRequest,
) -> Appended {
    let refuse_all = if req.transactional_id.is_some() {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if !matches!(req.acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks.code())
    } else {
        None
    };
    let mut resp = ProduceResponse::default();
    let mut appends = Vec::new();
    for (ti, topic_data) in req.topic_data.into_iter().enumerate() {
        let mut tr = TopicProduceResponse::default();
        tr.name = topic_data.name.clone();
        let allowed = ctx.on_topic(Operation::Write, topic_data.name.0.as_str());
        let topic = broker.topics.get(topic_data.name.0.as_str());
        for (pi, part) in topic_data.partition_data.into_iter().enumerate() {
            let mut pr = PartitionProduceResponse::default();
            pr.index = part.index;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            let log = topic
                .as_ref()
                .and_then(|t| t.partition(part.index))
                .cloned();
            match (refuse_all, log) {
                (Some(code), _) => pr.error_code = code,
                (None, _) if !allowed => {
                    pr.error_code = ResponseError::TopicAuthorizationFailed.code()
                }
                (None, None) => pr.error_code = unknown_topic(),
                (None, Some(log)) => appends.push(Append {
                    topic: ti,
                    partition: pi,
                    log,
                    bytes: part.records.map(|b| b.to_vec()).unwrap_or_default(),
                }),
            }
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    // An append copies into the page cache (~2 us for 1 KiB here) and is done in place; one
    // that starts a new segment creates files, which can wait on the filesystem's journal, so
    // then the request's appends go to the blocking pool in one hop (see `off_runtime` for the
    // measurements behind the split).
    let append = |appends: Vec<Append>| {
        appends
            .into_iter()
            .map(|mut a| {
                let result = append_one(&a.log, &mut a.bytes);
                (a.topic, a.partition, a.log, result)
            })
            .collect::<Vec<_>>()
    };
    let rolls = appends.iter().any(|a| a.log.append_rolls(a.bytes.len()));
    let results = if rolls {
        off_runtime(move || append(appends))
            .await
            .unwrap_or_default()
    } else {
        append(appends)
    };
    let mut waits: Vec<(usize, usize, Arc<PartitionLog>, i64)> = Vec::new();
    for (ti, pi, log, result) in results {
        let tr = &mut resp.responses[ti];
        let name = tr.name.0.clone();
        let pr = &mut tr.partition_responses[pi];
        match result {
            Ok(info) => {
                pr.error_code = NONE;
                pr.base_offset = info.base_offset;
                pr.log_append_time_ms = info.log_append_time_ms;
                pr.log_start_offset = info.log_start_offset;
                if !info.duplicate {
                    broker.metrics.record_append(
                        name.as_str(),
                        info.bytes,
                        info.last_offset - info.base_offset + 1,
                    );
                }
                waits.push((ti, pi, log, info.last_offset + 1));
            }
            Err((code, msg)) => {
                tracing::debug!(topic = %name.as_str(), partition = pr.index, error = %msg, "produce refused");
                pr.error_code = code;
                pr.error_message = Some(msg.into());
            }
        }
    }
    // Partitions whose append never ran (the blocking work failed) are not acknowledged.
    for tr in &mut resp.responses {
        for pr in &mut tr.partition_responses {
            if pr.error_code == NONE && pr.base_offset < 0 {
                pr.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    Appended { resp, waits }
}

/// Produce v3+ carries exactly one batch per partition (Kafka refuses more with INVALID_RECORD).
fn append_one(
    log: &PartitionLog,
    bytes: &mut [u8],
) -> Result<crate::log::AppendInfo, (i16, String)> {
    // Only the framing here; the log validates the batch itself (CRC included) once.
    if let Ok(h) = batch::BatchHeader::parse(bytes) {
        if h.total_len() < bytes.len() {
            return Err((
                ResponseError::InvalidRecord.code(),
                "a produce request must carry exactly one record batch per partition".into(),
            ));
        }
    }
    log.append(bytes)
        .map_err(|e| (log_error_code(&e), e.to_string()))
}
