//! InitProducerId: a fresh producer id (epoch 0) for an idempotent producer, or, when a v3+
//! client sends its current id and epoch after an error (KIP-360), the same id with the epoch
//! bumped. Transactions are not supported, so a transactional id is refused, never faked, with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53): the final answer FindCoordinator and Produce give
//! transactions too (see protocol/find_coordinator.rs); a retriable code would keep a client
//! asking until its timeout.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::{off_runtime, RequestContext};
use crate::acl::{Operation, ResourceType, CLUSTER};
use crate::state::Broker;
use std::sync::Arc;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.is_some() {
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster, or WRITE on some topic
    // (KIP-679, Kafka 3.0+).
    if !ctx.allows(Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER)
        && !ctx.allows_some(Operation::Write, ResourceType::Topic)
    {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    if version >= 3
        && req.producer_id.0 >= 0
        && req.producer_epoch >= 0
        && req.producer_epoch < i16::MAX - 1
    {
        resp.producer_id = req.producer_id;
        resp.producer_epoch = req.producer_epoch + 1;
        return resp;
    }
    // A new block of ids is persisted with an fsync: off the runtime (see `off_runtime`).
    let b = broker.clone();
    let next = off_runtime(move || b.producer_ids.next()).await;
    match next.unwrap_or(Err(crate::producer_ids::ProducerIdError::Exhausted)) {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            resp.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    resp
}
