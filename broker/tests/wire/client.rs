//! A hand-made Kafka client for the wire tests: typed requests encoded with the `kafka-protocol`
//! crate over a plain TCP socket, for answers stock clients do not let a test provoke or see
//! (exact error codes, broker limits, authentication states).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::harness::BrokerProcess;

pub(crate) struct Client {
    pub(crate) s: TcpStream,
    next_id: i32,
}

impl Client {
    pub(crate) fn connect(b: &BrokerProcess) -> Self {
        Self::connect_addr(&b.addr())
    }

    pub(crate) fn connect_addr(addr: &str) -> Self {
        Self::over(TcpStream::connect(addr).unwrap())
    }

    /// A client over an already connected socket.
    pub(crate) fn over(s: TcpStream) -> Self {
        // A broker that hangs fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // Latency tests measure the broker, not Nagle's algorithm meeting a delayed ACK.
        s.set_nodelay(true).unwrap();
        Client { s, next_id: 1 }
    }

    /// Sends one request and returns the raw response body after the header, or the I/O error
    /// (the broker closed the connection).
    pub(crate) fn try_call_raw<Req: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> std::io::Result<Bytes> {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_id;
        header.client_id = Some(StrBytes::from_static_str("wire-test"));
        self.next_id += 1;
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        self.send_frame(&buf)?;
        let mut body = self.read_frame()?;
        let hv = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let h = ResponseHeader::decode(&mut body, hv).unwrap();
        assert_eq!(h.correlation_id, header.correlation_id);
        Ok(body)
    }

    pub(crate) fn try_call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> std::io::Result<Resp> {
        let mut body = self.try_call_raw(api, version, req)?;
        Ok(Resp::decode(&mut body, version).unwrap())
    }

    pub(crate) fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.try_call(api, version, req)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: connection failed: {e}"))
    }

    /// A length-prefixed frame of `bytes` (a request, or a raw SASL token).
    pub(crate) fn send_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(4 + bytes.len());
        frame.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        frame.extend_from_slice(bytes);
        self.s.write_all(&frame)
    }

    pub(crate) fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len)?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// True when the broker closed the connection (EOF or reset) within the read timeout.
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.s.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
        }
    }
}

pub(crate) fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// CreateTopics v7 for one topic: (error code, error message).
pub(crate) fn create_full(
    c: &mut Client,
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> (i16, String) {
    let mut t = CreatableTopic::default();
    t.name = topic(name);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.value = Some(StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    let r = &resp.topics[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

pub(crate) fn create(
    c: &mut Client,
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> i16 {
    create_full(c, name, partitions, rf, configs).0
}

/// Produce v9, acks=-1, to partition `partition`: (error code, base offset, error message), or
/// the I/O error if the connection failed.
/// A Produce (acks=-1) of `records` to `partition` of `name`.
pub(crate) fn produce_request(name: &str, partition: i32, records: Vec<u8>) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(Bytes::from(records));
    let mut t = TopicProduceData::default();
    t.name = topic(name);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

pub(crate) fn try_produce_to(
    c: &mut Client,
    name: &str,
    partition: i32,
    records: Vec<u8>,
) -> std::io::Result<(i16, i64, String)> {
    let req = produce_request(name, partition, records);
    let resp: ProduceResponse = c.try_call(ApiKey::Produce, 9, &req)?;
    let pr = &resp.responses[0].partition_responses[0];
    Ok((
        pr.error_code,
        pr.base_offset,
        pr.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    ))
}

/// Produce v9, acks=-1, to partition `partition`: (error code, base offset, error message).
pub(crate) fn produce_to(
    c: &mut Client,
    name: &str,
    partition: i32,
    records: Vec<u8>,
) -> (i16, i64, String) {
    try_produce_to(c, name, partition, records)
        .unwrap_or_else(|e| panic!("produce to {name}-{partition}: connection failed: {e}"))
}

/// Produce to partition 0: (error code, base offset).
pub(crate) fn produce(c: &mut Client, name: &str, records: Vec<u8>) -> (i16, i64) {
    let (code, base, _) = produce_to(c, name, 0, records);
    (code, base)
}

pub(crate) fn good_batch() -> Vec<u8> {
    let mut b = broker::log::BatchBuilder::new();
    b.push_value(1, b"hello").push_value(2, b"world");
    b.build()
}

/// A batch of `n` records of `size` bytes each, stamped now (so retention keeps it).
pub(crate) fn batch_of(n: usize, size: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = broker::log::BatchBuilder::new();
    let v = vec![b'x'; size];
    for _ in 0..n {
        b.push_value(now, &v);
    }
    b.build()
}

/// A Fetch v12 request reading each of `partitions` (partition, offset) of `name` with the given
/// limits and no wait.
pub(crate) fn fetch_request(
    name: &str,
    partitions: &[(i32, i64)],
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = topic(name);
    t.partitions = partitions
        .iter()
        .map(|&(p, offset)| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = offset;
            fp.partition_max_bytes = partition_max_bytes;
            fp.current_leader_epoch = -1;
            fp.log_start_offset = -1;
            fp.last_fetched_epoch = -1;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.max_wait_ms = 0;
    req.min_bytes = 0;
    req.max_bytes = max_bytes;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

/// Fetch v12 of one partition from `offset`: (error code, high watermark, record bytes).
pub(crate) fn fetch(
    c: &mut Client,
    name: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> (i16, i64, Bytes) {
    let req = fetch_request(name, &[(partition, offset)], max_bytes, max_bytes);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let p = &resp.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

/// Every record from `from` to the high watermark: (base offset, record count) per batch.
pub(crate) fn read_all(c: &mut Client, name: &str, partition: i32, from: i64) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let (code, hwm, bytes) = fetch(c, name, partition, offset, 4 << 20);
        assert_eq!(code, 0, "fetch {name}-{partition} at {offset}");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let h = broker::log::BatchHeader::parse(rest).expect("batch header");
            out.push((h.base_offset, h.records_count));
            offset = h.next_offset();
            rest = &rest[h.total_len().min(rest.len())..];
        }
        if offset >= hwm {
            return out;
        }
    }
}
