//! Produce requests in a row on one connection: the next one is appended while the one before
//! waits for its fsync, and the answers still come back in order.

use std::time::{Duration, Instant};

use broker::log::{FlushPolicy, LogConfig};
use broker::{EmbeddedBroker, NodeConfig};
use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, ProduceResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::client::{good_batch, produce_request, Client};

const VERSION: i16 = 9;

/// A Produce v9 frame (acks=-1) of `good_batch()` to `partition` of `name`.
fn produce_frame(name: &str, partition: i32, correlation_id: i32) -> BytesMut {
    let req = produce_request(name, partition, good_batch());
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = VERSION;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("pipelining-test"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, ApiKey::Produce.request_header_version(VERSION))
        .unwrap();
    req.encode(&mut buf, VERSION).unwrap();
    buf
}

/// A broker with topic `t` of 2 partitions, under the fsync policy.
fn broker_with_topic(dir: &std::path::Path) -> EmbeddedBroker {
    let b = EmbeddedBroker::start(NodeConfig {
        log: LogConfig {
            flush: FlushPolicy::Fsync,
            ..LogConfig::default()
        },
        ..NodeConfig::local(dir)
    })
    .unwrap();
    let topics = &b.broker().topics;
    topics.create("t", 2, topics.defaults().clone()).unwrap();
    b
}

/// Nothing arrives on `c` within 300 ms; then reads wait up to 30 s again.
fn assert_no_answer_yet(c: &mut Client, what: &str) {
    c.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut probe = [0u8; 1];
    let early = std::io::Read::read(&mut c.s, &mut probe);
    assert!(early.is_err(), "{what}: {early:?}");
    c.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
}

/// The next answer: its correlation id and its one partition's error code.
fn read_produce_answer(c: &mut Client) -> (i32, i16) {
    let mut body = c.read_frame().unwrap();
    let h = ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(VERSION))
        .unwrap();
    let resp = ProduceResponse::decode(&mut body, VERSION).unwrap();
    (
        h.correlation_id,
        resp.responses[0].partition_responses[0].error_code,
    )
}

#[test]
fn a_produce_is_appended_while_the_one_before_waits_for_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with_topic(dir.path());
    let t = b.broker().topics.get("t").unwrap();
    let (p0, p1) = (
        t.partition(0).unwrap().clone(),
        t.partition(1).unwrap().clone(),
    );
    let mut c = Client::connect_addr(&b.addr);

    // Partition 0's disk "hangs": its first Produce cannot be acknowledged.
    let hold = p0.hold_flushes();
    c.send_frame(&produce_frame("t", 0, 1)).unwrap();
    c.send_frame(&produce_frame("t", 1, 2)).unwrap();
    // The second request is read and appended all the same (taken one at a time, it waited
    // unread behind the first one's fsync).
    let deadline = Instant::now() + Duration::from_secs(5);
    while p1.log_end_offset() < 2 {
        assert!(
            Instant::now() < deadline,
            "the Produce to partition 1 was not appended while partition 0's fsync was held"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(p0.log_end_offset(), 2, "the first Produce is appended too");
    // Neither is answered before the first is durable: answers go out in order, and partition
    // 0's records are not readable yet.
    assert_eq!(p0.high_watermark(), 0);
    assert_no_answer_yet(
        &mut c,
        "an answer came before the first Produce was durable",
    );
    drop(hold);
    assert_eq!(read_produce_answer(&mut c), (1, 0));
    assert_eq!(read_produce_answer(&mut c), (2, 0));
    assert_eq!(p0.high_watermark(), 2);
    assert_eq!(p1.high_watermark(), 2);
}

#[test]
fn another_request_after_a_waiting_produce_is_answered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with_topic(dir.path());
    let p0 = b
        .broker()
        .topics
        .get("t")
        .unwrap()
        .partition(0)
        .unwrap()
        .clone();
    let mut c = Client::connect_addr(&b.addr);
    let hold = p0.hold_flushes();
    c.send_frame(&produce_frame("t", 0, 1)).unwrap();
    // ApiVersions v0 (correlation id 2): answered at once when alone.
    c.send_frame(&[0, 18, 0, 0, 0, 0, 0, 2, 0xff, 0xff])
        .unwrap();
    assert_no_answer_yet(
        &mut c,
        "an answer overtook the Produce waiting for its fsync",
    );
    drop(hold);
    assert_eq!(read_produce_answer(&mut c), (1, 0));
    let mut versions = c.read_frame().unwrap();
    let h = ResponseHeader::decode(&mut versions, 0).unwrap();
    assert_eq!(h.correlation_id, 2);
}
