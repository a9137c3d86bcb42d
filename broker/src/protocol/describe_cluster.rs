//! DescribeCluster: the same picture as Metadata's broker part (this one node, its advertised
//! address, the cluster id, itself as controller), which newer admin clients ask for instead.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::error::NONE;
use super::RequestContext;
use super::{on_cluster, Need};
use crate::acl::Operation;
use crate::state::Broker;
/// DESCRIBE on the cluster.
pub(crate) fn needs(_broker: &Broker, _req: &DescribeClusterRequest) -> Vec<Need> {
    on_cluster(Operation::Describe)
}

pub(crate) fn denied(
    _version: i16,
    _req: DescribeClusterRequest,
    _lacking: &Need,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.error_code = kafka_protocol::ResponseError::ClusterAuthorizationFailed.code();
    resp.controller_id = BrokerId(-1);
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    _version: i16,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(broker.config.node_id);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = node;
    b.host = StrBytes::from_string(ctx.listener.host.clone());
    b.port = i32::from(ctx.listener.port);
    b.rack = None;
    let mut resp = DescribeClusterResponse::default();
    resp.error_code = NONE;
    // Brokers (1), the only endpoint type before v1 and the one v1 clients ask for here.
    resp.endpoint_type = 1;
    resp.cluster_id = StrBytes::from_string(broker.config.cluster_id.clone());
    resp.controller_id = node;
    resp.brokers = vec![b];
    // "Not provided", as in Metadata: there are no ACLs to report operations from.
    resp.cluster_authorized_operations = i32::MIN;
    resp
}
