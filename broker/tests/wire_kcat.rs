//! Real clients against the real broker binary: kcat (librdkafka 2.0.2) lists metadata,
//! produces with keys and headers, consumes from the beginning, and finds everything again
//! after a graceful restart.

mod harness;

use harness::{kcat, BrokerProcess};

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
