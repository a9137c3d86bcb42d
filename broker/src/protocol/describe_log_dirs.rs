//! DescribeLogDirs: the one log directory (the data directory's `topics/`) with the size of
//! every partition asked for (null: all), as `kafka-log-dirs` and admin clients show them.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::NONE;
use super::RequestContext;
use super::{on_cluster, Need};
use crate::acl::Operation;
use crate::state::Broker;
use crate::topics::Topic;
/// DESCRIBE on the cluster.
pub(crate) fn needs(_broker: &Broker, _req: &DescribeLogDirsRequest) -> Vec<Need> {
    on_cluster(Operation::Describe)
}

/// CLUSTER_AUTHORIZATION_FAILED (v3+; before, an empty answer, as Kafka gives).
pub(crate) fn denied(
    _version: i16,
    _req: DescribeLogDirsRequest,
    _lacking: &Need,
) -> DescribeLogDirsResponse {
    let mut resp = DescribeLogDirsResponse::default();
    resp.error_code = kafka_protocol::ResponseError::ClusterAuthorizationFailed.code();
    resp
}

pub(crate) fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    _version: i16,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let describe = |t: &Topic, only: Option<&[i32]>| {
        let mut dt = DescribeLogDirsTopic::default();
        dt.name = TopicName(StrBytes::from_string(t.name.clone()));
        dt.partitions = t
            .partitions()
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o.contains(&(*i as i32))))
            .map(|(i, log)| {
                let mut p = DescribeLogDirsPartition::default();
                p.partition_index = i as i32;
                // Sizes are held in memory by the log: no file system calls here.
                p.partition_size = log.size_bytes() as i64;
                p.offset_lag = 0;
                p.is_future_key = false;
                p
            })
            .collect();
        dt
    };
    let topics: Vec<DescribeLogDirsTopic> = match &req.topics {
        None => broker
            .topics
            .list()
            .iter()
            .map(|t| describe(t, None))
            .collect(),
        // Partitions of unknown topics are left out, as Kafka does.
        Some(asked) => asked
            .iter()
            .filter_map(|a| {
                let t = broker.topics.get(a.topic.0.as_str())?;
                Some(describe(&t, Some(&a.partitions)))
            })
            .collect(),
    };
    let mut dir = DescribeLogDirsResult::default();
    dir.error_code = NONE;
    dir.log_dir = StrBytes::from_string(broker.data_dir().join("topics").display().to_string());
    dir.topics = topics;
    // v4+: -1 is Kafka's "not known" (the broker does not stat the file system here).
    dir.total_bytes = -1;
    dir.usable_bytes = -1;
    let mut resp = DescribeLogDirsResponse::default();
    resp.error_code = NONE;
    resp.results = vec![dir];
    resp
}
