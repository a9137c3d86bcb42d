//! Storage faults on a real filesystem (see `loopfs.rs`): what the broker does when the disk
//! under it fails.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::harness::{admin_get, BrokerProcess};
use super::loopfs::LoopFs;

/// A failed fdatasync stops the log: the broker refuses further writes to it (never an ack it
/// cannot keep) and `/healthz` answers 503 naming the log, while the process keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_log_and_health_says_so() {
    let fs = LoopFs::new(24, 128);
    let data = fs.path().join("broker");
    let broker = BrokerProcess::start(&data, &[]);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    let payload = vec![7u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = 0usize;
    let failure = loop {
        assert!(
            Instant::now() < deadline,
            "no write failed after {acked} acks"
        );
        match producer
            .send(
                FutureRecord::<(), _>::to("doomed").payload(&payload),
                Duration::from_secs(10),
            )
            .await
        {
            Ok(_) => acked += 1,
            Err((e, _)) => break e,
        }
    };
    // Roughly the real space behind the filesystem was acknowledged, not the 128 MB ext4 thinks
    // it has: every ack was covered by an fdatasync that succeeded.
    assert!(
        acked > 10 && acked < 24 * 4,
        "{acked} acks of 256 KiB before the failure"
    );
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("doomed-0"), "{body}");
    // The process still serves: metadata answers.
    let (status, _) = admin_get(&broker, "/metrics");
    assert_eq!(status, 200);
    eprintln!("write refused after {acked} acks: {failure}");
}
