//! The services' Kafka clients come back within a fraction of a second of a broker's return:
//! their reconnect backoff is capped (`services::kafka::client_config`). librdkafka's default
//! doubles it up to 10 s, so after a 6 s outage an API instance kept answering 503 for up to
//! 9.4 s more (issue 28).
//!
//! A stand-in for a broker that is away (it accepts each connection and closes it at once)
//! records when a client built from `client_config` tries again: after 5 s of failures the
//! attempts must still come every few hundred milliseconds.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseProducer;
use services::kafka::{client_config, consumer_config, RECONNECT_BACKOFF_MAX_MS};

/// Connection attempts to a listener that drops every connection, for `run`.
fn attempts_while_away(run: Duration, client: impl FnOnce(&str) -> Box<dyn Send>) -> Vec<Instant> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let mut seen = Vec::new();
    let started = Instant::now();
    let _client = client(&addr);
    while started.elapsed() < run {
        match listener.accept() {
            Ok((conn, _)) => {
                seen.push(Instant::now());
                drop(conn);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    seen
}

fn assert_keeps_trying(kind: &str, attempts: &[Instant]) {
    let since = attempts.first().copied().unwrap_or_else(Instant::now);
    // The gaps once the backoff has had time to grow (after 2 s of failures).
    let late: Vec<Duration> = attempts
        .windows(2)
        .filter(|w| w[0].duration_since(since) > Duration::from_secs(2))
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        late.len() >= 4,
        "{kind}: only {} attempts after the first 2 s: {:?}",
        late.len(),
        attempts
            .iter()
            .map(|a| a.duration_since(since))
            .collect::<Vec<_>>()
    );
    // librdkafka jitters the backoff by up to +50%; a little scheduling slack on top.
    let limit = Duration::from_millis(RECONNECT_BACKOFF_MAX_MS * 3 / 2 + 150);
    let worst = late.iter().max().copied().unwrap_or_default();
    assert!(
        worst <= limit,
        "{kind}: {worst:?} between reconnect attempts (limit {limit:?}); gaps {late:?}"
    );
    eprintln!(
        "{kind}: {} attempts, the longest gap after 2 s {worst:?}",
        attempts.len()
    );
}

#[test]
fn producers_and_consumers_keep_trying_a_broker_that_is_away() {
    let run = Duration::from_secs(5);
    let producer = attempts_while_away(run, |addr| {
        let p: BaseProducer = client_config(addr).create().unwrap();
        // Something to deliver keeps the producer asking for the broker.
        let _ = p.send(rdkafka::producer::BaseRecord::<(), _>::to("t").payload("x"));
        Box::new(p)
    });
    assert_keeps_trying("producer", &producer);
    let consumer = attempts_while_away(run, |addr| {
        let c: BaseConsumer = consumer_config(addr)
            .set("group.id", "reconnect-test")
            .create()
            .unwrap();
        c.subscribe(&["t"]).unwrap();
        Box::new(c)
    });
    assert_keeps_trying("consumer", &consumer);
}
