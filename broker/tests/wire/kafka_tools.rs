//! Apache Kafka's own command-line tools and Java client (Apache Kafka 4.1.1) against the real
//! broker binary. The broker promises that real Kafka clients and Kafka's own tools work against
//! it unchanged; the other wire tests check librdkafka and Python clients, and this file checks
//! the reference implementation: the seed course's topics / console producer / console consumer
//! sequence word for word, the admin tools (`kafka-topics`, `kafka-configs`, `kafka-get-offsets`,
//! `kafka-delete-records`, `kafka-consumer-groups`), the verifiable producer and consumer (also
//! across a SIGKILL of the broker), the perf tools, and `tests/compat/JavaClientCompat.java`
//! with kafka-clients. Assertions are on what the tools print (offsets, partition counts, config
//! values), not only on exit codes.
//!
//! The jars come from `scripts/apache-kafka.sh fetch` (Maven, cached under
//! target/apache-kafka); Java 17+ must be installed. Missing either fails the tests, it never
//! skips them. Every JVM runs under `timeout`, so a hanging tool fails its test instead of
//! blocking the suite.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{BrokerProcess, KillOnDrop};

/// Longest any one tool may run; a JVM starts in 1-2 s here, and the slowest tool run
/// (the paced verifiable producer across a broker restart) takes well under this.
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/apache-kafka.sh")
}

/// `scripts/apache-kafka.sh fetch`, once per test binary: the jars must be there before the
/// tools run (idempotent and quick once cached).
fn fetched() {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let out = Command::new(script())
            .arg("fetch")
            .output()
            .expect("run scripts/apache-kafka.sh");
        assert!(
            out.status.success(),
            "scripts/apache-kafka.sh fetch failed (needs mvn and java 17+): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `timeout` around a command: SIGTERM at `limit`, SIGKILL 5 s later.
fn bounded(limit: Duration) -> Command {
    let mut c = Command::new("timeout");
    c.arg("--kill-after=5").arg(limit.as_secs().to_string());
    c
}

/// Runs `scripts/apache-kafka.sh tool NAME ARGS` fed `stdin`, killed after [`TOOL_TIMEOUT`];
/// returns its output whatever its exit status.
fn tool_output<S: AsRef<OsStr>>(name: &str, args: &[S], stdin: &str) -> Output {
    fetched();
    let mut child = bounded(TOOL_TIMEOUT)
        .arg(script())
        .arg("tool")
        .arg(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/apache-kafka.sh");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    // From a thread: a tool that does not read its input must not block the test on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs a tool as [`tool_output`]; it must exit 0 (else the test fails showing its stderr).
/// Returns its stdout.
pub(crate) fn tool<S: AsRef<OsStr> + std::fmt::Debug>(
    name: &str,
    args: &[S],
    stdin: &str,
) -> String {
    let out = tool_output(name, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} exited with {} (124/137: killed after {TOOL_TIMEOUT:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn start_broker(dir: &Path) -> BrokerProcess {
    // A short initial rebalance delay: every group here starts empty, and each of Kafka's
    // consumers would otherwise wait out the default 3 s.
    BrokerProcess::start(dir, &["--group-initial-rebalance-delay-ms", "300"])
}

fn create_topic(addr: &str, topic: &str, partitions: u32) {
    let out = tool(
        "kafka-topics.sh",
        &[
            "--create",
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--bootstrap-server",
            addr,
        ],
        "",
    );
    assert!(out.contains(&format!("Created topic {topic}.")), "{out}");
}

/// `kafka-get-offsets.sh` for `time` (-1 latest, -2 earliest, -3 max timestamp, -4 earliest
/// local, ...): partition -> offset, from its `topic:partition:offset` lines.
fn get_offsets(addr: &str, topic: &str, time: &str) -> BTreeMap<i32, i64> {
    let out = tool(
        "kafka-get-offsets.sh",
        &["--bootstrap-server", addr, "--topic", topic, "--time", time],
        "",
    );
    out.lines()
        .filter_map(|l| {
            let mut f = l.rsplitn(3, ':');
            let offset = f.next()?.parse().ok()?;
            let partition = f.next()?.parse().ok()?;
            (f.next()? == topic).then_some((partition, offset))
        })
        .collect()
}

/// The console consumer reading from the beginning until it has `max` records (or 20 s pass):
/// the values, in order.
pub(crate) fn consume(addr: &str, topic: &str, max: usize, extra: &[&str]) -> Vec<String> {
    let max = max.to_string();
    let mut args = vec![
        "--topic",
        topic,
        "--from-beginning",
        "--bootstrap-server",
        addr,
        "--max-messages",
        &max,
        "--timeout-ms",
        "20000",
    ];
    args.extend_from_slice(extra);
    tool("kafka-console-consumer.sh", &args, "")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The JSON events a verifiable tool printed, one per line (other lines are skipped).
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("name").is_some())
        .collect()
}

fn named<'a>(events: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["name"] == name)
}

/// (partition, offset, value) of every `producer_send_success` event.
fn acknowledged(events: &[Value]) -> Vec<(i64, i64, String)> {
    named(events, "producer_send_success")
        .map(|e| {
            (
                e["partition"].as_i64().unwrap(),
                e["offset"].as_i64().unwrap(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs `kafka-verifiable-consumer.sh` in group `group` until it consumed `max` records and
/// checks its events: per partition the consumed ranges follow one another without gap or
/// overlap from `start` (nothing is consumed twice), every commit succeeds and lands right after
/// what was consumed. Returns each partition's consumed offsets.
fn verifiable_consume(addr: &str, topic: &str, group: &str, max: usize) -> BTreeMap<i64, Vec<i64>> {
    let out = tool(
        "kafka-verifiable-consumer.sh",
        &[
            "--bootstrap-server",
            addr,
            "--group-id",
            group,
            "--topic",
            topic,
            "--max-messages",
            &max.to_string(),
            "--reset-policy",
            "earliest",
        ],
        "",
    );
    let ev = events(&out);
    let mut consumed: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut total = 0;
    for e in &ev {
        match e["name"].as_str() {
            Some("records_consumed") => {
                for p in e["partitions"].as_array().unwrap() {
                    let partition = p["partition"].as_i64().unwrap();
                    let (min, max) = (
                        p["minOffset"].as_i64().unwrap(),
                        p["maxOffset"].as_i64().unwrap(),
                    );
                    let count = p["count"].as_i64().unwrap();
                    assert_eq!(count, max - min + 1, "a gap inside a batch: {e}\n{out}");
                    let seen = consumed.entry(partition).or_default();
                    let next = seen.last().map_or(0, |l| l + 1);
                    assert_eq!(min, next, "partition {partition}: consumed from {min}, expected {next} (a gap or a repeat)\n{out}");
                    seen.extend(min..=max);
                    total += count;
                }
            }
            Some("offsets_committed") => {
                assert_eq!(e["success"], true, "a failed commit: {e}\n{out}");
                for o in e["offsets"].as_array().unwrap() {
                    let partition = o["partition"].as_i64().unwrap();
                    let offset = o["offset"].as_i64().unwrap();
                    let next = consumed
                        .get(&partition)
                        .and_then(|s| s.last())
                        .map_or(0, |l| l + 1);
                    assert_eq!(
                        offset, next,
                        "partition {partition}: committed {offset}, consumed up to {next}\n{out}"
                    );
                }
            }
            _ => {}
        }
    }
    assert_eq!(total, max as i64, "records consumed\n{out}");
    assert!(
        named(&ev, "offsets_committed").next().is_some(),
        "no commit\n{out}"
    );
    consumed
}

/// The seed course's sequence, word for word: create the topic, produce two lines with the
/// console producer, read them back with the console consumer. (The course's
/// `kafka-storage.sh format` step is for Kafka's own server: our broker needs none.)
#[test]
fn seed_course_console_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let addr = broker.addr();
    let out = tool(
        "kafka-topics.sh",
        &[
            "--create",
            "--topic",
            "seckill",
            "--bootstrap-server",
            &addr,
        ],
        "",
    );
    assert_eq!(out.trim(), "Created topic seckill.");
    tool(
        "kafka-console-producer.sh",
        &["--topic", "seckill", "--bootstrap-server", &addr],
        "first seckill order\nsecond seckill order\n",
    );
    let got = consume(&addr, "seckill", 2, &[]);
    assert_eq!(got, ["first seckill order", "second seckill order"]);
}

/// The admin tools on one topic, each checked by what the next one prints.
#[test]
fn admin_tools_topics_configs_offsets_records_groups() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let addr = broker.addr();
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        v.extend(["--bootstrap-server".to_string(), addr.clone()]);
        v
    };
    create_topic(&addr, "tools", 1);
    let lines: String = (0..10).map(|i| format!("line {i}\n")).collect();
    tool(
        "kafka-console-producer.sh",
        &with(&["--topic", "tools"]),
        &lines,
    );

    // kafka-topics: describe, alter --partitions, list.
    let out = tool(
        "kafka-topics.sh",
        &with(&["--describe", "--topic", "tools"]),
        "",
    );
    assert!(
        out.contains("PartitionCount: 1\tReplicationFactor: 1"),
        "{out}"
    );
    assert!(
        out.contains("Partition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"),
        "{out}"
    );
    tool(
        "kafka-topics.sh",
        &with(&["--alter", "--topic", "tools", "--partitions", "3"]),
        "",
    );
    let out = tool(
        "kafka-topics.sh",
        &with(&["--describe", "--topic", "tools"]),
        "",
    );
    assert!(out.contains("PartitionCount: 3"), "{out}");
    for p in 0..3 {
        assert!(out.contains(&format!("Partition: {p}\tLeader: 1")), "{out}");
    }
    let out = tool("kafka-topics.sh", &with(&["--list"]), "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["tools"]);

    // kafka-configs: a topic's dynamic configs, an --add-config, --all, and the broker.
    let describe_topic = &[
        "--describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "tools",
    ];
    let out = tool("kafka-configs.sh", &with(describe_topic), "");
    assert!(
        out.contains("Dynamic configs for topic tools are:"),
        "{out}"
    );
    assert!(!out.contains("retention.ms"), "no override yet: {out}");
    let out = tool(
        "kafka-configs.sh",
        &with(&[
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "tools",
            "--add-config",
            "retention.ms=3600000",
        ]),
        "",
    );
    assert!(
        out.contains("Completed updating config for topic tools."),
        "{out}"
    );
    let out = tool("kafka-configs.sh", &with(describe_topic), "");
    assert!(
        out.contains("retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}"),
        "{out}"
    );
    let out = tool(
        "kafka-configs.sh",
        &with(&[
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "tools",
            "--all",
        ]),
        "",
    );
    assert!(out.contains("segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:segment.bytes=1073741824}"), "{out}");
    assert!(out.contains("retention.ms=3600000"), "{out}");
    let out = tool(
        "kafka-topics.sh",
        &with(&["--describe", "--topic", "tools"]),
        "",
    );
    assert!(out.contains("Configs: retention.ms=3600000"), "{out}");
    // Broker configs come from flags: no dynamic ones, and --all lists the static ones.
    let out = tool(
        "kafka-configs.sh",
        &with(&["--describe", "--entity-type", "brokers"]),
        "",
    );
    assert!(out.contains("Dynamic configs for broker 1 are:"), "{out}");
    let out = tool(
        "kafka-configs.sh",
        &with(&[
            "--describe",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--all",
        ]),
        "",
    );
    assert!(out.contains("All configs for broker 1 are:"), "{out}");
    assert!(out.contains("broker.id=1 sensitive=false"), "{out}");
    assert!(
        out.contains("log.retention.ms=604800000 sensitive=false"),
        "{out}"
    );

    // kafka-get-offsets: latest, earliest, max timestamp, earliest local (ListOffsets v8).
    assert_eq!(
        get_offsets(&addr, "tools", "-1"),
        BTreeMap::from([(0, 10), (1, 0), (2, 0)])
    );
    assert_eq!(
        get_offsets(&addr, "tools", "-2"),
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );
    assert_eq!(
        get_offsets(&addr, "tools", "earliest-local"),
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );
    let max_ts = get_offsets(&addr, "tools", "max-timestamp");
    assert!(
        max_ts.get(&0).is_some_and(|o| (0..10).contains(o)),
        "{max_ts:?}"
    );

    // kafka-delete-records: below offset 4 of partition 0.
    let json = dir.path().join("delete.json");
    std::fs::write(
        &json,
        r#"{"partitions":[{"topic":"tools","partition":0,"offset":4}],"version":1}"#,
    )
    .unwrap();
    let out = tool(
        "kafka-delete-records.sh",
        &with(&["--offset-json-file", json.to_str().unwrap()]),
        "",
    );
    assert!(
        out.contains("partition: tools-0\tlow_watermark: 4"),
        "{out}"
    );
    assert_eq!(get_offsets(&addr, "tools", "-2")[&0], 4);

    // kafka-consumer-groups: a console consumer commits, then list, describe, reset, describe.
    let got = consume(&addr, "tools", 6, &["--group", "cg"]);
    assert_eq!(
        got,
        (4..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    let out = tool("kafka-consumer-groups.sh", &with(&["--list"]), "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["cg"]);
    let describe = |out: &str| -> HashMap<i64, (i64, i64, i64)> {
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 6 && f[0] == "cg" && f[1] == "tools")
            .map(|f| {
                let n = |i: usize| f[i].parse::<i64>().unwrap_or(-1);
                (n(2), (n(3), n(4), n(5)))
            })
            .collect()
    };
    let out = tool(
        "kafka-consumer-groups.sh",
        &with(&["--describe", "--group", "cg"]),
        "",
    );
    assert_eq!(describe(&out)[&0], (10, 10, 0), "{out}");
    let out = tool(
        "kafka-consumer-groups.sh",
        &with(&["--describe", "--group", "cg", "--state"]),
        "",
    );
    assert!(out.contains("Empty"), "{out}");
    let out = tool(
        "kafka-consumer-groups.sh",
        &with(&[
            "--reset-offsets",
            "--to-earliest",
            "--execute",
            "--group",
            "cg",
            "--topic",
            "tools",
        ]),
        "",
    );
    // GROUP TOPIC PARTITION NEW-OFFSET
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["cg", "tools", "0", "4"]),
        "{out}"
    );
    let out = tool(
        "kafka-consumer-groups.sh",
        &with(&["--describe", "--group", "cg"]),
        "",
    );
    assert_eq!(describe(&out)[&0], (4, 10, 6), "{out}");
    // The group reads again from the reset position.
    let got = consume(&addr, "tools", 6, &["--group", "cg"]);
    assert_eq!(
        got,
        (4..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    let out = tool(
        "kafka-consumer-groups.sh",
        &with(&["--describe", "--group", "cg"]),
        "",
    );
    assert_eq!(describe(&out)[&0], (10, 10, 0), "{out}");
}

/// Verifiable producer (acks=-1) and consumer: every acknowledged message is consumed, once.
#[test]
fn verifiable_producer_and_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let addr = broker.addr();
    create_topic(&addr, "verify", 3);
    let out = tool(
        "kafka-verifiable-producer.sh",
        &[
            "--bootstrap-server",
            &addr,
            "--topic",
            "verify",
            "--acks",
            "-1",
            "--max-messages",
            "300",
        ],
        "",
    );
    let ev = events(&out);
    let acked = acknowledged(&ev);
    assert_eq!(acked.len(), 300, "{out}");
    assert_eq!(named(&ev, "producer_send_error").count(), 0, "{out}");
    let data = named(&ev, "tool_data").next().expect("tool_data event");
    assert_eq!(
        (data["sent"].as_i64(), data["acked"].as_i64()),
        (Some(300), Some(300))
    );

    let consumed = verifiable_consume(&addr, "verify", "verify-group", 300);
    let consumed: HashSet<(i64, i64)> = consumed
        .iter()
        .flat_map(|(p, offs)| offs.iter().map(move |o| (*p, *o)))
        .collect();
    for (p, o, v) in &acked {
        assert!(
            consumed.contains(&(*p, *o)),
            "acknowledged {v} at {p}/{o} was not consumed"
        );
    }
}

/// The verifiable producer keeps producing while the broker is SIGKILLed and restarted under
/// it; afterwards every message it reported acknowledged is in the log, at the offset it was
/// acknowledged with, exactly once.
#[test]
fn verifiable_producer_across_broker_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path());
    let addr = broker.addr();
    create_topic(&addr, "crash", 2);
    fetched();
    // 400 messages at 100/s: the kill lands after 100 acknowledgements, about a second in, and
    // the producer still has about three seconds of sending to do across the restart.
    let mut child = KillOnDrop(
        bounded(TOOL_TIMEOUT)
            .arg(script())
            .args([
                "tool",
                "kafka-verifiable-producer.sh",
                "--bootstrap-server",
                &addr,
            ])
            .args(["--topic", "crash", "--acks", "-1", "--max-messages", "400"])
            .args(["--throughput", "100"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the verifiable producer"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut successes = 0;
    while successes < 100 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("fewer than 100 acknowledgements:\n{}", lines.join("\n")));
        successes += line.contains("\"producer_send_success\"") as usize;
        lines.push(line);
    }
    broker.crash_and_restart();
    lines.extend(rx.iter());
    reader.join().unwrap();
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    let out = lines.join("\n");
    assert!(
        status.success(),
        "producer exited with {status}\n{out}\n--- stderr ---\n{stderr}"
    );

    let ev = events(&out);
    let acked = acknowledged(&ev);
    // The kill landed mid-run: the producer went on being acknowledged by the restarted broker.
    assert!(acked.len() > successes, "{out}");
    eprintln!(
        "verifiable producer: {} of 400 acknowledged, {successes} before the SIGKILL",
        acked.len()
    );
    // The acknowledged messages: each once, at its own offset.
    let latest = get_offsets(&addr, "crash", "-1");
    let total: i64 = latest.values().sum();
    let formatted = consume(
        &addr,
        "crash",
        total as usize,
        &[
            "--property",
            "print.partition=true",
            "--property",
            "print.offset=true",
        ],
    );
    // "Partition:P\tOffset:O\tVALUE"
    let mut in_log: HashMap<(i64, i64), String> = HashMap::new();
    let mut values = HashSet::new();
    for l in &formatted {
        let f: Vec<&str> = l.splitn(3, '\t').collect();
        let p = f[0].trim_start_matches("Partition:").parse().unwrap();
        let o = f[1].trim_start_matches("Offset:").parse().unwrap();
        assert!(
            values.insert(f[2].to_string()),
            "{} stored twice:\n{}",
            f[2],
            formatted.join("\n")
        );
        in_log.insert((p, o), f[2].to_string());
    }
    assert_eq!(in_log.len() as i64, total, "{formatted:?}");
    for (p, o, v) in &acked {
        assert_eq!(
            in_log.get(&(*p, *o)),
            Some(v),
            "acknowledged {v} at {p}/{o} is not there after the crash"
        );
    }
    // And a group reads all of it once, committing as it goes.
    verifiable_consume(&addr, "crash", "crash-group", total as usize);
}

/// The perf tools: 20000 acks=all records in, the same 20000 out.
#[test]
fn producer_and_consumer_perf_tests() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let addr = broker.addr();
    let servers = format!("bootstrap.servers={addr}");
    let out = tool(
        "kafka-producer-perf-test.sh",
        &[
            "--topic",
            "perf",
            "--num-records",
            "20000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            &servers,
            "acks=all",
        ],
        "",
    );
    assert!(out.contains("20000 records sent"), "{out}");
    assert_eq!(
        get_offsets(&addr, "perf", "-1"),
        BTreeMap::from([(0, 20000)])
    );
    let out = tool(
        "kafka-consumer-perf-test.sh",
        &[
            "--bootstrap-server",
            &addr,
            "--topic",
            "perf",
            "--messages",
            "20000",
        ],
        "",
    );
    // A CSV header and one row; data.consumed.in.nMsg is the record count.
    let mut rows = out.lines().filter(|l| l.contains(','));
    let header: Vec<&str> = rows.next().expect("header").split(", ").collect();
    let row: Vec<&str> = rows.next().expect("result row").split(", ").collect();
    let col = header
        .iter()
        .position(|h| *h == "data.consumed.in.nMsg")
        .expect("data.consumed.in.nMsg column");
    assert_eq!(row[col], "20000", "{out}");
}

/// kafka-clients 4.1.1 itself: `tests/compat/JavaClientCompat.java` (admin, idempotent
/// producer, classic consumer group with manual commits, transactions refused).
#[test]
fn java_client_admin_producer_consumer_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    fetched();
    let classpath = Command::new(script())
        .arg("classpath")
        .output()
        .expect("scripts/apache-kafka.sh classpath");
    assert!(classpath.status.success());
    let classpath = String::from_utf8(classpath.stdout)
        .unwrap()
        .trim()
        .to_string();
    let log_config = Path::new(classpath.trim_end_matches('*')).join("log4j2.properties");
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/JavaClientCompat.java");
    let out = bounded(TOOL_TIMEOUT)
        .arg("java")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            log_config.display()
        ))
        .arg("-cp")
        .arg(&classpath)
        .arg(&program)
        .arg(broker.addr())
        .stdin(Stdio::null())
        .output()
        .expect("run java (17+)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK"),
        "{} exited with {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
