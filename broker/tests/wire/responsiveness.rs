//! The broker stays responsive while it does slow disk work for one client: other clients'
//! requests are not stuck behind it (a lock held across fsyncs, a runtime thread blocked).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};

use super::client::{batch_of, create, produce_to, topic, Client};
use super::harness::BrokerProcess;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// While another client creates topics of 100 partitions one after the other (each a few
/// hundred file creations and fsyncs), Metadata and acks=all Produce requests from a second
/// client keep a p99 under 50 ms.
#[test]
fn metadata_and_produce_stay_fast_while_topics_of_100_partitions_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut probe = Client::connect(&broker);
    assert_eq!(create(&mut probe, "busy", 1, 1, &[]), 0);

    let creating = Arc::new(AtomicBool::new(true));
    let addr = broker.addr();
    let flag = creating.clone();
    let creator = std::thread::spawn(move || {
        let mut c = Client::connect_addr(&addr);
        let mut took = Vec::new();
        for i in 0..6 {
            let start = Instant::now();
            assert_eq!(create(&mut c, &format!("wide-{i}"), 100, 1, &[]), 0);
            took.push(start.elapsed());
        }
        flag.store(false, Ordering::SeqCst);
        took
    });

    let mut metadata = Vec::new();
    let mut produce = Vec::new();
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic("busy"));
    req.topics = Some(vec![t]);
    while creating.load(Ordering::SeqCst) {
        let start = Instant::now();
        let resp: MetadataResponse = probe.call(ApiKey::Metadata, 12, &req);
        metadata.push(start.elapsed());
        assert_eq!(resp.topics[0].error_code, 0);
        let start = Instant::now();
        assert_eq!(produce_to(&mut probe, "busy", 0, batch_of(1, 100)).0, 0);
        produce.push(start.elapsed());
    }
    let creations = creator.join().unwrap();
    metadata.sort();
    produce.sort();
    let report = |name: &str, v: &[Duration]| {
        format!(
            "{name}: {} requests, p50 {:?}, p99 {:?}, max {:?}",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.99),
            v[v.len() - 1]
        )
    };
    eprintln!("creating 100 partitions took {creations:?}");
    eprintln!("{}", report("Metadata", &metadata));
    eprintln!("{}", report("Produce", &produce));
    assert!(
        percentile(&metadata, 0.99) < Duration::from_millis(50),
        "{}",
        report("Metadata", &metadata)
    );
    assert!(
        percentile(&produce, 0.99) < Duration::from_millis(50),
        "{}",
        report("Produce", &produce)
    );
    assert!(
        metadata.len() >= 20,
        "too few samples: {}",
        report("Metadata", &metadata)
    );
}
