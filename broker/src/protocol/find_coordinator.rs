//! FindCoordinator: this broker coordinates every group. v0-3 answer with top-level fields,
//! v4+ with one `coordinators[]` entry per requested key. Transaction coordinators do not exist.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::state::Broker;

const GROUP_KEY: i8 = 0;

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = BrokerId(broker.config.node_id);
    let host = StrBytes::from_string(broker.config.advertised_host.clone());
    let port = broker.config.advertised_port as i32;
    let error = if req.key_type == GROUP_KEY {
        0
    } else {
        ResponseError::CoordinatorNotAvailable.code()
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
        }
    }
    resp
}
