//! Hand-made admin requests (DescribeConfigs, IncrementalAlterConfigs, AlterConfigs,
//! CreatePartitions, DeleteRecords, DeleteGroups, OffsetDelete) for what the stock admin clients
//! hide or cannot send: exact error codes and messages for bad config names and values, unknown
//! topics and groups, legacy AlterConfigs resetting what it leaves out, and that every change
//! survives a restart.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    AlterConfigsResponse, ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DescribeConfigsRequest, DescribeConfigsResponse, GroupId,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetDeleteRequest,
    OffsetDeleteResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{batch_of, create, fetch, produce, produce_to, topic, Client};
use super::harness::BrokerProcess;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC: i16 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// One described config: (name, value, source, read-only).
type Described = (String, String, i8, bool);

/// DescribeConfigs v4 of one resource: (error code, message, configs).
fn describe(c: &mut Client, kind: i8, name: &str) -> (i16, String, Vec<Described>) {
    let mut r = DescribeConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = s(name);
    r.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
    let r = &resp.results[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        r.configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source,
                    c.read_only,
                )
            })
            .collect(),
    )
}

fn value_of(c: &mut Client, name: &str, key: &str) -> String {
    let (code, msg, configs) = describe(c, TOPIC, name);
    assert_eq!(code, 0, "{msg}");
    configs
        .into_iter()
        .find(|(n, ..)| n == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .1
}

/// IncrementalAlterConfigs v1 of one resource: (error code, message).
fn alter(
    c: &mut Client,
    kind: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = s(name);
    r.configs = ops
        .iter()
        .map(|(k, op, v)| {
            let mut a = incremental_alter_configs_request::AlterableConfig::default();
            a.name = s(k);
            a.config_operation = *op;
            a.value = v.map(s);
            a
        })
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    req.validate_only = validate_only;
    let resp: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn admin_apis_are_advertised() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    let resp: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let range = |key: ApiKey| {
        resp.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    for (key, want) in [
        (ApiKey::DescribeConfigs, (1, 4)),
        (ApiKey::AlterConfigs, (0, 2)),
        (ApiKey::IncrementalAlterConfigs, (0, 1)),
        (ApiKey::CreatePartitions, (0, 3)),
        (ApiKey::DeleteRecords, (0, 2)),
        (ApiKey::DescribeCluster, (0, 2)),
        (ApiKey::DescribeLogDirs, (1, 4)),
        (ApiKey::DeleteGroups, (0, 2)),
        (ApiKey::OffsetDelete, (0, 0)),
    ] {
        assert_eq!(range(key), Some(want), "{key:?}");
    }
}

/// Every advertised version of every admin API is answered with something the client's codec
/// decodes (a field the chosen version lacks makes the broker's encoder fail, which closes the
/// connection), with entries filled in, not only empty lists.
#[test]
fn every_advertised_admin_version_is_answered() {
    use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
    use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "v", 1, 1, &[]), 0);
    assert_eq!(produce(&mut c, "v", batch_of(2, 10)), (0, 0));
    for v in 1..=4 {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = TOPIC;
        r.resource_name = s("v");
        r.configuration_keys = None;
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![r];
        req.include_synonyms = true;
        req.include_documentation = v >= 3;
        let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, v, &req);
        let configs = &resp.results[0].configs;
        assert!(configs.len() >= 9, "v{v}: {configs:?}");
        assert_eq!(configs[0].synonyms.len(), 1, "v{v}");
        assert_eq!(configs[0].config_type != 0, v >= 3, "v{v}");
    }
    for v in 0..=2 {
        let resp: DescribeClusterResponse = c.call(
            ApiKey::DescribeCluster,
            v,
            &DescribeClusterRequest::default(),
        );
        assert_eq!((resp.error_code, resp.brokers.len()), (0, 1), "v{v}");
    }
    for v in 1..=4 {
        let mut req = DescribeLogDirsRequest::default();
        req.topics = None;
        let resp: DescribeLogDirsResponse = c.call(ApiKey::DescribeLogDirs, v, &req);
        let p = &resp.results[0].topics[0].partitions[0];
        assert!(p.partition_size > 0, "v{v}");
    }
    for v in 0..=3 {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic("v");
        t.count = 2;
        t.assignments = None;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.validate_only = true;
        let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, v, &req);
        assert_eq!(resp.results[0].error_code, 0, "v{v}");
    }
    for v in 0..=2 {
        let mut p = DeleteRecordsPartition::default();
        p.offset = 0;
        let mut t = DeleteRecordsTopic::default();
        t.name = topic("v");
        t.partitions = vec![p];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![t];
        let resp: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, v, &req);
        assert_eq!(resp.topics[0].partitions[0].error_code, 0, "v{v}");
    }
    for v in 0..=2 {
        let mut a = alter_configs_request::AlterableConfig::default();
        a.name = s("retention.ms");
        a.value = Some(s("1000"));
        let mut r = alter_configs_request::AlterConfigsResource::default();
        r.resource_type = TOPIC;
        r.resource_name = s("v");
        r.configs = vec![a];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![r];
        req.validate_only = true;
        let resp: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, v, &req);
        assert_eq!(resp.responses[0].error_code, 0, "v{v}");
    }
    for v in 0..=1 {
        let mut a = incremental_alter_configs_request::AlterableConfig::default();
        a.name = s("retention.ms");
        a.value = Some(s("1000"));
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = TOPIC;
        r.resource_name = s("v");
        r.configs = vec![a];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        req.validate_only = true;
        let resp: IncrementalAlterConfigsResponse =
            c.call(ApiKey::IncrementalAlterConfigs, v, &req);
        assert_eq!(resp.responses[0].error_code, 0, "v{v}");
    }
    for v in 0..=2 {
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(s("nobody"))];
        let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, v, &req);
        assert_eq!(resp.results[0].error_code, 69, "v{v}");
    }
}

#[test]
fn configs_errors_are_clear_and_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "cfg", 1, 1, &[]), 0);

    // Describe: unknown topic, unsupported resource types, another broker.
    let (code, msg, _) = describe(&mut c, TOPIC, "missing");
    assert_eq!(code, UNKNOWN_TOPIC, "{msg}");
    assert!(msg.contains("missing"), "{msg}");
    assert_eq!(describe(&mut c, 8, "1").0, INVALID_REQUEST, "BROKER_LOGGER");
    assert_eq!(describe(&mut c, BROKER, "7").0, INVALID_REQUEST);
    let (code, _, broker_configs) = describe(&mut c, BROKER, "1");
    assert_eq!(code, 0);
    assert!(broker_configs.iter().all(|(.., ro)| *ro));
    let (_, _, configs) = describe(&mut c, TOPIC, "cfg");
    let retention = configs.iter().find(|(n, ..)| n == "retention.ms").unwrap();
    assert_eq!(
        (retention.2, retention.3),
        (5, false),
        "DEFAULT_CONFIG, alterable"
    );

    // Bad names and values: INVALID_CONFIG with a message saying what is wrong.
    for (ops, needle) in [
        (vec![("no.such.config", 0, Some("1"))], "no.such.config"),
        (
            vec![("retention.ms", 0, Some("soon"))],
            "not a valid number",
        ),
        (vec![("retention.ms", 0, Some("0"))], "retention_ms"),
        (vec![("segment.bytes", 0, Some("100"))], "segment_bytes"),
        (vec![("retention.ms", 0, None)], "null"),
        (
            vec![("cleanup.policy", 0, Some("compact"))],
            "cleanup.policy",
        ),
        (vec![("cleanup.policy", 2, Some("delete"))], "list"),
        (vec![("flush.policy", 0, Some("never"))], "flush.policy"),
        (vec![("no.such.config", 1, None)], "no.such.config"),
    ] {
        let (code, msg) = alter(&mut c, TOPIC, "cfg", &ops, false);
        assert_eq!(code, INVALID_CONFIG, "{ops:?}: {msg}");
        assert!(msg.contains(needle), "{ops:?}: {msg:?} lacks {needle:?}");
    }
    assert_eq!(
        alter(
            &mut c,
            TOPIC,
            "cfg",
            &[("retention.ms", 9, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST,
        "unknown operation"
    );
    assert_eq!(
        alter(
            &mut c,
            TOPIC,
            "missing",
            &[("retention.ms", 0, Some("1"))],
            false
        )
        .0,
        UNKNOWN_TOPIC
    );
    let (code, msg) = alter(
        &mut c,
        BROKER,
        "1",
        &[("log.retention.ms", 0, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.contains("read-only"), "{msg}");
    // validate_only checks but changes nothing.
    assert_eq!(
        alter(
            &mut c,
            TOPIC,
            "cfg",
            &[("retention.ms", 0, Some("1000"))],
            true
        )
        .0,
        0
    );
    assert_eq!(value_of(&mut c, "cfg", "retention.ms"), "604800000");

    // SET, then legacy AlterConfigs: what it leaves out returns to the default.
    let ops = [
        ("retention.ms", 0, Some("1000")),
        ("max.message.bytes", 0, Some("2048")),
    ];
    assert_eq!(alter(&mut c, TOPIC, "cfg", &ops, false).0, 0);
    let (code, _) = produce(&mut c, "cfg", batch_of(1, 4096));
    assert_eq!(
        code, 10,
        "MESSAGE_TOO_LARGE: max.message.bytes is in force at once"
    );
    let mut r = alter_configs_request::AlterConfigsResource::default();
    r.resource_type = TOPIC;
    r.resource_name = s("cfg");
    let mut a = alter_configs_request::AlterableConfig::default();
    a.name = s("retention.ms");
    a.value = Some(s("5000"));
    r.configs = vec![a];
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![r];
    let resp: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(value_of(&mut c, "cfg", "retention.ms"), "5000");
    assert_eq!(value_of(&mut c, "cfg", "max.message.bytes"), "1048588");

    broker.restart();
    let mut c = Client::connect(&broker);
    assert_eq!(value_of(&mut c, "cfg", "retention.ms"), "5000", "persisted");
    let (_, _, configs) = describe(&mut c, TOPIC, "cfg");
    let retention = configs.iter().find(|(n, ..)| n == "retention.ms").unwrap();
    assert_eq!(retention.2, 1, "DYNAMIC_TOPIC_CONFIG");
}

fn metadata_partitions(c: &mut Client, name: &str) -> usize {
    let mut req = MetadataRequest::default();
    req.topics = None;
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    meta.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
        .map_or(0, |t| t.partitions.len())
}

fn create_partitions(c: &mut Client, name: &str, count: i32) -> (i16, String) {
    let mut t = CreatePartitionsTopic::default();
    t.name = topic(name);
    t.count = count;
    t.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req);
    let r = &resp.results[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn create_partitions_grows_topics_durably_and_refuses_shrinking() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "p", 2, 1, &[]), 0);
    for count in [2, 1] {
        let (code, msg) = create_partitions(&mut c, "p", count);
        assert_eq!(code, 37, "INVALID_PARTITIONS for {count}: {msg}");
        assert!(msg.contains("has 2 partitions"), "{msg}");
    }
    assert_eq!(create_partitions(&mut c, "missing", 3).0, UNKNOWN_TOPIC);
    assert_eq!(create_partitions(&mut c, "p", 5000).0, 37);
    assert_eq!(create_partitions(&mut c, "p", 5), (0, String::new()));
    assert_eq!(metadata_partitions(&mut c, "p"), 5);
    assert_eq!(produce_to(&mut c, "p", 4, batch_of(1, 10)).0, 0);
    broker.restart();
    let mut c = Client::connect(&broker);
    assert_eq!(metadata_partitions(&mut c, "p"), 5, "persisted");
    assert_eq!(produce_to(&mut c, "p", 4, batch_of(1, 10)).1, 1);
}

fn delete_records(c: &mut Client, name: &str, partition: i32, offset: i64) -> (i16, i64) {
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = topic(name);
    t.partitions = vec![p];
    let mut req = DeleteRecordsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let resp: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req);
    let r = &resp.topics[0].partitions[0];
    (r.error_code, r.low_watermark)
}

fn earliest(c: &mut Client, name: &str) -> i64 {
    offset_for(c, name, -2)
}

/// ListOffsets v7 of partition 0 for `timestamp` (-2: earliest).
fn offset_for(c: &mut Client, name: &str, timestamp: i64) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    p.current_leader_epoch = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic(name);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.topics = vec![t];
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn delete_records_moves_the_log_start_durably() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so whole segments fall below the new start and are deleted.
    let mut broker = BrokerProcess::start(dir.path(), &["--segment-bytes", "1024"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "d", 1, 1, &[]), 0);
    for i in 0..20 {
        assert_eq!(produce(&mut c, "d", batch_of(1, 200)), (0, i));
    }
    let first_segment = dir.path().join("topics/d/0/00000000000000000000.log");
    assert!(first_segment.exists());
    assert_eq!(delete_records(&mut c, "d", 0, 21).0, 1, "past the end");
    assert_eq!(delete_records(&mut c, "d", 1, 1).0, UNKNOWN_TOPIC);
    assert_eq!(delete_records(&mut c, "missing", 0, 1).0, UNKNOWN_TOPIC);
    // 13 is inside a segment (3 batches of ~270 bytes each): the start is then not a segment
    // base, so only the checkpoint can bring it back after a restart.
    assert_eq!(delete_records(&mut c, "d", 0, 13), (0, 13));
    assert_eq!(
        delete_records(&mut c, "d", 0, 5),
        (0, 13),
        "never moves back"
    );
    assert!(
        !first_segment.exists(),
        "segments below the start are deleted"
    );
    assert_eq!(earliest(&mut c, "d"), 13);
    assert_eq!(
        offset_for(&mut c, "d", 0),
        13,
        "time lookups never answer below it"
    );
    assert_eq!(
        fetch(&mut c, "d", 0, 12, 1 << 20).0,
        1,
        "OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(fetch(&mut c, "d", 0, 13, 1 << 20).0, 0);

    broker.crash_and_restart();
    let mut c = Client::connect(&broker);
    assert_eq!(earliest(&mut c, "d"), 13, "survives a crash");
    assert_eq!(fetch(&mut c, "d", 0, 12, 1 << 20).0, 1);
    assert_eq!(
        delete_records(&mut c, "d", 0, -1),
        (0, 20),
        "-1: the high watermark"
    );
    assert_eq!(produce(&mut c, "d", batch_of(1, 10)), (0, 20));
}

/// OffsetCommit v8 of an assign()-mode consumer (generation -1, no member id).
fn commit(c: &mut Client, group: &str, name: &str, partition: i32, offset: i64) {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = partition;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic(name);
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = -1;
    req.member_id = s("");
    req.topics = vec![t];
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
}

/// OffsetFetch v8 of one group: the committed offset of each partition of `name` (-1: none).
fn committed(c: &mut Client, group: &str, name: &str, partitions: &[i32]) -> Vec<i64> {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
    let mut t = OffsetFetchRequestTopics::default();
    t.name = topic(name);
    t.partition_indexes = partitions.to_vec();
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s(group));
    g.topics = Some(vec![t]);
    let mut req = OffsetFetchRequest::default();
    req.groups = vec![g];
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req);
    resp.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect()
}

#[test]
fn deleted_groups_and_offsets_stay_deleted_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "t", 2, 1, &[]), 0);
    commit(&mut c, "gone", "t", 0, 5);
    commit(&mut c, "partly", "t", 0, 7);
    commit(&mut c, "partly", "t", 1, 8);

    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![GroupId(s("gone"))];
    let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &req);
    assert_eq!(resp.results[0].error_code, 0);
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = topic("t");
    t.partitions = vec![OffsetDeleteRequestPartition::default()]; // partition 0
    let mut req = OffsetDeleteRequest::default();
    req.group_id = GroupId(s("partly"));
    req.topics = vec![t];
    let resp: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req);
    assert_eq!(
        (resp.error_code, resp.topics[0].partitions[0].error_code),
        (0, 0)
    );
    assert_eq!(committed(&mut c, "gone", "t", &[0]), vec![-1]);
    assert_eq!(committed(&mut c, "partly", "t", &[0, 1]), vec![-1, 8]);

    broker.crash_and_restart();
    let mut c = Client::connect(&broker);
    assert_eq!(
        committed(&mut c, "gone", "t", &[0]),
        vec![-1],
        "after a crash"
    );
    assert_eq!(committed(&mut c, "partly", "t", &[0, 1]), vec![-1, 8]);
}

#[test]
fn delete_groups_and_offsets_of_unknown_groups() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![GroupId(s("nobody")), GroupId(s(""))];
    let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &req);
    let codes: Vec<i16> = resp.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![69, 24], "GROUP_ID_NOT_FOUND, INVALID_GROUP_ID");

    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = 0;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = topic("x");
    t.partitions = vec![p];
    let mut req = OffsetDeleteRequest::default();
    req.group_id = GroupId(s("nobody"));
    req.topics = vec![t];
    let resp: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req);
    assert_eq!(resp.error_code, 69, "GROUP_ID_NOT_FOUND");
}

/// The broker's caps hold for changes to existing topics too: CreatePartitions past
/// `--max-partitions` is POLICY_VIOLATION and adds nothing; a client altering a topic's settings
/// is held to the bounds of a create (a segment per append is refused).
#[test]
fn changes_to_topics_keep_to_the_broker_limits() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--max-partitions", "8"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "t", 4, 1, &[]), 0);
    let (code, msg) = create_partitions(&mut c, "t", 9);
    assert_eq!(code, 44, "POLICY_VIOLATION: {msg}");
    assert!(msg.contains("limit of 8"), "{msg}");
    assert_eq!(metadata_partitions(&mut c, "t"), 4);
    assert_eq!(create_partitions(&mut c, "t", 8).0, 0);
    assert_eq!(metadata_partitions(&mut c, "t"), 8);

    const SET: i8 = 0;
    let (code, msg) = alter(&mut c, TOPIC, "t", &[("segment.ms", SET, Some("1"))], false);
    assert_eq!(code, INVALID_CONFIG, "{msg}");
    assert!(msg.contains("segment.ms 1 is below"), "{msg}");
    assert_eq!(value_of(&mut c, "t", "segment.ms"), "604800000");
    let (code, msg) = alter(
        &mut c,
        TOPIC,
        "t",
        &[("segment.ms", SET, Some("60000"))],
        false,
    );
    assert_eq!(code, 0, "{msg}");
}
