//! `kafka-perf`: producer and consumer throughput through the Kafka protocol with `rdkafka`, like
//! Kafka's own perf-test scripts, printed beside the storage engine's append rate measured in the
//! same run on the same disk (the protocol's overhead is the ratio).
//!
//! ```text
//! cargo run --release -p loadtest --bin kafka-perf -- --messages 1000000 --size 100 --flush fsync
//! cargo run --release -p loadtest --bin kafka-perf -- --brokers 127.0.0.1:9092   # external
//! ```
//! Without `--brokers` it starts the broker in-process on a free loopback port with a temp data
//! dir and the given flush policy.
//!
//! With `--tls` the in-process broker has a second listener, SSL (certificates made in the run),
//! and the produce phase runs three times in a row: plaintext, TLS, plaintext again, each to a
//! topic of its own on the same broker and disk; TLS is printed as a share of the two plaintext
//! runs around it, so the ratio is what encryption costs on this machine.
//!
//! `--acls` does the same with a SASL listener instead, producing as a user whose requests the
//! ACLs check (SCRAM login, then an ACL scan per Produce): what authorization costs.
//!
//! Consume is measured twice, with librdkafka's default settings and with the services' tuned
//! ones (`fetch.queue.backoff.ms` 20 instead of 1000, see `services::kafka`), beside kcat reading
//! the same log in the same run (when kcat is installed). The order path's own pattern follows:
//! 64 tasks on one idempotent acks=all producer, each waiting for its ack before its next message
//! (one message per request, as `POST /buy` does), closed loop and then open loop at
//! `--order-rate`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use broker::clock::SystemClock;
use broker::log::{FlushPolicy, LogConfig, PartitionLog};
use broker::{EmbeddedBroker, NodeConfig};
use clap::Parser;
use loadtest::latency::Latencies;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Clone, Parser)]
#[command(
    about = "Produce/consume throughput through the Kafka protocol, beside the storage engine"
)]
struct Args {
    /// Bootstrap servers of a running broker or cluster; default: start one in-process.
    #[arg(long)]
    brokers: Option<String>,
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// Bytes of each message value.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Flush policy of the in-process broker and of the storage ceiling.
    #[arg(long, default_value = "fsync")]
    flush: FlushPolicy,
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Partitions of the topic (created by the tool); messages are spread round-robin.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Group sizes for the consumer-group phase (manual commit per poll batch); `--groups`
    /// without a value skips it.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1,2,3")]
    groups: Vec<usize>,
    /// Producer acks: all, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value_t = false)]
    idempotence: bool,
    /// Messages of the order-path phase (closed loop); 0 skips the phase.
    #[arg(long, default_value_t = 100_000)]
    order_messages: usize,
    /// linger.ms of the order-path producer (the API's default is 0).
    #[arg(long, default_value_t = 0.0)]
    order_linger_ms: f64,
    /// Produce requests in flight of the order-path producer (default: the API's).
    #[arg(long, default_value_t = services::api::enqueue::MAX_IN_FLIGHT)]
    order_in_flight: u32,
    /// Arrival rate of the order-path phase's open loop (msgs/s), for 5 seconds.
    #[arg(long, default_value_t = 20_000.0)]
    order_rate: f64,
    /// Also produce over a TLS listener of the in-process broker, beside plaintext in the same
    /// run.
    #[arg(long, default_value_t = false, conflicts_with = "brokers")]
    tls: bool,
    /// Also produce as a SASL user whose every request the ACLs check, beside plaintext (whose
    /// clients are super users) in the same run.
    #[arg(long, default_value_t = false, conflicts_with_all = ["brokers", "tls"])]
    acls: bool,
    /// Where the in-process broker and the storage ceiling write (must be a real disk).
    #[arg(long, default_value = "target/perf-data")]
    dir: std::path::PathBuf,
}

/// Records each message's ack latency (send to delivery report).
struct Acks {
    latencies: Mutex<Latencies>,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                if let Ok(mut l) = self.latencies.lock() {
                    l.record(sent.elapsed());
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

fn mb(bytes: f64, d: Duration) -> f64 {
    bytes / d.as_secs_f64() / 1e6
}

/// The ceiling: the same records appended straight to a partition log (1 MiB batches, as
/// librdkafka fills them under load, same flush policy, 8 appends in flight).
fn storage_ceiling(args: &Args) -> anyhow::Result<Duration> {
    let dir = args.dir.join("ceiling");
    let _ = std::fs::remove_dir_all(&dir);
    let config = LogConfig {
        flush: args.flush,
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    };
    let (log, _) = PartitionLog::open(&dir, config, Arc::new(SystemClock))?;
    let mut batches = broker::perf::make_batches(args.messages, args.size, 1 << 20);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let took = rt.block_on(broker::perf::append_all(&log, &mut batches, 8))?;
    log.close()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(took)
}

/// Creates the topic with `--partitions` partitions (an existing one is reused as it is).
fn create_topic(args: &Args, brokers: &str) -> anyhow::Result<()> {
    create_topic_named(args, brokers, &args.topic, &[])
}

/// A client's security settings (`security.protocol`, `ssl.ca.location`, ...).
type Security = [(&'static str, String)];

fn create_topic_named(
    args: &Args,
    brokers: &str,
    name: &str,
    security: &Security,
) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in security {
        config.set(*k, v);
    }
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = config.create()?;
    let topic = NewTopic::new(name, args.partitions, TopicReplication::Fixed(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics([&topic], &AdminOptions::new()))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("create topic {t}: {e}"),
        }
    }
    Ok(())
}

fn produce(
    args: &Args,
    brokers: &str,
    topic: &str,
    security: &Security,
) -> anyhow::Result<(Duration, Latencies)> {
    let ctx = Acks {
        latencies: Mutex::new(Latencies::with_capacity(args.messages)),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let mut config = ClientConfig::new();
    for (k, v) in security {
        config.set(*k, v);
    }
    let producer: ThreadedProducer<Acks> = config
        .set("bootstrap.servers", brokers)
        .set("acks", &args.acks)
        .set("enable.idempotence", args.idempotence.to_string())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(ctx)
        .context("create producer")?;
    let payload = vec![b'x'; args.size];
    let start = Instant::now();
    for i in 0..args.messages {
        let mut record: BaseRecord<'_, (), [u8], Box<Instant>> =
            BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
                .partition((i % args.partitions as usize) as i32)
                .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("produce failed: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flush producer")?;
    let took = start.elapsed();
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx.first_error.lock().ok().and_then(|f| f.clone());
        bail!("{failed} messages failed, first: {first:?}");
    }
    let latencies = ctx
        .latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    if latencies.len() != args.messages {
        bail!("{} acks for {} messages", latencies.len(), args.messages);
    }
    Ok((took, latencies))
}

/// Messages a group member handles between two commits, like a Java consumer's max.poll.records.
const POLL_BATCH: usize = 500;

/// A consumer group of `members` reads the whole topic, each member committing after every poll
/// batch. Returns (time from the first message to the last, commits made).
fn consume_group(
    args: &Args,
    brokers: &str,
    members: usize,
    settings: ConsumerSettings,
) -> anyhow::Result<(Duration, u64)> {
    use std::sync::atomic::AtomicUsize;
    let consumed = Arc::new(AtomicUsize::new(0));
    let commits = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None::<Instant>));
    let group = format!("kafka-perf-{members}-{settings:?}-{}", std::process::id());
    let mut threads = Vec::new();
    for _ in 0..members {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        settings.apply(&mut config);
        let consumer: BaseConsumer = config.create().context("create group consumer")?;
        consumer.subscribe(&[&args.topic])?;
        let (consumed, commits, first) = (consumed.clone(), commits.clone(), first.clone());
        let total = args.messages;
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut batch = 0usize;
            let mut idle_since = Instant::now();
            while consumed.load(Ordering::Relaxed) < total {
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(_)) => {
                        if let Ok(mut f) = first.lock() {
                            f.get_or_insert_with(Instant::now);
                        }
                        batch += 1;
                        consumed.fetch_add(1, Ordering::Relaxed);
                        idle_since = Instant::now();
                    }
                    Some(Err(e)) => bail!("group consume failed: {e}"),
                    None if idle_since.elapsed() > Duration::from_secs(60) => {
                        bail!("group consumer stalled")
                    }
                    None => {}
                }
                if batch >= POLL_BATCH || (batch > 0 && consumed.load(Ordering::Relaxed) >= total) {
                    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Async)?;
                    commits.fetch_add(1, Ordering::Relaxed);
                    batch = 0;
                }
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("group consumer thread panicked"))??;
    }
    let started = first
        .lock()
        .ok()
        .and_then(|f| *f)
        .unwrap_or_else(Instant::now);
    Ok((started.elapsed(), commits.load(Ordering::Relaxed)))
}

/// librdkafka's defaults, or the settings the services' consumers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsumerSettings {
    Default,
    Tuned,
}

impl ConsumerSettings {
    fn apply(self, c: &mut ClientConfig) {
        if self == ConsumerSettings::Tuned {
            c.set("fetch.queue.backoff.ms", "20");
        }
    }

    fn label(self) -> &'static str {
        match self {
            ConsumerSettings::Default => "default settings",
            ConsumerSettings::Tuned => "fetch.queue.backoff.ms=20",
        }
    }
}

fn consume(args: &Args, brokers: &str, settings: ConsumerSettings) -> anyhow::Result<Duration> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-perf")
        .set("enable.auto.commit", "false");
    settings.apply(&mut config);
    let consumer: BaseConsumer = config.create().context("create consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..args.partitions {
        tpl.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let mut count = 0usize;
    let mut last_progress = Instant::now();
    while count < args.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if m.payload().map_or(0, <[u8]>::len) != args.size {
                    bail!("message at offset {} has the wrong size", m.offset());
                }
                count += 1;
                last_progress = Instant::now();
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None if last_progress.elapsed() > Duration::from_secs(30) => {
                bail!("consumer stalled at {count} of {} messages", args.messages)
            }
            None => {}
        }
    }
    Ok(start.elapsed())
}

/// kcat reading the whole topic from the beginning to its end, timed: what a C client reaches on
/// this log, in this run. `None` without kcat.
fn kcat_read(args: &Args, brokers: &str) -> Option<Duration> {
    let start = Instant::now();
    let out = std::process::Command::new("kcat")
        .args([
            "-b",
            brokers,
            "-C",
            "-t",
            &args.topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "\\n",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let took = start.elapsed();
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    (out.status.success() && lines == args.messages).then_some(took)
}

/// (requests answered, seconds spent) for `api`, from the in-process broker's own metrics.
fn request_stats(e: &EmbeddedBroker, api: &str) -> (f64, f64) {
    let text = e
        .broker()
        .metrics
        .render(&e.broker().topics, &e.broker().groups);
    let read = |what: &str| {
        let prefix = format!("broker_request_duration_seconds_{what}{{api=\"{api}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (read("count"), read("sum"))
}

/// Tasks in the order-path phase, like the API's concurrent buys.
const ORDER_TASKS: usize = 64;

/// Messages sent before the order-path phase is timed: one per key, so every partition has
/// had a request.
const ORDER_WARM_UP: usize = 64;

/// The order path's pattern: one idempotent acks=all producer as the API configures it, 64
/// tasks each sending one message and waiting for its ack before the next; closed loop, then
/// open loop at `--order-rate` for 5 s (latency from when a message was due).
fn order_path(args: &Args, brokers: &str) -> anyhow::Result<()> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let topic = format!("{}-orders", args.topic);
    create_topic(
        &Args {
            topic: topic.clone(),
            partitions: 6,
            ..args.clone()
        },
        brokers,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The services' client settings (Nagle off among them), then the API producer's.
    let producer: FutureProducer = services::kafka::client_config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", args.order_linger_ms.to_string())
        .set(
            "max.in.flight.requests.per.connection",
            args.order_in_flight.to_string(),
        )
        .create()
        .context("create producer")?;
    let payload: Arc<[u8]> = vec![b'x'; args.size].into();
    let topic: Arc<str> = topic.into();
    let send = move |i: usize| {
        let (producer, payload, topic) = (producer.clone(), payload.clone(), topic.clone());
        async move {
            let key = (i % 64).to_string();
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&*payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
        }
    };
    rt.block_on(async {
        // Warm-up, untimed: the first send waits for the producer id and the topic's metadata
        // (about 500 ms), which is start-up, not the steady state measured below.
        for r in futures_util::future::join_all((0..ORDER_WARM_UP).map(&send)).await {
            r?;
        }
        // Closed loop.
        let next = Arc::new(AtomicU64::new(0));
        let total = args.order_messages as u64;
        let start = Instant::now();
        let tasks: Vec<_> = (0..ORDER_TASKS)
            .map(|_| {
                let (next, send) = (next.clone(), send.clone());
                tokio::spawn(async move {
                    let mut lat = Latencies::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok::<_, KafkaError>(lat);
                        }
                        let t = Instant::now();
                        send(i as usize).await?;
                        lat.record(t.elapsed());
                    }
                })
            })
            .collect();
        let mut all = Latencies::default();
        for t in tasks {
            all.extend(t.await??);
        }
        let took = start.elapsed();
        let (p50, p99, max) = all.summary_ms();
        println!(
            "order path, {ORDER_TASKS} tasks each waiting for its ack, 6 partitions, linger {} ms, {} in flight: {:>8.0} msgs/s  ack p50 {p50:.2} ms p99 {p99:.2} ms max {max:.1} ms",
            args.order_linger_ms,
            args.order_in_flight,
            total as f64 / took.as_secs_f64()
        );
        // Open loop at the target rate. Tokio's timer has a 1 ms resolution, so the messages
        // due within a millisecond go out together at its end: each is timed from when it was
        // handed to the producer (what the broker and the client take; the API hands a buy
        // over the moment it arrives), and, so that a sender falling behind is not hidden,
        // also from when it was due.
        let n = (args.order_rate * 5.0) as usize;
        let interval = Duration::from_secs_f64(1.0 / args.order_rate);
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..n {
            let due = start + interval.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
            let (tx, send) = (tx.clone(), send.clone());
            tokio::spawn(async move {
                let handed = Instant::now();
                let r = send(i).await;
                let _ = tx.send(r.map(|_| (handed.elapsed(), due.elapsed())));
            });
        }
        drop(tx);
        let (mut acks, mut from_due) = (Latencies::default(), Latencies::default());
        while let Some(r) = rx.recv().await {
            let (ack, since_due) = r?;
            acks.record(ack);
            from_due.record(since_due);
        }
        let (p50, p99, max) = acks.summary_ms();
        let (d50, d99, _) = from_due.summary_ms();
        println!(
            "order path, open loop at {:.0} msgs/s for 5 s: ack p50 {p50:.2} ms p99 {p99:.2} ms max {max:.1} ms (target p99 < 5 ms); from when due (1 ms timer ticks): p50 {d50:.2} ms p99 {d99:.2} ms",
            args.order_rate
        );
        Ok::<_, anyhow::Error>(())
    })
}

/// Produce over TLS, then plaintext again: TLS as a share of the plaintext runs before
/// (`plain_before`, msgs/s) and after it.
/// Produce through the `other` listener with `security` (to the run's topic with `suffix`,
/// printed as `label`), then plaintext again: the first as a share of the plaintext runs
/// before (`plain_before`, msgs/s) and after it.
fn beside_plaintext(
    args: &Args,
    plain: &str,
    other: &str,
    security: &Security,
    (suffix, label): (&str, &str),
    plain_before: f64,
) -> anyhow::Result<()> {
    let bytes = (args.messages * args.size) as f64;
    let topic = format!("{}-{suffix}", args.topic);
    create_topic_named(args, other, &topic, security)?;
    let (took, mut latencies) = produce(args, other, &topic, security)?;
    let rate = args.messages as f64 / took.as_secs_f64();
    let (p50, p99, max) = latencies.summary_ms();
    let again = format!("{}-plain-again", args.topic);
    create_topic_named(args, plain, &again, &[])?;
    let (took_again, _) = produce(args, plain, &again, &[])?;
    let plain_after = args.messages as f64 / took_again.as_secs_f64();
    println!(
        "produce, {label}:  {:>10.0} msgs/s {:>8.1} MB/s  ack latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms  = {:.0}% of plaintext (same run: {:.0} msgs/s before, {:.0} after)",
        rate,
        mb(bytes, took),
        p50,
        p99,
        max,
        100.0 * rate / ((plain_before + plain_after) / 2.0),
        plain_before,
        plain_after
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("warn");
    let args = Args::parse();
    if args.messages == 0 || args.size == 0 || args.partitions < 1 {
        bail!("--messages, --size and --partitions must be positive");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let bytes = (args.messages * args.size) as f64;

    let ceiling = storage_ceiling(&args)?;
    let broker_dir = args.dir.join("broker");
    let _ = std::fs::remove_dir_all(&broker_dir);
    let pki = if args.tls {
        let dir = args.dir.join("tls");
        std::fs::create_dir_all(&dir)?;
        Some(broker::test_pki::TestPki::generate(&dir, "kafka-perf")?)
    } else {
        None
    };
    let embedded = match &args.brokers {
        Some(_) => None,
        None => {
            let mut config = NodeConfig {
                log: LogConfig {
                    flush: args.flush,
                    ..LogConfig::default()
                },
                ..NodeConfig::local(&broker_dir)
            };
            if let Some(pki) = &pki {
                config.listeners = broker::listeners::parse(
                    "PLAIN://127.0.0.1:0,TLS://127.0.0.1:0",
                    None,
                    Some("PLAIN:PLAINTEXT,TLS:SSL"),
                )?;
                config.tls = Some(broker::tls::TlsFiles {
                    certificate: pki.broker.cert.clone(),
                    key: pki.broker.key.clone(),
                    client_ca: None,
                    client_auth: broker::tls::ClientAuth::None,
                });
            }
            if args.acls {
                // A SASL listener whose user may write only by ACL; the plaintext listener's
                // clients (User:ANONYMOUS) are super users, so the first and last runs skip
                // the ACL scan that the SASL user's requests go through.
                config.listeners = broker::listeners::parse(
                    "PLAIN://127.0.0.1:0,SASL://127.0.0.1:0",
                    None,
                    Some("PLAIN:PLAINTEXT,SASL:SASL_PLAINTEXT"),
                )?;
                let mut users = broker::auth::Users::empty();
                users.add_entries(["perf:user:perf-secret"], "kafka-perf")?;
                config.sasl = Some(std::sync::Arc::new(broker::auth::SaslConfig {
                    users,
                    mechanisms: broker::auth::Mechanism::ALL.to_vec(),
                }));
                config.authorization.super_users = vec!["User:ANONYMOUS".into()];
                // Ten ACLs on other topics before the one that applies: a realistic list to
                // scan, not a single entry.
                let mut acls = Vec::new();
                for i in 0..10 {
                    acls.extend(broker::acl::Acl::parse_entry(&format!(
                        "User:other-{i};ALLOW;WRITE,READ;TOPIC;LITERAL;other-{i}"
                    ))?);
                }
                acls.extend(broker::acl::Acl::parse_entry(&format!(
                    "User:perf;ALLOW;WRITE,DESCRIBE,CREATE;TOPIC;PREFIXED;{}",
                    args.topic
                ))?);
                config.authorization.acls = acls;
            }
            Some(EmbeddedBroker::start(config)?)
        }
    };
    let brokers = match (&args.brokers, &embedded) {
        (Some(b), _) => b.clone(),
        (None, Some(e)) => e.addr.clone(),
        (None, None) => unreachable!("an embedded broker is started when --brokers is absent"),
    };
    println!(
        "kafka-perf: {} messages x {} B, acks={}, idempotence={}, broker {} ({})",
        args.messages,
        args.size,
        args.acks,
        args.idempotence,
        brokers,
        if embedded.is_some() {
            format!("in-process, flush {}", args.flush)
        } else {
            "external".to_string()
        }
    );
    let ceiling_rate = args.messages as f64 / ceiling.as_secs_f64();
    println!(
        "storage ceiling (same run, PartitionLog append, 1 MiB batches, flush {}): {:>10.0} msgs/s {:>8.1} MB/s",
        args.flush,
        ceiling_rate,
        mb(bytes, ceiling)
    );

    create_topic(&args, &brokers)?;
    let (took, mut latencies) = produce(&args, &brokers, &args.topic, &[])?;
    let rate = args.messages as f64 / took.as_secs_f64();
    let (p50, p99, max) = latencies.summary_ms();
    println!(
        "produce:  {:>10.0} msgs/s {:>8.1} MB/s  ack latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms  = {:.0}% of storage",
        rate,
        mb(bytes, took),
        p50,
        p99,
        max,
        100.0 * rate / ceiling_rate
    );
    if let (Some(pki), Some(e)) = (&pki, &embedded) {
        let tls_addr = e
            .listener("TLS")
            .context("the in-process broker has no TLS listener")?;
        let security = [
            ("security.protocol", "SSL".to_string()),
            ("ssl.ca.location", pki.ca.display().to_string()),
        ];
        beside_plaintext(
            &args,
            &brokers,
            &tls_addr,
            &security,
            ("tls", "tls (SSL listener)"),
            rate,
        )?;
    }
    if let (true, Some(e)) = (args.acls, &embedded) {
        let sasl_addr = e
            .listener("SASL")
            .context("the in-process broker has no SASL listener")?;
        let security = [
            ("security.protocol", "SASL_PLAINTEXT".to_string()),
            ("sasl.mechanism", "SCRAM-SHA-256".to_string()),
            ("sasl.username", "perf".to_string()),
            ("sasl.password", "perf-secret".to_string()),
        ];
        beside_plaintext(
            &args,
            &brokers,
            &sasl_addr,
            &security,
            ("acls", "acls (SCRAM user, ACLs checked per request)"),
            rate,
        )?;
    }

    let kcat = kcat_read(&args, &brokers);
    if let Some(k) = kcat {
        println!(
            "kcat -C -e (same log, same run): {:>10.0} msgs/s (the client ceiling)",
            args.messages as f64 / k.as_secs_f64()
        );
    }
    for settings in [ConsumerSettings::Default, ConsumerSettings::Tuned] {
        let took = consume(&args, &brokers, settings)?;
        let rate = args.messages as f64 / took.as_secs_f64();
        println!(
            "consume, {:<26} {:>10.0} msgs/s {:>8.1} MB/s  = {:.0}% of storage append{}",
            settings.label(),
            rate,
            mb(bytes, took),
            100.0 * rate / ceiling_rate,
            kcat.map(|k| format!(
                ", {:.0}% of kcat",
                100.0 * rate * k.as_secs_f64() / args.messages as f64
            ))
            .unwrap_or_default()
        );
    }
    for &members in &args.groups {
        for settings in [ConsumerSettings::Default, ConsumerSettings::Tuned] {
            let (took, commits) = consume_group(&args, &brokers, members, settings)?;
            let rate = args.messages as f64 / took.as_secs_f64();
            println!(
                "group of {members}, {:<26} {:>10.0} msgs/s {:>8.1} MB/s  {:>8.0} commits/s  = {:.0}% of storage append",
                settings.label(),
                rate,
                mb(bytes, took),
                commits as f64 / took.as_secs_f64(),
                100.0 * rate / ceiling_rate
            );
        }
    }
    if args.order_messages > 0 {
        let before = embedded.as_ref().map(|e| request_stats(e, "Produce"));
        order_path(&args, &brokers)?;
        if let (Some((n0, s0)), Some(e)) = (before, &embedded) {
            let (n1, s1) = request_stats(e, "Produce");
            let n = (n1 - n0).max(1.0);
            println!(
                "order path, broker side: {n:.0} Produce requests ({:.1} messages each), {:.3} ms each on average from arrival to answer",
                (ORDER_WARM_UP as f64 + args.order_messages as f64 + args.order_rate * 5.0) / n,
                1000.0 * (s1 - s0) / n
            );
        }
    }
    // The clients share the machine; the broker's own time per API says what the protocol layer
    // costs on the server side, apart from librdkafka's per-message work.
    if let Some(e) = &embedded {
        for api in ["Produce", "Fetch"] {
            let busy = e.busy_seconds(api);
            if busy > 0.0 {
                let rate = args.messages as f64 / busy;
                println!(
                    "broker time in {api:<8} {busy:>6.3} s = {rate:>10.0} msgs/s of broker time = {:.0}% of storage append",
                    100.0 * rate / ceiling_rate
                );
            }
        }
    }
    drop(embedded);
    let _ = std::fs::remove_dir_all(&broker_dir);
    Ok(())
}
