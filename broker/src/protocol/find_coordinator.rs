//! FindCoordinator: this broker coordinates every group. v0-3 answer with top-level fields,
//! v4+ with one `coordinators[]` entry per requested key. Transaction coordinators do not exist:
//! a lookup for one gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) with the message "transactions
//! are not supported by this broker", the error Produce gives a transactional batch. It is the
//! answer clients treat as final: Kafka 4.1's Java producer fails `initTransactions()` at once
//! (tested, `wire/kafka_tools.rs`), and librdkafka's transaction manager raises a fatal error
//! that carries the message (`rdkafka_txnmgr.c`, read, not run here). COORDINATOR_NOT_AVAILABLE,
//! which it used to be, is retriable: the Java producer re-sent the lookup until `max.block.ms`
//! (60 s by default) ran out, and librdkafka re-queries every 500 ms.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Need;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::state::Broker;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;
/// The error message (v1+) beside TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the code alone would
/// suggest missing ACLs.
const NO_TRANSACTIONS: &str = "transactions are not supported by this broker";
/// DESCRIBE on each group asked for (transactional ids are refused in `handle` anyway).
pub(crate) fn needs(_broker: &Broker, req: &FindCoordinatorRequest) -> Vec<Need> {
    if req.key_type != 0 {
        return Vec::new();
    }
    let keys: Vec<&str> = if req.coordinator_keys.is_empty() {
        vec![req.key.as_str()]
    } else {
        req.coordinator_keys.iter().map(|k| k.as_str()).collect()
    };
    keys.into_iter()
        .map(|k| vec![(Operation::Describe, ResourceType::Group, k.to_string())])
        .collect()
}

/// GROUP_AUTHORIZATION_FAILED, at the top (v0-3) and for each key (v4+).
pub(crate) fn denied(
    _version: i16,
    req: FindCoordinatorRequest,
    _lacking: &Need,
) -> FindCoordinatorResponse {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    let mut resp = FindCoordinatorResponse::default();
    resp.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
    resp.node_id = kafka_protocol::messages::BrokerId(-1);
    resp.port = -1;
    for key in req.coordinator_keys {
        let mut c = Coordinator::default();
        c.key = key;
        c.node_id = kafka_protocol::messages::BrokerId(-1);
        c.port = -1;
        c.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
        resp.coordinators.push(c);
    }
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = BrokerId(broker.config.node_id);
    let host = StrBytes::from_string(ctx.listener.host.clone());
    let port = i32::from(ctx.listener.port);
    let (error, message) = match req.key_type {
        GROUP_KEY => (0, None),
        TRANSACTION_KEY => (
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            Some(StrBytes::from_static_str(NO_TRANSACTIONS)),
        ),
        _ => (ResponseError::CoordinatorNotAvailable.code(), None),
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key;
                c.error_code = error;
                if error == 0 {
                    c.node_id = node;
                    c.host = host.clone();
                    c.port = port;
                } else {
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                    c.error_message = message.clone();
                }
                c
            })
            .collect();
    } else {
        resp.error_code = error;
        if error == 0 {
            resp.node_id = node;
            resp.host = host;
            resp.port = port;
        } else {
            resp.node_id = BrokerId(-1);
            resp.port = -1;
            if version >= 1 {
                resp.error_message = message;
            }
        }
    }
    resp
}
