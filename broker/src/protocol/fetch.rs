//! Fetch: raw stored batches from each requested partition, with the long poll: if fewer than
//! `min_bytes` are available, wait for new data on any requested partition until `max_wait_ms`.
//! Every requested partition is listed in the answer (kafka-python drops answers that miss one),
//! records are never null (librdkafka 2.0.2 rejects that), and the batch containing the fetch
//! offset comes first, whole.
//!
//! Sizes are the broker's to bound: the client's `max_bytes` (<= 0 means "no limit") and
//! `partition_max_bytes` are capped by `--fetch-max-bytes` and `--fetch-partition-max-bytes`,
//! and nothing is read beyond what the answer can carry (plus the rest of the first batch,
//! KIP-74). A partition listed more than once is refused (INVALID_REQUEST on every listing) and
//! not read at all, so a request cannot multiply what one partition costs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::error::{log_error_code, unknown_topic, NONE};
use super::{off_runtime, RequestContext};
use crate::acl::Operation;
use crate::state::Broker;

/// Longest wait honoured, whatever the client asks (Kafka clients use 500 ms by default).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
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
    // Partitions answered with an error and never read: those listed twice, and those of
    // topics the caller may not READ.
    let mut refused: Vec<(String, i32, i16)> = listed_more_than_once(&req)
        .into_iter()
        .map(|(t, p)| (t.to_string(), p, ResponseError::InvalidRequest.code()))
        .collect();
    for t in &req.topics {
        if !ctx.on_topic(Operation::Read, t.topic.0.as_str()) {
            refused.extend(t.partitions.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    p.partition,
                    ResponseError::TopicAuthorizationFailed.code(),
                )
            }));
        }
    }
    let repeated = Arc::new(refused);
    let req = Arc::new(req);
    loop {
        // Subscribe before reading, so an append between the read and the wait is not missed.
        let mut watchers: Vec<_> = req
            .topics
            .iter()
            .flat_map(|t| {
                let topic = broker.topics.get(t.topic.0.as_str());
                let repeated = &repeated;
                t.partitions.iter().filter_map(move |p| {
                    if is_repeated(repeated, t.topic.0.as_str(), p.partition) {
                        return None;
                    }
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
        let (resp, bytes, errors) = read_pass(broker, &req, &repeated).await;
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
            return count_out(broker, read_pass(broker, &req, &repeated).await.0);
        }
    }
}

/// The error a refused partition is answered with, if it is one.
fn refused_code(refused: &[(String, i32, i16)], topic: &str, partition: i32) -> Option<i16> {
    refused
        .iter()
        .find(|(t, p, _)| t == topic && *p == partition)
        .map(|(_, _, code)| *code)
}

fn is_repeated(refused: &[(String, i32, i16)], topic: &str, partition: i32) -> bool {
    refused_code(refused, topic, partition).is_some()
}

/// One [`build`] pass: in place when everything it reads is in the page cache (the usual case:
/// consumers read what was just written), else again on the blocking pool, where waiting for
/// the disk stalls no other connection (see `off_runtime`).
async fn read_pass(
    broker: &Arc<Broker>,
    req: &Arc<FetchRequest>,
    repeated: &Arc<Vec<(String, i32, i16)>>,
) -> (FetchResponse, usize, bool) {
    if let Some(done) = build(broker, req, repeated, true) {
        return done;
    }
    let (b, r, rep) = (broker.clone(), req.clone(), repeated.clone());
    off_runtime(move || build(&b, &r, &rep, false))
        .await
        .flatten()
        .unwrap_or_else(|| {
            let mut resp = FetchResponse::default();
            resp.error_code = ResponseError::UnknownServerError.code();
            (resp, 0, true)
        })
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

/// The (topic, partition) pairs a request lists more than once.
fn listed_more_than_once(req: &FetchRequest) -> Vec<(&str, i32)> {
    let mut seen: HashMap<(&str, i32), usize> = HashMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            *seen.entry((t.topic.0.as_str(), p.partition)).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(k, _)| k)
        .collect()
}

/// One pass over the requested partitions: (response, record bytes, any partition errored).
/// `None` when `cached_only` and some partition's data is not in the page cache.
fn build(
    broker: &Broker,
    req: &FetchRequest,
    repeated: &[(String, i32, i16)],
    cached_only: bool,
) -> Option<(FetchResponse, usize, bool)> {
    let mut resp = FetchResponse::default();
    let cap = broker.config.fetch_max_bytes;
    let mut remaining = match usize::try_from(req.max_bytes) {
        Ok(asked) if asked > 0 => asked.min(cap),
        _ => cap,
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
            if let Some(code) = refused_code(repeated, t.topic.0.as_str(), p.partition) {
                pd.error_code = code;
                errors = true;
                tr.partitions.push(pd);
                continue;
            }
            match topic.as_ref().and_then(|tp| tp.partition(p.partition)) {
                None => {
                    pd.error_code = unknown_topic();
                    errors = true;
                }
                Some(log) => {
                    // KIP-74: the first partition with data gets at least one whole batch
                    // even past the limits; after the request's budget is spent, only headers.
                    let limit = usize::try_from(p.partition_max_bytes)
                        .unwrap_or(0)
                        .min(broker.config.fetch_partition_max_bytes)
                        .min(remaining);
                    if limit == 0 && total > 0 {
                        pd.error_code = NONE;
                        pd.high_watermark = log.high_watermark();
                        pd.last_stable_offset = pd.high_watermark;
                        pd.log_start_offset = log.log_start_offset();
                        tr.partitions.push(pd);
                        continue;
                    }
                    // KIP-74: only the first partition with data may go past the limits, by
                    // the rest of its first batch; the others get whole batches that fit.
                    let (at_least_one, limit) = if total == 0 {
                        (true, limit.max(1))
                    } else {
                        (false, limit)
                    };
                    let result = if cached_only {
                        match log.read_cached(p.fetch_offset, limit, at_least_one) {
                            Ok(Some(r)) => Ok(r),
                            Ok(None) => return None,
                            Err(e) => Err(e),
                        }
                    } else if at_least_one {
                        log.read(p.fetch_offset, limit)
                    } else {
                        log.read_at_most(p.fetch_offset, limit)
                    };
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
    Some((resp, total, errors))
}
