//! Hostile or careless clients against the real broker binary: the broker's own limits hold
//! (threads, connections, topics and partitions, topic configs), whatever clients ask for.

use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    MetadataRequest, MetadataResponse,
};

use super::client::{create, create_full, good_batch, produce_to, topic, Client};
use super::harness::{metric, BrokerProcess};

fn api_versions(c: &mut Client) -> std::io::Result<ApiVersionsResponse> {
    c.try_call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
}

fn delete(c: &mut Client, name: &str) -> i16 {
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic(name)];
    req.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 4, &req);
    resp.responses[0].error_code
}

fn threads(broker: &BrokerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", broker.pid()))
        .unwrap()
        .count()
}

/// Log flushes are served by a small pool shared by every partition, not a thread per
/// partition: 2000 partitions leave the thread count where a handful of partitions put it, and
/// acks=all produces to them still complete (each waits for an fdatasync by the pool).
#[test]
fn two_thousand_partitions_do_not_take_two_thousand_threads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "small", 4, 1, &[]), 0);
    let with_four = threads(&broker);
    for name in ["wide-a", "wide-b"] {
        assert_eq!(create(&mut c, name, 1000, 1, &[]), 0, "create {name}");
    }
    let with_2004 = threads(&broker);
    eprintln!("threads: {with_four} with 4 partitions, {with_2004} with 2004");
    assert!(
        with_2004 < 64,
        "{with_2004} threads for 2004 partitions (4 partitions: {with_four})"
    );
    for (name, p) in [
        ("wide-a", 0),
        ("wide-a", 999),
        ("wide-b", 500),
        ("small", 3),
    ] {
        let (code, base, msg) = produce_to(&mut c, name, p, good_batch());
        assert_eq!((code, base), (0, 0), "produce to {name}-{p}: {msg}");
    }
}

/// A connection with no request for the idle timeout is closed by the broker (and counted); one
/// that keeps asking, more slowly than the timeout in total but faster than it between two
/// requests, stays open.
#[test]
fn idle_connections_are_closed_and_busy_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--idle-timeout-ms", "1000"]);
    let mut idle = Client::connect(&broker);
    let mut busy = Client::connect(&broker);
    assert_eq!(api_versions(&mut idle).unwrap().error_code, 0);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(
            api_versions(&mut busy)
                .expect("an active connection stays open")
                .error_code,
            0
        );
    }
    // 2.4 s without a request, past the 1 s timeout.
    idle.s
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(idle.is_closed(), "the idle connection is still open");
    assert_eq!(
        metric(
            &broker,
            "broker_connections_closed_by_broker_total{reason=\"idle\"}"
        ),
        Some(1.0)
    );
}

/// One address may hold `--max-connections-per-address` connections: the next is closed at
/// once, the ones it has keep working, and a slot frees when one of them closes.
#[test]
fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--max-connections-per-address", "3"]);
    // The harness's own probe connections (it waits for the port) must be gone first.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(&broker, "broker_connections ") != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "probe connections linger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(&broker)).collect();
    for c in &mut held {
        assert_eq!(api_versions(c).unwrap().error_code, 0);
    }
    let mut fourth = Client::connect(&broker);
    fourth
        .s
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        api_versions(&mut fourth).is_err() || fourth.is_closed(),
        "a fourth connection from one address was served"
    );
    assert_eq!(
        metric(
            &broker,
            "broker_connections_closed_by_broker_total{reason=\"per_address_limit\"}"
        ),
        Some(1.0)
    );
    for c in &mut held {
        assert_eq!(
            api_versions(c).unwrap().error_code,
            0,
            "a held connection broke"
        );
    }
    drop(held.pop());
    // The broker notices the close at its next read; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = Client::connect(&broker);
        if api_versions(&mut again).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed slot was never given back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creations past `--max-topics` or `--max-partitions` are refused with POLICY_VIOLATION and a
/// message, through CreateTopics and through Metadata's auto-creation alike; deleting a topic
/// gives its share back.
#[test]
fn topic_and_partition_caps_hold() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--max-topics", "3", "--max-partitions", "10"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "a", 4, 1, &[]), 0);
    assert_eq!(create(&mut c, "b", 6, 1, &[]), 0);
    let (code, msg) = create_full(&mut c, "c", 1, 1, &[]);
    assert_eq!(code, 44, "POLICY_VIOLATION past the partition cap: {msg}");
    assert!(msg.contains("limit of 10"), "{msg}");
    assert_eq!(delete(&mut c, "b"), 0);
    assert_eq!(create(&mut c, "c", 1, 1, &[]), 0);
    assert_eq!(create(&mut c, "d", 1, 1, &[]), 0);
    let (code, msg) = create_full(&mut c, "e", 1, 1, &[]);
    assert_eq!(code, 44, "POLICY_VIOLATION past the topic cap: {msg}");
    assert!(msg.contains("at most 3 topics"), "{msg}");

    // Auto-creation is a creation too.
    let mut req = MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(topic("auto"));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 9, &req);
    assert_ne!(resp.topics[0].error_code, 0, "auto-created past the cap");
    assert!(resp.topics.iter().all(|t| t.partitions.is_empty()));

    // The caps hold across a restart: the broker counts what it finds on disk.
    drop(c);
    let mut broker = broker;
    broker.stop();
    broker.restart_stopped();
    let mut c = Client::connect(&broker);
    assert_eq!(create_full(&mut c, "e", 1, 1, &[]).0, 44);
}

/// Topic settings a client chooses are held to sane bounds: a segment per append or a 1 GiB
/// record batch is refused with INVALID_CONFIG and says why; the operator's defaults are not
/// what is judged, and settings within the bounds are taken.
#[test]
fn topic_configs_a_client_sets_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--segment-bytes", "4096"]);
    let mut c = Client::connect(&broker);
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("segment.ms", "1")], "segment.ms 1 is below"),
        (&[("segment.bytes", "1024")], "segment.bytes 1024 is below"),
        (
            &[("max.message.bytes", "1073741824")],
            "max.message.bytes 1073741824 is over",
        ),
        (
            &[
                ("segment.bytes", "1073741824"),
                ("index.interval.bytes", "1"),
            ],
            "offset index per segment",
        ),
        (&[("retention.ms", "0")], "retention_ms 0"),
    ];
    for (configs, says) in cases {
        let (code, msg) = create_full(&mut c, "t", 1, 1, configs);
        assert_eq!(code, 40, "INVALID_CONFIG for {configs:?}: {msg}");
        assert!(msg.contains(says), "{configs:?}: {msg}");
    }
    // The operator's small segments are not the client's doing.
    assert_eq!(create(&mut c, "ok", 1, 1, &[("retention.ms", "60000")]), 0);
    assert_eq!(
        create(
            &mut c,
            "ok2",
            1,
            1,
            &[("segment.bytes", "1048576"), ("segment.ms", "60000")]
        ),
        0
    );
    let (code, base, msg) = produce_to(&mut c, "ok", 0, good_batch());
    assert_eq!((code, base), (0, 0), "{msg}");
}
