//! Real Python clients against the real broker binary: kafka-python 3.0.12 (pure Python) and
//! confluent-kafka 2.16.1 (librdkafka 2.16.0). Each runs one script from `tests/compat/`:
//! admin CreateTopics (and its "already exists" error), idempotent and gzip producers with keys
//! and headers, and group-less consumers reading everything back exactly once, in order
//! (`*_compat.py`); consumer groups (`*_groups.py`): assign()-mode commits and resuming from
//! them, subscribe() members splitting a topic through a rebalance, committed offsets read back
//! by admin clients, ListGroups and DescribeGroups.
//!
//! The packages are pinned and must be installed (`.ci/run` does it); a missing one fails the
//! test with the command to install it, it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::BrokerProcess;

const INSTALL: &str = "bash scripts/test.sh (it makes .venv with them), or: python3 -m venv .venv && .venv/bin/pip install kafka-python==3.0.12 confluent-kafka==2.16.1";

/// The Python the client tests run: `SECKILL_PYTHON`, else the project's virtual environment
/// (`.venv`, which `scripts/test.sh` creates: a stock Debian or Ubuntu refuses `pip install`
/// into the system Python), else `python3`.
fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SECKILL_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}
/// Each script keeps itself well under this; past it the script is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Fails unless `python3` can import `module` from the distribution `dist` at `version`.
pub(crate) fn require_python_package(module: &str, dist: &str, version: &str) {
    let out = Command::new(python())
        .arg("-c")
        .arg(format!(
            "import importlib.metadata, {module}; print(importlib.metadata.version('{dist}'))"
        ))
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); install Python 3, then: {INSTALL}"));
    assert!(
        out.status.success(),
        "Python package {dist} is not installed ({}). Install it with: {INSTALL}",
        String::from_utf8_lossy(&out.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
    );
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        found, version,
        "{dist} {found} is installed, these tests are pinned to {version}. Install it with: {INSTALL}"
    );
}

/// Runs `tests/compat/<script> <addr>`; panics with its output unless it exits 0. Returns stdout.
fn run_script(broker: &BrokerProcess, script: &str, out_dir: &Path) -> String {
    run_script_with(broker, script, &[], out_dir)
}

/// Runs `tests/compat/<script> <addr> <args...>`, as [`run_script`].
pub(crate) fn run_script_with(
    broker: &BrokerProcess,
    script: &str,
    args: &[&str],
    out_dir: &Path,
) -> String {
    run_script_at(&broker.addr(), script, args, out_dir)
}

/// Runs `tests/compat/<script> <addr> <args...>` against the listener at `addr`.
pub(crate) fn run_script_at(addr: &str, script: &str, args: &[&str], out_dir: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let stdout_path = out_dir.join(format!("{script}.stdout"));
    let stderr_path = out_dir.join(format!("{script}.stderr"));
    let mut child = Command::new(python())
        .arg(&path)
        .arg(addr)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start python3");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let verdict = match status {
        Some(s) if s.success() => return stdout,
        Some(s) => format!("exited with {s}"),
        None => format!("was killed after {SCRIPT_TIMEOUT:?}"),
    };
    panic!(
        "{} {verdict}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        path.display()
    );
}

/// Bytes of record batches the broker holds for `topic`, over all its partitions. The batches,
/// not the files' lengths: an active segment's file is extended ahead of the appends with zeros
/// (see the broker's storage engine, preallocation).
fn stored_log_bytes(data_dir: &Path, topic: &str) -> u64 {
    let topic_dir: PathBuf = data_dir.join("topics").join(topic);
    let mut total = 0;
    for partition in std::fs::read_dir(&topic_dir).expect("topic directory exists") {
        let partition = partition.unwrap().path();
        if !partition.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(partition).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "log") {
                let bytes = std::fs::read(&file).unwrap();
                let mut pos = 0;
                while let Ok(h) = broker::log::BatchHeader::parse(&bytes[pos..]) {
                    pos += h.total_len();
                }
                total += pos as u64;
            }
        }
    }
    total
}

/// The script printed `GZIP_TOPIC <name> <uncompressed value bytes>`: the broker must have stored
/// the gzip batches as sent, far smaller than the values. (librdkafka silently sends uncompressed
/// batches if the advertised Produce range does not start at 0; this is where that would show.)
fn assert_gzip_stored_compressed(stdout: &str, data_dir: &Path) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GZIP_TOPIC "))
        .unwrap_or_else(|| panic!("no GZIP_TOPIC line in the script's output:\n{stdout}"));
    let (topic, raw) = line.split_once(' ').expect("GZIP_TOPIC <name> <bytes>");
    let raw: u64 = raw.parse().expect("uncompressed byte count");
    let stored = stored_log_bytes(data_dir, topic);
    assert!(
        stored > 0 && stored * 10 < raw,
        "topic {topic}: {stored} bytes stored for {raw} bytes of highly compressible values; \
         the producer did not compress"
    );
}

fn check_client(module: &str, dist: &str, version: &str, script: &str) {
    require_python_package(module, dist, version);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data_dir, &[]);
    let stdout = run_script(&broker, script, dir.path());
    assert_gzip_stored_compressed(&stdout, &data_dir);
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

#[test]
fn kafka_python_admin_produce_consume() {
    check_client("kafka", "kafka-python", "3.0.12", "kafka_python_compat.py");
}

#[test]
fn confluent_kafka_admin_idempotent_gzip_produce_consume() {
    check_client(
        "confluent_kafka",
        "confluent-kafka",
        "2.16.1",
        "confluent_kafka_compat.py",
    );
}

/// A lone consumer's first JoinGroup waits out the initial rebalance delay (3 s by default);
/// 300 ms keeps that short and still gathers members that start together into one generation.
const GROUP_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "300"];

fn check_groups(module: &str, dist: &str, version: &str, script: &str) {
    require_python_package(module, dist, version);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), GROUP_FLAGS);
    run_script(&broker, script, dir.path());
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

#[test]
fn kafka_python_assign_commits_and_subscribe_group() {
    check_groups("kafka", "kafka-python", "3.0.12", "kafka_python_groups.py");
}

#[test]
fn confluent_kafka_subscribe_commit_resume_and_admin_groups() {
    check_groups(
        "confluent_kafka",
        "confluent-kafka",
        "2.16.1",
        "confluent_kafka_groups.py",
    );
}

/// Retention runs every 200 ms, so an altered retention.bytes shows its effect within a second.
const ADMIN_FLAGS: &[&str] = &[
    "--retention-check-ms",
    "200",
    "--group-initial-rebalance-delay-ms",
    "300",
];

/// The `<KEY> <topic> <number>` line the script printed.
fn printed(stdout: &str, key: &str) -> (String, i64) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|l| l.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {key} line in the script's output:\n{stdout}"));
    let (topic, n) = line.split_once(' ').expect("<topic> <number>");
    (topic.to_string(), n.parse().expect("a number"))
}

/// Admin APIs through KafkaAdminClient (see the script's docstring), then, after a restart: the
/// start DeleteRecords moved is still the start, and the segments retention deleted after the
/// altered retention.bytes are gone from disk.
#[test]
fn kafka_python_admin_configs_partitions_records_groups() {
    require_python_package("kafka", "kafka-python", "3.0.12");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data_dir, ADMIN_FLAGS);
    let stdout = run_script(&broker, "kafka_python_admin.py", dir.path());
    let (retained, start) = printed(&stdout, "RETENTION_TOPIC");
    assert!(
        !data_dir
            .join(format!("topics/{retained}/0/00000000000000000000.log"))
            .exists(),
        "the first segment of {retained} is still on disk after retention moved the start to {start}"
    );
    let (deleted, offset) = printed(&stdout, "DELETED_RECORDS");
    broker.restart();
    let mut c = super::client::Client::connect(&broker);
    let (code, _, _) = super::client::fetch(&mut c, &deleted, 0, offset - 1, 1 << 20);
    assert_eq!(
        code, 1,
        "OFFSET_OUT_OF_RANGE below the start after a restart"
    );
    let (code, hwm, bytes) = super::client::fetch(&mut c, &deleted, 0, offset, 1 << 20);
    assert_eq!((code, hwm), (0, 10));
    assert!(!bytes.is_empty());
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

/// Admin APIs through confluent-kafka's AdminClient (see the script's docstring).
#[test]
fn confluent_kafka_admin_configs_partitions_records_groups() {
    require_python_package("confluent_kafka", "confluent-kafka", "2.16.1");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), ADMIN_FLAGS);
    run_script(&broker, "confluent_kafka_admin.py", dir.path());
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}
