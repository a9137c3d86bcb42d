//! The `rdkafka` crate (bundled librdkafka 2.12.1) against the real broker binary: admin
//! create_topics, an idempotent acks=all producer, assign()-mode consumption from the beginning,
//! watermarks and offsets by time.

use std::collections::HashMap;
use std::time::Duration;

use super::harness::BrokerProcess;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(20);

fn config(broker: &BrokerProcess) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.addr());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_admin_idempotent_producer_and_assign_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);

    let admin: AdminClient<DefaultClientContext> = config(&broker).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let topic = NewTopic::new("rd", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let res = admin.create_topics([&topic], &opts).await.unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let again = admin.create_topics([&topic], &opts).await.unwrap();
    assert!(again[0].is_err(), "creating an existing topic must fail");

    let producer: FutureProducer = config(&broker)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let n = 300;
    let sends = (0..n).map(|i| {
        let producer = producer.clone();
        async move {
            let key = format!("k{}", i % 7);
            let value = format!("v{i}");
            let record = FutureRecord::to("rd")
                .key(&key)
                .payload(&value)
                .partition(i % 3)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "i",
                    value: Some(&i.to_string()),
                }));
            producer.send(record, TIMEOUT).await.map_err(|(e, _)| e)
        }
    });
    let delivered = futures_util::future::join_all(sends).await;
    let mut per_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    for d in delivered {
        let delivery = d.expect("delivered");
        per_partition
            .entry(delivery.partition)
            .or_default()
            .push(delivery.offset);
    }
    for p in 0..3 {
        let mut offsets = per_partition.remove(&p).unwrap();
        offsets.sort_unstable();
        assert_eq!(
            offsets,
            (0..100).collect::<Vec<i64>>(),
            "partition {p}: offsets dense, none twice"
        );
    }

    let consumer: BaseConsumer = config(&broker)
        .set("group.id", "rd-assign")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("rd", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen: HashMap<i32, Vec<(i64, String, String, String)>> = HashMap::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut count = 0;
    while count < n {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed only {count} of {n}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let header = m.headers().and_then(|h| h.iter().next()).map(|h| {
            assert_eq!(h.key, "i");
            String::from_utf8(h.value.unwrap().to_vec()).unwrap()
        });
        seen.entry(m.partition()).or_default().push((
            m.offset(),
            String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
            String::from_utf8(m.payload().unwrap().to_vec()).unwrap(),
            header.unwrap(),
        ));
        count += 1;
    }
    for p in 0..3i32 {
        let msgs = &seen[&p];
        assert_eq!(msgs.len(), 100);
        for (k, (offset, key, value, header)) in msgs.iter().enumerate() {
            assert_eq!(*offset, k as i64, "partition {p} in order");
            let i: i32 = header.parse().unwrap();
            assert_eq!(i % 3, p);
            assert_eq!(value, &format!("v{i}"));
            assert_eq!(key, &format!("k{}", i % 7));
        }
    }

    let (low, high) = consumer.fetch_watermarks("rd", 1, TIMEOUT).unwrap();
    assert_eq!((low, high), (0, 100));
    let mut times = TopicPartitionList::new();
    times
        .add_partition_offset("rd", 0, Offset::Offset(0))
        .unwrap(); // timestamp 0: the first
    let found = consumer.offsets_for_times(times, TIMEOUT).unwrap();
    assert_eq!(
        found.find_partition("rd", 0).unwrap().offset(),
        Offset::Offset(0)
    );
}

/// What the broker acknowledged (acks=all, fsync policy) is there after a crash: produce, SIGKILL
/// the broker (no shutdown, no final flush), restart it, read everything back. Messages sent
/// while it was down are delivered by the idempotent producer's retries, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_sigkill_of_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let producer: FutureProducer = config(&broker)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let send = |i: usize| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to("crash")
                        .key(&format!("k{}", i % 3))
                        .payload(&format!("m{i}")),
                    TIMEOUT,
                )
                .await
                .map_err(|(e, _)| e)
        }
    };
    let acked: Vec<_> = futures_util::future::join_all((0..500).map(send)).await;
    assert!(acked.iter().all(|r| r.is_ok()), "{acked:?}");
    // SIGKILL with more in flight, and restart. Spawned, so each send is handed to the
    // producer now (a send future does nothing until polled); the kill must land while some
    // are still unacknowledged, or it proves nothing.
    let acked_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let in_flight: Vec<_> = (500..1000)
        .map(|i| {
            let (sent, acked_so_far) = (send(i), acked_so_far.clone());
            tokio::spawn(async move {
                let r = sent.await;
                if r.is_ok() {
                    acked_so_far.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                r
            })
        })
        .collect();
    tokio::task::yield_now().await;
    broker.crash();
    let acked_before_the_kill = acked_so_far.load(std::sync::atomic::Ordering::SeqCst);
    broker.restart_stopped();
    let late: Vec<_> = futures_util::future::join_all(in_flight)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(late.iter().all(|r| r.is_ok()), "{late:?}");
    assert!(
        acked_before_the_kill < 500,
        "all 500 were acknowledged before the kill: nothing was in flight"
    );

    let consumer: BaseConsumer = config(&broker)
        .set("group.id", "crash-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let meta = consumer.fetch_metadata(Some("crash"), TIMEOUT).unwrap();
    let partitions = meta.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("crash", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = HashMap::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while seen.len() < 1000 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            *seen.entry(v).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 1000, "every acknowledged message is there");
    assert!(seen.values().all(|&n| n == 1), "none twice");
}
