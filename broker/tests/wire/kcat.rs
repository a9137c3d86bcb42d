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
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    kcat(&broker, &["-P", "-t", "lp"], "first\n");
    let consumer = Command::new("kcat")
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
