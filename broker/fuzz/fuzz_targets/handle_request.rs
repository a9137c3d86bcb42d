//! Any bytes as a request frame, decoded and then handled by a real broker (temp data dir):
//! handlers must answer or refuse without panicking, whatever the field values, and the answer
//! must encode. Time is paused, so long polls finish at once.
#![no_main]

use std::sync::{Arc, OnceLock};

use broker::clock::SystemClock;
use broker::log::{FlushPolicy, LogConfig};
use broker::metrics::Metrics;
use broker::producer_ids::ProducerIdAllocator;
use broker::protocol::{self, Request};
use broker::server::{Broker, BrokerConfig};
use broker::topics::TopicRegistry;
use libfuzzer_sys::fuzz_target;

// The broker binary's allocator, so fuzzing sees what the broker does with huge array counts.
#[global_allocator]
static ALLOC: broker::alloc::NoReserveHugeAlloc = broker::alloc::NoReserveHugeAlloc;

struct Fixture {
    _dir: tempfile::TempDir,
    broker: Broker,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let defaults = LogConfig {
            flush: FlushPolicy::Never,
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let topics = TopicRegistry::open(dir.path(), defaults.clone(), Arc::new(SystemClock))
            .expect("topics");
        // A topic with data, so Fetch/ListOffsets/Produce reach the log.
        let t = topics.create("t", 2, defaults).expect("create");
        let mut b = broker::log::BatchBuilder::new();
        b.push_value(1, b"hello");
        t.partition(0)
            .expect("p0")
            .append(&mut b.build())
            .expect("append");
        let broker = Broker {
            config: BrokerConfig::default(),
            topics,
            producer_ids: ProducerIdAllocator::open(dir.path()).expect("ids"),
            metrics: Metrics::new(),
            groups: broker::group::GroupCoordinator::new(
                Default::default(),
                broker::group::OffsetStore::open(
                    dir.path(),
                    FlushPolicy::Never,
                    Arc::new(SystemClock),
                )
                .expect("offsets"),
            ),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        Fixture {
            _dir: dir,
            broker,
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if let Ok(Request::Known { header, api, body }) =
        protocol::decode_request(bytes::Bytes::copy_from_slice(data))
    {
        // Creating/deleting topics from random input would fill the disk; those paths are covered
        // by decode and by the wire tests.
        if matches!(api, kafka_protocol_key::CREATE | kafka_protocol_key::DELETE) {
            return;
        }
        let version = header.request_api_version;
        let resp = f.rt.block_on(protocol::handle(
            &f.broker,
            &Default::default(),
            api,
            version,
            *body,
        ));
        if let Some(resp) = resp {
            protocol::encode_response(header.correlation_id, api, version, &resp)
                .expect("a handler's answer must encode");
        }
    }
});

mod kafka_protocol_key {
    pub const CREATE: broker::protocol::ApiKey = broker::protocol::ApiKey::CreateTopics;
    pub const DELETE: broker::protocol::ApiKey = broker::protocol::ApiKey::DeleteTopics;
}
