//! Hostile or careless clients against the real broker binary: the broker's own limits hold
//! (threads, connections, topics and partitions, topic configs), whatever clients ask for.

use super::client::{create, good_batch, produce_to, Client};
use super::harness::BrokerProcess;

fn threads(broker: &BrokerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", broker.pid()))
        .unwrap()
        .count()
}

/// Log flushes are served by a small pool shared by every partition, not a thread per
/// partition: 2000 partitions leave the thread count where a handful of partitions put it, and
/// acks=all produces to them still complete (each waits for an fdatasync by the pool).
#[test]
fn two_thousand_partitions_do_not_take_two_thousand_threads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Client::connect(&broker);
    assert_eq!(create(&mut c, "small", 4, 1, &[]), 0);
    let with_four = threads(&broker);
    for name in ["wide-a", "wide-b"] {
        assert_eq!(create(&mut c, name, 1000, 1, &[]), 0, "create {name}");
    }
    let with_2004 = threads(&broker);
    eprintln!("threads: {with_four} with 4 partitions, {with_2004} with 2004");
    assert!(
        with_2004 < 64,
        "{with_2004} threads for 2004 partitions (4 partitions: {with_four})"
    );
    for (name, p) in [
        ("wide-a", 0),
        ("wide-a", 999),
        ("wide-b", 500),
        ("small", 3),
    ] {
        let (code, base, msg) = produce_to(&mut c, name, p, good_batch());
        assert_eq!((code, base), (0, 0), "produce to {name}-{p}: {msg}");
    }
}
