//! Fetch: raw stored batches from each requested partition, with the long poll: if fewer than
//! `min_bytes` are available, wait for new data on any requested partition until `max_wait_ms`.
//! Every requested partition is listed in the answer (kafka-python drops answers that miss one),
//! records are never null (librdkafka 2.0.2 rejects that), and the batch containing the fetch
//! offset comes first, whole.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::error::{log_error_code, unknown_topic, NONE};
use super::RequestContext;
use crate::state::Broker;

/// Longest wait honoured, whatever the client asks (Kafka clients use 500 ms by default).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub(crate) async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: FetchRequest,
) -> FetchResponse {
    if version >= 7 && req.session_id != 0 {
        let mut resp = FetchResponse::default();
        resp.error_code = ResponseError::FetchSessionIdNotFound.code();
        return resp;
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    loop {
        // Subscribe before reading, so an append between the read and the wait is not missed.
        let mut watchers: Vec<_> = req
            .topics
            .iter()
            .flat_map(|t| {
                let topic = broker.topics.get(t.topic.0.as_str());
                t.partitions.iter().filter_map(move |p| {
                    topic
                        .as_ref()?
                        .partition(p.partition)
                        .map(|l| l.watch_high_watermark())
                })
            })
            .collect();
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (resp, bytes, errors) = build(broker, &req);
        if bytes >= req.min_bytes.max(0) as usize
            || errors
            || watchers.is_empty()
            || Instant::now() >= deadline
        {
            return count_out(broker, resp);
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            // Deadline: answer with what there is now (possibly data that arrived meanwhile).
            return count_out(broker, build(broker, &req).0);
        }
    }
}

fn count_out(broker: &Broker, resp: FetchResponse) -> FetchResponse {
    for t in &resp.responses {
        for p in &t.partitions {
            if let Some(records) = &p.records {
                broker.metrics.record_fetch(t.topic.0.as_str(), records);
            }
        }
    }
    resp
}

/// One pass over the requested partitions: (response, record bytes, any partition errored).
fn build(broker: &Broker, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut resp = FetchResponse::default();
    let mut remaining = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    for t in &req.topics {
        let mut tr = FetchableTopicResponse::default();
        tr.topic = t.topic.clone();
        let topic = broker.topics.get(t.topic.0.as_str());
        for p in &t.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = p.partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            pd.preferred_read_replica = kafka_protocol::messages::BrokerId(-1);
            pd.aborted_transactions = Some(Vec::new());
            pd.records = Some(Bytes::new());
            match topic.as_ref().and_then(|tp| tp.partition(p.partition)) {
                None => {
                    pd.error_code = unknown_topic();
                    errors = true;
                }
                Some(log) => {
                    // KIP-74: the first partition with data gets at least one whole batch
                    // even past the limits; after the request's budget is spent, only headers.
                    let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
                    if limit == 0 && total > 0 {
                        pd.error_code = NONE;
                        pd.high_watermark = log.high_watermark();
                        pd.last_stable_offset = pd.high_watermark;
                        pd.log_start_offset = log.log_start_offset();
                        tr.partitions.push(pd);
                        continue;
                    }
                    let result = log.read(p.fetch_offset, limit.max(1));
                    match result {
                        Ok(r) => {
                            pd.error_code = NONE;
                            pd.high_watermark = r.high_watermark;
                            pd.last_stable_offset = r.high_watermark;
                            pd.log_start_offset = r.log_start_offset;
                            total += r.bytes.len();
                            remaining = remaining.saturating_sub(r.bytes.len());
                            pd.records = Some(Bytes::from(r.bytes));
                        }
                        Err(e) => {
                            pd.error_code = log_error_code(&e);
                            pd.high_watermark = log.high_watermark();
                            pd.last_stable_offset = pd.high_watermark;
                            pd.log_start_offset = log.log_start_offset();
                            errors = true;
                        }
                    }
                }
            }
            tr.partitions.push(pd);
        }
        resp.responses.push(tr);
    }
    (resp, total, errors)
}
