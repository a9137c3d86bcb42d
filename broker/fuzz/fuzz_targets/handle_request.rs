//! Any bytes as a request frame, decoded and then handled by a real broker (temp data dir):
//! handlers must answer or refuse without panicking, whatever the field values, and the answer
//! must encode. Time is paused, so long polls finish at once.
#![no_main]

use std::sync::{Arc, OnceLock};

use broker::log::{FlushPolicy, LogConfig};
use broker::protocol::{self, Request};
use broker::state::Broker;
use broker::NodeConfig;
use libfuzzer_sys::fuzz_target;
use shared::shutdown::Tasks;
use tokio_util::sync::CancellationToken;

// The broker binary's allocator, so fuzzing sees what the broker does with huge array counts.
#[global_allocator]
static ALLOC: broker::alloc::NoReserveHugeAlloc = broker::alloc::NoReserveHugeAlloc;

struct Fixture {
    _dir: tempfile::TempDir,
    broker: Arc<Broker>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        // The state the node would serve, opened the way the node opens it.
        let config = NodeConfig {
            log: LogConfig {
                flush: FlushPolicy::Never,
                segment_bytes: 1 << 20,
                ..LogConfig::default()
            },
            ..NodeConfig::local(dir.path())
        };
        let tasks = Tasks::new(CancellationToken::new());
        let broker = rt
            .block_on(async { Broker::open(&config, &tasks) })
            .expect("open broker state");
        // A topic with data, so Fetch/ListOffsets/Produce reach the log.
        let t = broker
            .topics
            .create("t", 2, config.log.clone())
            .expect("create");
        let mut b = broker::log::BatchBuilder::new();
        b.push_value(1, b"hello");
        t.partition(0)
            .expect("p0")
            .append(&mut b.build())
            .expect("append");
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
        // As an admin, so the admin APIs' handlers (configs, partitions, records, groups) run,
        // not only their refusals; the broker's topic and partition caps bound what
        // auto-creation and CreatePartitions can make of random input.
        let ctx = protocol::RequestContext {
            authorization: protocol::Authorization::Everything,
            ..Default::default()
        };
        let resp =
            f.rt.block_on(protocol::handle(&f.broker, &ctx, api, version, *body));
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
