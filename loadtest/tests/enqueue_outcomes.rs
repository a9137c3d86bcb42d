//! The API's enqueue outcomes against the real broker binary, frozen with SIGSTOP: a message
//! already sent when the broker stops answering may be written once it resumes, so its outcome
//! is `Unknown` (the API's 503 `outcome_unknown`), never `NotQueued` (503 `not_accepted`, which
//! tells the buyer that nothing was queued). cargo-mutants found this untested: answering every
//! failed delivery as `NotQueued` passed every test before this one.

use std::time::Duration;

use loadtest::processes::{bin_dir, free_port, Proc};
use services::api::enqueue::{DurableProducer, Enqueued};
use services::kafka::{ensure_topics, TopicSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_to_a_frozen_broker_is_unknown_never_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let mut broker = Proc::new(
        "broker",
        bin_dir().unwrap().join("broker"),
        dir.path(),
        port,
    )
    .arg(format!("--listen=127.0.0.1:{port}"))
    .arg(format!("--data-dir={}", dir.path().join("data").display()))
    .arg(format!("--admin-listen=127.0.0.1:{}", free_port().unwrap()));
    broker.start(Duration::from_secs(20)).unwrap();
    let addr = broker.addr().to_string();
    ensure_topics(
        &addr,
        &[TopicSpec::new("frozen", 1)],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // librdkafka gives the message up after 1 s; the caller waits 3 s.
    let producer = DurableProducer::new(&addr, Duration::from_secs(1), Duration::ZERO).unwrap();
    let first = producer
        .send("frozen", b"k", b"before", Duration::from_secs(10))
        .await;
    assert!(
        matches!(first, Enqueued::Acked { offset: 0, .. }),
        "{first:?}"
    );
    assert_eq!(format!("{producer:?}"), "DurableProducer");

    broker.signal("STOP");
    let frozen = producer
        .send("frozen", b"k", b"while frozen", Duration::from_secs(3))
        .await;
    broker.signal("CONT");
    assert!(
        matches!(frozen, Enqueued::Unknown(_)),
        "a message in flight to a frozen broker was answered {frozen:?}"
    );
    // And it was right to say so: the broker wrote it once it resumed, so the next message
    // lands after it.
    let after = producer
        .send("frozen", b"k", b"after", Duration::from_secs(10))
        .await;
    assert!(
        matches!(after, Enqueued::Acked { offset: 2, .. }),
        "{after:?}: the message answered unknown was not written"
    );
    broker.terminate();
}
