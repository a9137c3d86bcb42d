//! Real Go clients against the real broker binary: franz-go v1.22.3 (with kadm v1.20.0) and
//! sarama v1.61.1. Neither shares protocol code with librdkafka, kafka-python or the Rust
//! clients the other tests use; each picks its own request versions and runs consumer groups its
//! own way, and Go services are a large share of Kafka users.
//!
//! The Go program is `tests/compat/go` (`compat`, built once per test run into
//! `CARGO_TARGET_TMPDIR`). Its `franz` and `sarama` subcommands create a topic through the
//! client's admin API, produce 2000 keyed records idempotently with acks=all, read them back in
//! a consumer group with manual commits (each exactly once, in order per partition), leave, and
//! check that a second member resumes from the commits; they exit 0 only if every check held.
//! A third test SIGKILLs the broker while franz-go is producing and checks every acknowledged
//! record against the log with kcat.
//!
//! Go (1.26 or newer, which the pinned client versions require) must be installed; without it
//! the tests fail with a message saying so, they are never skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::harness::{kcat, BrokerProcess, KillOnDrop};

/// A lone consumer's first JoinGroup waits out the initial rebalance delay (3 s by default);
/// each Go run joins a fresh group twice, so a short delay keeps the runs short.
const GROUP_FLAGS: &[&str] = &["--group-initial-rebalance-delay-ms", "300"];

/// The Go program bounds itself at 150 s (its watchdog); this is the backstop past that.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// A first build downloads (from the module proxy) and compiles both clients.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// Runs `command` with stdout and stderr in files under `out_dir`, killing it past `limit`.
/// Returns its exit status (None: killed at the limit), stdout and stderr.
fn run_bounded(
    mut command: Command,
    limit: Duration,
    out_dir: &Path,
    name: &str,
) -> (Option<ExitStatus>, String, String) {
    let stdout_path = out_dir.join(format!("{name}.stdout"));
    let stderr_path = out_dir.join(format!("{name}.stderr"));
    let child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status,
        std::fs::read_to_string(&stdout_path).unwrap(),
        std::fs::read_to_string(&stderr_path).unwrap(),
    )
}

/// Builds the Go program once for all tests in this binary (they run on parallel threads;
/// the `OnceLock` makes the others wait for the one build).
fn compat_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/go");
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-compat");
        std::fs::create_dir_all(&out_dir).unwrap();
        let binary = out_dir.join("compat");
        // Fail, not skip, without Go: a missing toolchain must not turn into a green run.
        match Command::new("go").arg("version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`go version` failed ({}); these tests need Go 1.26 or newer on PATH",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!(
                "cannot run `go` ({e}); these tests need Go 1.26 or newer on PATH \
                 (https://go.dev/dl/) and access to the Go module proxy for the first build"
            ),
        }
        let mut build = Command::new("go");
        build
            .arg("build")
            .arg("-o")
            .arg(&binary)
            .arg("./")
            .current_dir(&module);
        let (status, stdout, stderr) = run_bounded(build, BUILD_LIMIT, &out_dir, "go-build");
        assert!(
            status.is_some_and(|s| s.success()),
            "go build in {} failed ({status:?}):\n{stdout}{stderr}",
            module.display()
        );
        binary
    })
}

/// Runs `compat <args...>`; panics with all its output unless it exits 0. Returns stdout.
fn run_compat(args: &[&str], out_dir: &Path) -> String {
    let mut command = Command::new(compat_binary());
    command.args(args);
    let (status, stdout, stderr) = run_bounded(command, RUN_LIMIT, out_dir, args[0]);
    let verdict = match status {
        Some(s) if s.success() => {
            // The summary names the request versions the client used; visible with --nocapture.
            println!("compat {}: {}", args[0], stdout.trim());
            return stdout;
        }
        Some(s) => format!("exited with {s}"),
        None => format!("was killed after {RUN_LIMIT:?}"),
    };
    panic!("compat {args:?} {verdict}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
}

/// One client's whole round trip (see the module comment), then a clean broker shutdown.
fn check_client(subcommand: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), GROUP_FLAGS);
    let stdout = run_compat(&[subcommand, &broker.addr()], dir.path());
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        summary.contains("\"consumed\":2000") && summary.contains("\"second_late\":10"),
        "unexpected summary: {summary}"
    );
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

#[test]
fn franz_go_admin_idempotent_produce_and_group_commits() {
    check_client("franz");
}

#[test]
fn sarama_admin_idempotent_produce_and_group_commits() {
    check_client("sarama");
}

/// Records franz-go is asked to produce in the crash test, at about 2000 a second.
const CRASH_RECORDS: usize = 6000;
/// Acknowledgements to wait for before the SIGKILL: well into the run, far from its end.
const CRASH_AFTER_ACKS: usize = 1000;

/// franz-go produces idempotently with acks=all while the broker is SIGKILLed and restarted
/// on the same port and data. franz-go retries the interrupted batches with their original
/// producer id, epoch and sequence numbers, so afterwards the log must hold every acknowledged
/// record exactly once, at the partition and offset its acknowledgement named, and no record
/// twice (a retried batch that had been written before the crash must not be appended again).
#[test]
fn franz_go_acknowledged_records_survive_a_broker_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let topic = "go-crash";
    let stderr_path = dir.path().join("franz-produce-verify.stderr");
    let mut child = KillOnDrop(
        Command::new(compat_binary())
            .args([
                "franz-produce-verify",
                &broker.addr(),
                topic,
                &CRASH_RECORDS.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    // Lines arrive as the acknowledgements do; a thread collects them so this one can watch
    // the count and time the crash.
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        let stdout = child.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        })
    };
    let acks = |lines: &Mutex<Vec<String>>| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("ACK "))
            .count()
    };
    let output = |lines: &Mutex<Vec<String>>| {
        let stdout = lines.lock().unwrap().join("\n");
        let stderr = std::fs::read_to_string(&stderr_path).unwrap();
        let tail: String = stdout.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        format!("--- stdout (last lines, newest first) ---\n{tail}\n--- stderr ---\n{stderr}")
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    while acks(&lines) < CRASH_AFTER_ACKS {
        assert!(
            Instant::now() < deadline && child.0.try_wait().unwrap().is_none(),
            "no {CRASH_AFTER_ACKS} acknowledgements within 60 s\n{}",
            output(&lines)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    broker.crash_and_restart();
    let acked_before_crash = acks(&lines);

    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "franz-produce-verify did not finish within {RUN_LIMIT:?}\n{}",
            output(&lines)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    assert!(
        status.success(),
        "franz-produce-verify {status}\n{}",
        output(&lines)
    );
    let lines = lines.lock().unwrap().clone();
    let summary = lines.last().cloned().unwrap_or_default();
    println!("compat franz-produce-verify: {summary}");
    assert!(
        acked_before_crash < CRASH_RECORDS,
        "every record was acknowledged before the crash; the crash proved nothing"
    );

    // value -> (partition, offset) the producer was told
    let mut acked: HashMap<String, (i32, i64)> = HashMap::new();
    let mut failed = Vec::new();
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["ACK", value, partition, offset] => {
                let previous = acked.insert(
                    value.to_string(),
                    (partition.parse().unwrap(), offset.parse().unwrap()),
                );
                assert!(previous.is_none(), "{value} acknowledged twice");
            }
            ["NACK", ..] => failed.push(line.clone()),
            _ => {}
        }
    }
    // franz-go retries without limit; a failed record means the broker answered a retry with
    // an error franz-go would not retry (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER after the restart).
    assert!(
        failed.is_empty(),
        "{} records failed, first: {}",
        failed.len(),
        failed[0]
    );
    assert_eq!(
        acked.len(),
        CRASH_RECORDS,
        "not every record was acknowledged"
    );

    let out = kcat(
        &broker,
        &[
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %s\n",
        ],
        "",
    );
    let mut stored: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut f = line.splitn(3, ' ');
        let (p, o, v) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        stored
            .entry(v.to_string())
            .or_default()
            .push((p.parse().unwrap(), o.parse().unwrap()));
    }
    let mut problems = Vec::new();
    for (value, at) in &acked {
        match stored.get(value).map(Vec::as_slice) {
            None => problems.push(format!("{value}: acknowledged at {at:?}, not in the log")),
            Some([found]) if found == at => {}
            Some(found) => problems.push(format!(
                "{value}: acknowledged at {at:?}, in the log at {found:?}"
            )),
        }
    }
    for (value, at) in &stored {
        if !acked.contains_key(value) {
            problems.push(format!("{value}: in the log at {at:?}, never produced"));
        }
    }
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} problems after the crash ({acked_before_crash} acknowledged before it), first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
    eprintln!(
        "franz-go crash test: {acked_before_crash} of {CRASH_RECORDS} acknowledged before the \
         SIGKILL, all {CRASH_RECORDS} in the log exactly once afterwards"
    );
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}
