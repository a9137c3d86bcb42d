//! The worker skeleton with a handler whose batches wait for acknowledgements: the worker
//! handles the next batch while they are out, and commits a batch only once they are in, in
//! batch order, also when it is stopped meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::{broker, create_topic};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use services::worker::{
    BatchHandler, HandlerError, PendingAcks, Worker, WorkerConfig, WorkerContext,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "acks-test";
const GROUP: &str = "acks-test-workers";

/// Reports each batch's offsets; the first batch's effects are durable only once the test
/// sends on `gate`.
struct Gated {
    seen: mpsc::UnboundedSender<Vec<i64>>,
    gate: Option<oneshot::Receiver<()>>,
}

impl BatchHandler for Gated {
    const METRICS_PREFIX: &'static str = "gated";

    fn register_metrics(&self, _: &mut prometheus_client::registry::Registry) {}

    async fn handle(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        _: &WorkerContext,
    ) -> Result<PendingAcks, HandlerError> {
        let _ = self.seen.send(batch.iter().map(|m| m.offset()).collect());
        let mut acks = PendingAcks::none();
        if let Some(gate) = self.gate.take() {
            acks.after(async move {
                let _ = gate.await;
            });
        }
        Ok(acks)
    }
}

async fn produce(producer: &FutureProducer, payload: &str) {
    producer
        .send(
            FutureRecord::<(), _>::to(TOPIC).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// The group's committed offset on partition 0 (`None`: nothing committed).
fn committed(bootstrap: &str) -> Option<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).unwrap();
    match got.find_partition(TOPIC, 0).unwrap().offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// The offsets of the next batch the handler saw, within `secs`.
async fn next_batch(
    seen: &mut mpsc::UnboundedReceiver<Vec<i64>>,
    secs: u64,
    why: &str,
) -> Vec<i64> {
    tokio::time::timeout(Duration::from_secs(secs), seen.recv())
        .await
        .expect(why)
        .expect("the handler is gone")
}

async fn committed_becomes(bootstrap: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = committed(bootstrap);
        if now == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "committed {now:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_batch_is_committed_after_its_acks_and_the_next_is_handled_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    // Declared after the broker, so a failing check drops the runtime (and the worker's
    // consumer in it) while the broker still answers: the consumer's close does not hang.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(gated_batches(&b));
}

async fn gated_batches(b: &broker::EmbeddedBroker) {
    create_topic(b, TOPIC, 1);
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (release, gate) = oneshot::channel();
    let config = WorkerConfig {
        group_id: GROUP.into(),
        topic: TOPIC.into(),
        dead_letter_topic: "acks-test-dlq".into(),
        topic_partitions: 1,
        session_timeout_ms: 6000,
        ..WorkerConfig::orders(&b.addr)
    };
    let handler = Gated {
        seen: seen_tx,
        gate: Some(gate),
    };
    let worker = Worker::start(config, handler).await.unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .create()
        .unwrap();

    produce(&producer, "first").await;
    assert_eq!(
        next_batch(&mut seen, 30, "the first batch is handled").await,
        vec![0]
    );

    // The first batch's acknowledgement is out: the second is handled all the same...
    produce(&producer, "second").await;
    let why = "the next batch is handled while the first one's acks are out";
    assert_eq!(next_batch(&mut seen, 10, why).await, vec![1]);
    // ...but neither is committed: the second may not be committed before the first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        committed(&b.addr),
        None,
        "committed before the acks were in"
    );

    // Stopped meanwhile: the worker still commits both once the acknowledgement comes.
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        committed(&b.addr),
        None,
        "committed before the acks were in"
    );
    release.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the worker stops once the acks are in")
        .unwrap()
        .unwrap();
    committed_becomes(&b.addr, 2).await;
}
