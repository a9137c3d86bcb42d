//! Real clients against the real broker binary: kcat (librdkafka 2.0.2) lists metadata,
//! produces with keys and headers, consumes from the beginning, and finds everything again
//! after a graceful restart.

use super::harness::{kcat, BrokerProcess};

#[test]
fn kcat_produce_consume_with_keys_and_headers_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &[]);
    let input: String = (0..200).map(|i| format!("key{i}:value {i}\n")).collect();
    kcat(
        &broker,
        &[
            "-P",
            "-t",
            "orders",
            "-K:",
            "-H",
            "source=test",
            "-H",
            "n=1",
        ],
        &input,
    );

    let consume = |broker: &BrokerProcess| {
        let out = kcat(
            broker,
            &[
                "-C",
                "-t",
                "orders",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k|%s|%o|%h\n",
            ],
            "",
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let expected: String = (0..200)
        .map(|i| format!("key{i}|value {i}|{i}|source=test,n=1\n"))
        .collect();
    assert_eq!(consume(&broker), expected);

    let meta = String::from_utf8(kcat(&broker, &["-L"], "").stdout).unwrap();
    assert!(
        meta.contains(&format!("broker 1 at {}", broker.addr())),
        "{meta}"
    );
    assert!(
        meta.contains("topic \"orders\" with 1 partitions"),
        "{meta}"
    );

    broker.restart();
    assert_eq!(consume(&broker), expected);
    // Appends continue after the restart at the next offset.
    kcat(
        &broker,
        &["-P", "-t", "orders", "-K:"],
        "late:after restart\n",
    );
    let out = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "orders",
            "-o",
            "200",
            "-e",
            "-q",
            "-f",
            "%k|%s|%o\n",
        ],
        "",
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "late|after restart|200\n"
    );
    assert!(broker.stop().success());
}

/// A consumer parked in a long Fetch (max wait 10 s) is woken by the append, not by its timeout.
#[test]
fn a_parked_fetch_wakes_up_when_data_arrives() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    kcat(&broker, &["-P", "-t", "lp"], "first\n");
    let consumer = super::harness::kcat_command()
        .args([
            "-b",
            &broker.addr(),
            "-C",
            "-t",
            "lp",
            "-o",
            "1",
            "-c",
            "1",
            "-q",
        ])
        .args(["-X", "fetch.wait.max.ms=10000", "-f", "%s@%o\n"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the consumer connect and park its Fetch at offset 1.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    kcat(&broker, &["-P", "-t", "lp"], "second\n");
    let out = consumer.wait_with_output().unwrap();
    let waited = sent.elapsed();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "second@1\n");
    assert!(
        waited < Duration::from_secs(5),
        "consumer woke after {waited:?}: long poll not woken by the append"
    );
}

/// `kcat -G <group> -e` (balanced consumer, exit at the end) reads every partition of a topic,
/// empty ones included, and exits 0 once each assigned partition reported its end: first from
/// the beginning, then again from the group's committed offsets with nothing new to read.
/// (librdkafka reports a partition's end when a Fetch at the high watermark answers with it as
/// the last stable offset; kcat 1.7 counts one end per assigned partition.)
#[test]
fn kcat_balanced_consumer_exits_at_the_end_of_its_partitions() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use super::harness::KillOnDrop;

    let dir = tempfile::tempdir().unwrap();
    // The 3 s initial rebalance delay is Kafka's default too; a test need not wait for it.
    let broker = BrokerProcess::start(dir.path(), &["--group-initial-rebalance-delay-ms", "100"]);
    kcat(&broker, &["-L"], "");
    let mut c = super::client::Client::connect(&broker);
    assert_eq!(super::client::create(&mut c, "eof", 3, 1, &[]), 0);
    for p in 0..2 {
        let lines: String = (0..50).map(|i| format!("p{p}-{i}\n")).collect();
        kcat(&broker, &["-P", "-t", "eof", "-p", &p.to_string()], &lines);
    }
    let run = |extra: &[&str]| -> (Duration, String) {
        let start = Instant::now();
        let mut child = KillOnDrop(
            super::harness::kcat_command()
                .args([
                    "-b",
                    &broker.addr(),
                    "-G",
                    "eof-readers",
                    "-e",
                    "-f",
                    "%s\n",
                ])
                .args(extra)
                .arg("eof")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kcat is installed"),
        );
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                let mut out = String::new();
                use std::io::Read;
                child
                    .0
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                assert!(status.success(), "kcat -G -e failed: {status}");
                return (start.elapsed(), out);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "kcat -G -e did not exit within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (took, out) = run(&["-o", "beginning"]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..2)
        .flat_map(|p| (0..50).map(move |i| format!("p{p}-{i}")))
        .collect();
    want.sort();
    assert_eq!(got, want, "kcat -G -e read something else");
    eprintln!("kcat -G -o beginning -e: exited after {took:?}");
    let (took, out) = run(&[]);
    assert_eq!(out, "", "nothing new after the committed offsets");
    eprintln!("kcat -G -e from committed offsets: exited after {took:?}");
}
