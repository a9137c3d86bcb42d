//! Hand-made requests over TCP to the real broker binary, for answers that stock clients do not
//! let a test provoke: corrupt batches, CreateTopics errors, auto-create switched off.

use super::client::{create, good_batch, produce, topic, Client};
use super::harness::BrokerProcess;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, MetadataRequest, MetadataResponse,
    ProducerId,
};

#[test]
fn create_topics_validates_and_produce_refuses_bad_batches() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);

    assert_eq!(create(&mut c, "t", 2, 1, &[("retention.ms", "60000")]), 0);
    assert_eq!(create(&mut c, "t", 2, 1, &[]), 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(create(&mut c, "u", 0, 1, &[]), 37, "INVALID_PARTITIONS");
    assert_eq!(
        create(&mut c, "u", 1, 3, &[]),
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    assert_eq!(
        create(&mut c, "u", 1, 1, &[("retention.ms", "soon")]),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create(&mut c, "u", 1, 1, &[("no.such", "1")]),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create(&mut c, "bad/name", 1, 1, &[]),
        17,
        "INVALID_TOPIC_EXCEPTION"
    );

    assert_eq!(produce(&mut c, "t", good_batch()), (0, 0));
    let mut corrupt = good_batch();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(produce(&mut c, "t", corrupt).0, 2, "CORRUPT_MESSAGE");
    let mut magic1 = good_batch();
    magic1[16] = 1;
    assert_eq!(produce(&mut c, "t", magic1).0, 87, "INVALID_RECORD");
    let mut two = good_batch();
    two.extend_from_slice(&good_batch());
    assert_eq!(
        produce(&mut c, "t", two).0,
        87,
        "INVALID_RECORD: one batch per partition"
    );
    assert_eq!(
        produce(&mut c, "nope", good_batch()).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    // Nothing refused was stored: the next good batch gets offset 2.
    assert_eq!(produce(&mut c, "t", good_batch()), (0, 2));
}

#[test]
fn metadata_does_not_create_topics_when_auto_create_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut c = Client::connect(&broker);
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic("ghost"));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    assert_eq!(resp.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(resp.topics[0].partitions.is_empty());
    // Null topics = all topics.
    let mut all = MetadataRequest::default();
    all.topics = None;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &all);
    assert!(resp.topics.is_empty(), "ghost must not have been created");
    assert_eq!(resp.brokers[0].port as u16, broker.port);
}

fn init_producer_id(c: &mut Client, version: i16, id: i64, epoch: i16) -> (i16, i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(id);
    req.producer_epoch = epoch;
    let resp: InitProducerIdResponse = c.call(ApiKey::InitProducerId, version, &req);
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = broker::log::BatchBuilder::new().idempotent(pid, epoch, seq);
    for i in 0..n {
        b.push_value(1, format!("m{i}").as_bytes());
    }
    b.build()
}

#[test]
fn idempotent_producer_retries_are_not_appended_twice_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "idem", 1, 1, &[]), 0);

    let (err, pid, epoch) = init_producer_id(&mut c, 4, -1, -1);
    assert_eq!((err, epoch), (0, 0));
    let (_, pid2, _) = init_producer_id(&mut c, 4, -1, -1);
    assert_ne!(pid, pid2, "every producer gets its own id");

    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // A retry of the first batch: success with its original offset, nothing appended.
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    // A gap in the sequence.
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 9, 1)).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    broker.restart();
    let mut c = Client::connect(&broker);
    // The producer state came back from the log: the retry is still recognised...
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // ...the next batch continues the sequence...
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 5, 1)),
        (0, 5)
    );
    // ...and ids are never reused after a restart.
    let (_, pid3, _) = init_producer_id(&mut c, 4, -1, -1);
    assert!(pid3 > pid2);

    // KIP-360 epoch bump: same id, epoch + 1; the old epoch is then fenced.
    let (err, same, bumped) = init_producer_id(&mut c, 4, pid, 0);
    assert_eq!((err, same, bumped), (0, pid, 1));
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 1, 0, 1)),
        (0, 6)
    );
    assert_eq!(
        produce(&mut c, "idem", idempotent_batch(pid, 0, 6, 1)).0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
}

#[test]
fn delete_topics_by_name_and_id_and_offset_for_leader_epoch() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{
        DeleteTopicsRequest, DeleteTopicsResponse, OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse,
    };

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "a", 1, 1, &[]), 0);
    assert_eq!(create(&mut c, "b", 1, 1, &[]), 0);
    assert_eq!(produce(&mut c, "a", good_batch()), (0, 0));

    let epoch = |c: &mut Client, leader_epoch: i32| {
        let mut p = OffsetForLeaderPartition::default();
        p.partition = 0;
        p.current_leader_epoch = -1;
        p.leader_epoch = leader_epoch;
        let mut t = OffsetForLeaderTopic::default();
        t.topic = topic("a");
        t.partitions = vec![p];
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = kafka_protocol::messages::BrokerId(-1);
        req.topics = vec![t];
        let resp: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, 4, &req);
        let e = &resp.topics[0].partitions[0];
        (e.error_code, e.leader_epoch, e.end_offset)
    };
    assert_eq!(epoch(&mut c, 0), (0, 0, 2));
    assert_eq!(epoch(&mut c, 5).0, 75, "UNKNOWN_LEADER_EPOCH");

    // v4: by name.
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic("a"), topic("missing")];
    req.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 4, &req);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[1].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // v6: by topic id, learned from Metadata v12.
    let mut all = MetadataRequest::default();
    all.topics = None;
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &all);
    let names: Vec<&str> = meta
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
        .collect();
    assert_eq!(names, vec!["b"]);
    let mut state = DeleteTopicState::default();
    state.name = None;
    state.topic_id = meta.topics[0].topic_id;
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![state];
    req.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &req);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("b")
    );
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &all);
    assert!(meta.topics.is_empty());
    // A deleted topic can be created again, empty.
    assert_eq!(create(&mut c, "a", 1, 1, &[]), 0);
    assert_eq!(produce(&mut c, "a", good_batch()), (0, 0));
    // v6 by name: the answer carries the topic's id too.
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &all);
    let mut state = DeleteTopicState::default();
    state.name = Some(topic("a"));
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![state];
    req.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &req);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(resp.responses[0].topic_id, meta.topics[0].topic_id);
    assert!(!resp.responses[0].topic_id.is_nil());
}
