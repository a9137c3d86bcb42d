//! Storage faults on a real filesystem (see `loopfs.rs`): what the broker does when the disk
//! under it fails or fills up, and when a segment roll fails half-way.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::client::{batch_of, create, fetch, produce_to, read_all, try_produce_to, Client};
use super::harness::{admin_get, metric, BrokerProcess};
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

/// A roll that fails half-way (here: the new segment's index path is taken by a directory)
/// refuses that produce with KAFKA_STORAGE_ERROR and leaves nothing behind: once the obstacle
/// is gone the next produce rolls and succeeds. Meanwhile the admin port says the partition
/// cannot take writes, and why.
#[test]
fn a_failed_roll_is_retried_and_reported_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--segment-bytes", "4096"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "roll", 1, 1, &[]), 0);
    // One batch of ~3 KiB fills most of the first 4 KiB segment; the next one must roll at 1.
    assert_eq!(produce_to(&mut c, "roll", 0, batch_of(1, 3000)).0, 0);
    let obstacle = dir
        .path()
        .join("topics/roll/0")
        .join(format!("{:020}.index", 1));
    std::fs::create_dir(&obstacle).unwrap();

    let (code, _, msg) = produce_to(&mut c, "roll", 0, batch_of(1, 3000));
    assert_eq!(code, 56, "KAFKA_STORAGE_ERROR while the roll fails: {msg}");
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!(
        status, 503,
        "health while the partition cannot roll: {body}"
    );
    assert!(body.contains("roll-0"), "{body}");
    assert!(body.to_lowercase().contains("directory"), "{body}");
    assert_eq!(
        metric(
            &broker,
            "broker_partition_unwritable{topic=\"roll\",partition=\"0\"}"
        ),
        Some(1.0)
    );
    // Reads go on.
    assert_eq!(read_all(&mut c, "roll", 0, 0), vec![(0, 1)]);

    std::fs::remove_dir(&obstacle).unwrap();
    let (code, base, msg) = produce_to(&mut c, "roll", 0, batch_of(1, 3000));
    assert_eq!((code, base), (0, 1), "the retried roll succeeds: {msg}");
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(
        metric(
            &broker,
            "broker_partition_unwritable{topic=\"roll\",partition=\"0\"}"
        ),
        Some(0.0)
    );
    assert_eq!(read_all(&mut c, "roll", 0, 0), vec![(0, 1), (1, 1)]);
}

/// A full disk (ext4 itself out of space, not a failing device): produce gets
/// KAFKA_STORAGE_ERROR naming the cause, nothing half-written stays, reads and metadata go on,
/// /healthz says which partition cannot write and why, and once space is freed writes resume
/// at the next offset with every acknowledged batch still there. The broker must survive it:
/// memory-mapped index pages over unallocated blocks would SIGBUS on the first write.
#[test]
fn a_full_disk_refuses_writes_keeps_serving_reads_and_recovers_when_space_returns() {
    // A 48 MB filesystem on 128 MB of real space: ext4 runs out first and says ENOSPC.
    let fs = LoopFs::new(128, 48);
    let data = fs.path().join("broker");
    // Most of the space goes to a ballast file, so the broker fills the rest quickly.
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 30 << 20]).unwrap();
    let mut broker = BrokerProcess::start(&data, &["--segment-bytes", "1048576"]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "full", 1, 1, &[]), 0);

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = 0i64;
    let refusal = loop {
        assert!(
            Instant::now() < deadline,
            "the disk never filled after {acked} acks"
        );
        let (code, base, msg) = produce_to(&mut c, "full", 0, batch_of(4, 64 * 1024));
        if code != 0 {
            break (code, msg);
        }
        assert_eq!(base, acked * 4, "offsets stay contiguous");
        acked += 1;
    };
    eprintln!("refused after {acked} acknowledged batches: {refusal:?}");
    assert!(acked > 5, "only {acked} batches before the disk was full");
    assert_eq!(refusal.0, 56, "KAFKA_STORAGE_ERROR: {}", refusal.1);
    assert!(
        refusal.1.contains("No space left on device"),
        "the answer names the cause: {}",
        refusal.1
    );
    // Still refused, still alive, still serving reads and metadata.
    for _ in 0..3 {
        assert_eq!(produce_to(&mut c, "full", 0, batch_of(4, 64 * 1024)).0, 56);
    }
    assert!(broker.is_running(), "the broker died on the full disk");
    let (code, hwm, first) = fetch(&mut c, "full", 0, 0, 1 << 20);
    assert_eq!((code, hwm), (0, acked * 4));
    assert!(!first.is_empty());
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("full-0") && body.contains("No space left on device"),
        "{body}"
    );
    assert_eq!(
        metric(
            &broker,
            "broker_partition_unwritable{topic=\"full\",partition=\"0\"}"
        ),
        Some(1.0)
    );

    // Space comes back: writes resume right after the last acknowledged batch.
    std::fs::remove_file(&ballast).unwrap();
    let (code, base, msg) = produce_to(&mut c, "full", 0, batch_of(4, 64 * 1024));
    assert_eq!((code, base), (0, acked * 4), "writes resume: {msg}");
    acked += 1;
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let batches = read_all(&mut c, "full", 0, 0);
    assert_eq!(batches.len() as i64, acked);
    assert!(batches
        .iter()
        .enumerate()
        .all(|(i, &(base, n))| base == i as i64 * 4 && n == 4));

    // Everything acknowledged is still there after a restart.
    broker.restart();
    let mut c = Client::connect(&broker);
    assert_eq!(read_all(&mut c, "full", 0, 0).len() as i64, acked);
}

/// Writes `path` until the filesystem refuses even one more byte.
fn fill_up(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut chunk = 1 << 20;
    while chunk > 0 {
        match f.write(&vec![1u8; chunk]) {
            Ok(n) if n == chunk => {}
            Ok(_) | Err(_) => chunk /= 2,
        }
    }
    let _ = f.sync_all();
}

/// The first index entry of a segment on a full disk. The second batch fits in the log's last,
/// already allocated block, and is the first to add an offset-index entry; with the index a
/// sparse memory-mapped file, writing that entry would make the kernel allocate a block at
/// page-fault time, and with none left that is SIGBUS: the broker dies. Index files grow by
/// written blocks instead, so the entry is skipped (the index is a hint) and the produce succeeds.
#[test]
fn a_full_disk_never_kills_the_broker_through_its_memory_mapped_index() {
    let fs = LoopFs::new(128, 48);
    let data = fs.path().join("broker");
    let mut broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "idx", 1, 1, &[]), 0);
    // 4096 + ~100 bytes: past the index interval (4096), ending early in a block (1 or 4 KiB).
    assert_eq!(produce_to(&mut c, "idx", 0, batch_of(1, 4096)).0, 0);
    let ballast = fs.path().join("ballast");
    fill_up(&ballast);

    let answer = try_produce_to(&mut c, "idx", 0, batch_of(1, 200));
    if let Some(status) = broker.exit_status() {
        use std::os::unix::process::ExitStatusExt;
        panic!(
            "the broker died writing its index on a full disk: {status} (signal {:?}; SIGBUS is 7)",
            status.signal()
        );
    }
    let (code, base, msg) = answer.unwrap();
    assert_eq!((code, base), (0, 1), "{msg}");
    std::fs::remove_file(&ballast).unwrap();
    assert_eq!(produce_to(&mut c, "idx", 0, batch_of(1, 200)).0, 0);
    assert_eq!(read_all(&mut c, "idx", 0, 0), vec![(0, 1), (1, 1), (2, 1)]);
}

/// A topic that cannot be opened at start (here: its metadata file is damaged) stays on disk
/// untouched and visible as broken: /healthz names it, Metadata answers KAFKA_STORAGE_ERROR for
/// it, and auto-creation does not replace it with an empty topic (which moved the old one's
/// files to the trash). Once the file is repaired, the data is all there.
#[test]
fn a_topic_that_cannot_be_opened_is_reported_and_never_replaced() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};

    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "keep", 1, 1, &[]), 0);
    for _ in 0..3 {
        assert_eq!(produce_to(&mut c, "keep", 0, batch_of(2, 100)).0, 0);
    }
    assert!(broker.stop().success());
    let meta = dir.path().join("topics/keep/topic.json");
    let good = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, b"{ damaged").unwrap();
    broker.restart_stopped();

    let mut c = Client::connect(&broker);
    let mut t = MetadataRequestTopic::default();
    t.name = Some(super::client::topic("keep"));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    assert_eq!(
        resp.topics[0].error_code, 56,
        "KAFKA_STORAGE_ERROR for a topic that cannot open"
    );
    assert!(
        dir.path().join("topics/keep/0").exists(),
        "the damaged topic's data was moved away"
    );
    let (status, body) = admin_get(&broker, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("keep") && body.contains("topic.json"),
        "{body}"
    );

    assert!(broker.stop().success());
    std::fs::write(&meta, good).unwrap();
    broker.restart_stopped();
    let mut c = Client::connect(&broker);
    assert_eq!(read_all(&mut c, "keep", 0, 0), vec![(0, 2), (2, 2), (4, 2)]);
}

/// The clean-shutdown marker that lets a start skip syncing everything again exists only
/// between a clean stop (everything flushed) and the next start: a running broker has removed
/// it, and a killed one never wrote it, so a crash is always followed by a full recovery sync.
#[test]
fn the_clean_shutdown_marker_exists_only_after_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(broker::state::CLEAN_SHUTDOWN_MARKER);
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "m", 1, 1, &[]), 0);
    assert_eq!(produce_to(&mut c, "m", 0, batch_of(2, 10)).0, 0);
    assert!(!marker.exists(), "marker present while running");
    assert!(broker.stop().success());
    assert!(marker.exists(), "no marker after a clean stop");
    broker.restart_stopped();
    // An answer means the data dir is open (the ports are bound before it is).
    let mut c = Client::connect(&broker);
    assert_eq!(read_all(&mut c, "m", 0, 0), vec![(0, 2)]);
    assert!(!marker.exists(), "the start did not remove the marker");
    broker.crash_and_restart();
    let mut c = Client::connect(&broker);
    assert_eq!(read_all(&mut c, "m", 0, 0), vec![(0, 2)]);
    assert!(!marker.exists(), "marker after a SIGKILL and restart");
}
