//! Named listeners and TLS, with real clients: kcat (librdkafka 2.0.2 with OpenSSL), rdkafka
//! (the bundled librdkafka 2.12.1, built with OpenSSL), kafka-python 3.0.12, confluent-kafka
//! 2.16.1 and Apache Kafka 4.1.1's Java client (its console tools), over SSL and over SASL_SSL
//! with SCRAM:
//! - each listener answers Metadata with its own advertised address;
//! - produce and consume over SSL and SASL_SSL, with every client;
//! - what must fail fails clearly and leaves the broker serving: a client trusting another CA,
//!   a broker certificate that expired, a plaintext client on the TLS port and a TLS client on
//!   the plaintext port, TLS 1.1, a missing client certificate where one is required;
//! - a renewed certificate is served without a restart, and a broken renewal keeps the old one.
//!
//! Certificates are made in the run (`broker::test_pki`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use broker::test_pki::{CertFiles, TestPki};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::harness::{kcat_output_at, metric, BrokerProcess};
use super::kafka_tools::{consume, tool};
use super::python::{require_python_package, run_script_at};
use super::sasl::{kcat_sasl, sasl_script_passed, ALICE_ACLS, USERS};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The three listeners every test broker here has: PLAIN (PLAINTEXT), TLS (SSL) and SECURE
/// (SASL_SSL).
const LISTENERS: [(&str, &str); 3] = [
    ("PLAIN", "PLAINTEXT"),
    ("TLS", "SSL"),
    ("SECURE", "SASL_SSL"),
];

/// A broker with the three listeners, the certificate `cert`, the users and ACLs of the SASL
/// tests, and clients without a login or client certificate (`User:ANONYMOUS`, on PLAIN and
/// TLS) trusted as super users; `extra` adds flags (client authentication).
fn tls_broker(dir: &Path, cert: &CertFiles, extra: &[&str]) -> BrokerProcess {
    let users = dir.join("users");
    std::fs::write(&users, USERS).unwrap();
    let mut args = vec![
        "--sasl-users-file",
        users.to_str().unwrap(),
        "--ssl-certificate-file",
        cert.cert.to_str().unwrap(),
        "--ssl-key-file",
        cert.key.to_str().unwrap(),
        "--super-users",
        "User:ANONYMOUS",
    ];
    args.extend(ALICE_ACLS);
    args.extend_from_slice(extra);
    BrokerProcess::start_listeners(&dir.join("data"), &LISTENERS, &args)
}

fn pki(dir: &Path, name: &str) -> TestPki {
    TestPki::generate(dir, name).expect("make test certificates")
}

/// kcat over SSL trusting `ca` (plus `extra` settings), ended after 30 s; the output whatever
/// the exit status.
fn kcat_tls(addr: &str, ca: &Path, extra: &[&str], args: &[&str], stdin: &str) -> Output {
    let ca = format!("ssl.ca.location={}", ca.display());
    let mut all = vec!["-X", "security.protocol=SSL", "-X", &ca];
    all.extend_from_slice(extra);
    all.extend_from_slice(args);
    kcat_output_at(addr, Some(TIMEOUT), &all, stdin)
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `broker 1 at HOST:PORT` line of `kcat -L`.
fn advertised(listing: &str) -> String {
    listing
        .lines()
        .find_map(|l| l.trim().strip_prefix("broker 1 at "))
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no broker line in {listing}"))
}

// ------------------------------------------------------------------------- listeners and kcat

/// Each listener tells its clients its own advertised address: the internal one for clients on
/// the internal network, the external one for the host.
#[test]
fn each_listener_advertises_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (internal, external) = (port(), port());
    let mut config = broker::NodeConfig::local(dir.path());
    config.listeners = broker::listeners::parse(
        &format!("INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}"),
        Some(&format!(
            "INTERNAL://broker.internal:{internal},EXTERNAL://localhost:{external}"
        )),
        Some("INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"),
    )
    .unwrap();
    let b = broker::EmbeddedBroker::start(config).unwrap();
    assert_eq!(b.addr, format!("127.0.0.1:{internal}"));
    for (listener, says) in [
        ("INTERNAL", format!("broker.internal:{internal}")),
        ("EXTERNAL", format!("localhost:{external}")),
    ] {
        let addr = b.listener(listener).unwrap();
        let out = kcat_output_at(&addr, Some(TIMEOUT), &["-L", "-m", "5"], "");
        assert_eq!(advertised(&ok(&out, "kcat -L")), says, "{listener}");
    }
}

#[test]
fn kcat_over_ssl_and_sasl_ssl_with_scram() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "main");
    let broker = tls_broker(dir.path(), &pki.broker, &[]);
    let (plain, tls, secure) = (
        broker.listener_addr("PLAIN"),
        broker.listener_addr("TLS"),
        broker.listener_addr("SECURE"),
    );

    // SSL: produce, consume, and Metadata names this listener.
    ok(
        &kcat_tls(&tls, &pki.ca, &[], &["-P", "-t", "tls-kcat"], "a\nb\nc\n"),
        "kcat -P over SSL",
    );
    let out = kcat_tls(
        &tls,
        &pki.ca,
        &[],
        &["-C", "-t", "tls-kcat", "-o", "beginning", "-e", "-q"],
        "",
    );
    assert_eq!(ok(&out, "kcat -C over SSL"), "a\nb\nc\n");
    let listing = ok(
        &kcat_tls(&tls, &pki.ca, &[], &["-L", "-m", "5"], ""),
        "kcat -L over SSL",
    );
    assert_eq!(advertised(&listing), tls);

    // SASL_SSL: the admin produces with SCRAM-SHA-512, alice reads with SCRAM-SHA-256; a wrong
    // password is refused with the broker's message, through TLS.
    let ca = format!("ssl.ca.location={}", pki.ca.display());
    let scram = |mech: &str, user: &str, pw: &str, args: &[&str], stdin: &str| {
        let security = ["security.protocol=SASL_SSL", ca.as_str()];
        kcat_sasl(&secure, &security, [mech, user, pw], args, stdin)
    };
    ok(
        &scram(
            "SCRAM-SHA-512",
            "admin",
            "admin-secret",
            &["-P", "-t", "sasl-ssl-kcat"],
            "x\ny\n",
        ),
        "kcat -P over SASL_SSL",
    );
    let out = scram(
        "SCRAM-SHA-256",
        "alice",
        "alice-secret",
        &["-C", "-t", "sasl-ssl-kcat", "-o", "beginning", "-e", "-q"],
        "",
    );
    assert_eq!(ok(&out, "kcat -C over SASL_SSL"), "x\ny\n");
    let err = failed(
        &scram("SCRAM-SHA-512", "alice", "wrong", &["-L", "-m", "5"], ""),
        "a wrong password over SASL_SSL",
    );
    assert!(
        err.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "{err}"
    );

    // The plaintext listener of the same broker serves the same topics, without SASL.
    let out = kcat_output_at(
        &plain,
        Some(TIMEOUT),
        &["-C", "-t", "tls-kcat", "-o", "beginning", "-e", "-q"],
        "",
    );
    assert_eq!(ok(&out, "kcat -C over PLAINTEXT"), "a\nb\nc\n");
}

// ---------------------------------------------------------------------------------- failures

#[test]
fn tls_failures_are_clear_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "main");
    let other = TestPki::generate(dir.path(), "other").unwrap();
    let mut broker = tls_broker(dir.path(), &pki.broker, &[]);
    let (plain, tls) = (broker.listener_addr("PLAIN"), broker.listener_addr("TLS"));
    let list = ["-L", "-m", "5"];

    // A client trusting another CA.
    let err = failed(
        &kcat_tls(&tls, &other.ca, &[], &list, ""),
        "a client trusting another CA",
    );
    assert!(err.contains("certificate verify failed"), "{err}");

    // A plaintext client on the TLS port: the broker reads no request from it.
    let err = failed(
        &kcat_output_at(&tls, Some(TIMEOUT), &list, ""),
        "a plaintext client on the TLS port",
    );
    assert!(err.contains("Disconnected"), "{err}");

    // A TLS client on the plaintext port.
    let err = failed(
        &kcat_tls(&plain, &pki.ca, &[], &list, ""),
        "a TLS client on the plaintext port",
    );
    assert!(err.contains("SSL handshake failed"), "{err}");

    // TLS 1.1 is refused; 1.2 and 1.3 are served.
    let s_client = |version: &str| {
        Command::new("openssl")
            .args(["s_client", "-connect", &tls, version, "-CAfile"])
            .arg(&pki.ca)
            .stdin(Stdio::null())
            .output()
            .expect("openssl is installed")
    };
    assert!(!s_client("-tls1_1").status.success(), "TLS 1.1 was served");
    for v in ["-tls1_2", "-tls1_3"] {
        let out = s_client(v);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "{v}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Every failure was counted, and the broker still serves on every listener.
    let handshakes = metric(
        &broker,
        "broker_connections_closed_by_broker_total{reason=\"tls_handshake\"}",
    )
    .unwrap_or(0.0);
    assert!(handshakes >= 3.0, "{handshakes} failed handshakes counted");
    assert!(broker.is_running(), "the broker died");
    ok(&kcat_tls(&tls, &pki.ca, &[], &list, ""), "kcat -L over SSL");
    ok(&kcat_output_at(&plain, Some(TIMEOUT), &list, ""), "kcat -L");
    assert!(broker.stop().success());

    // An expired broker certificate: refused by the client (librdkafka says the verification
    // failed; OpenSSL's own client says why).
    let expired = pki.expired_broker().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let broker = tls_broker(dir2.path(), &expired, &[]);
    let tls = broker.listener_addr("TLS");
    let err = failed(
        &kcat_tls(&tls, &pki.ca, &[], &list, ""),
        "a client of a broker whose certificate expired",
    );
    assert!(err.contains("certificate verify failed"), "{err}");
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &tls,
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(&pki.ca)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("certificate has expired"), "{text}");
}

/// rdkafka (the services' client) with a client certificate, against a broker that requires
/// one; a client without a certificate, or with one from another CA, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_rdkafka() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "main");
    let other = TestPki::generate(dir.path(), "other").unwrap();
    let ca = pki.ca.to_str().unwrap().to_string();
    // The client certificate's subject is its principal: the ACLs name it.
    let broker = tls_broker(
        dir.path(),
        &pki.broker,
        &[
            "--ssl-client-ca-file",
            &ca,
            "--ssl-client-auth",
            "required",
            "--acl",
            "User:O=seckill,CN=orders-api;ALLOW;WRITE,READ,CREATE;TOPIC;LITERAL;mtls",
            "--acl",
            "User:O=seckill,CN=orders-api;ALLOW;READ;GROUP;LITERAL;mtls",
        ],
    );
    let tls = broker.listener_addr("TLS");
    let config = |client: Option<&CertFiles>| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &tls)
            .set("security.protocol", "SSL")
            .set("ssl.ca.location", &ca);
        if let Some(files) = client {
            c.set("ssl.certificate.location", files.cert.to_str().unwrap())
                .set("ssl.key.location", files.key.to_str().unwrap());
        }
        c
    };

    let producer: FutureProducer = config(Some(&pki.client)).create().unwrap();
    for i in 0..5 {
        let v = format!("v{i}");
        producer
            .send(FutureRecord::<(), _>::to("mtls").payload(&v), TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .expect("a client with a certificate produces");
    }
    let consumer: BaseConsumer = config(Some(&pki.client))
        .set("group.id", "mtls")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("mtls", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while got.len() < 5 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(got, ["v0", "v1", "v2", "v3", "v4"]);

    let other_client = other
        .client_named("intruder", "intruder", "elsewhere")
        .unwrap();
    for (what, client) in [
        ("no client certificate", None),
        ("a certificate of another CA", Some(&other_client)),
    ] {
        let c: BaseConsumer = config(client).create().unwrap();
        assert!(
            c.fetch_metadata(None, Duration::from_secs(5)).is_err(),
            "a client with {what} got metadata"
        );
    }

    // A certificate of the right CA but another subject: connected, and refused by the ACLs,
    // which name the orders-api certificate only.
    let stranger = pki.client_named("stranger", "stranger", "seckill").unwrap();
    let producer: FutureProducer = config(Some(&stranger))
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let refused = producer
        .send(FutureRecord::<(), _>::to("mtls").payload("x"), TIMEOUT)
        .await
        .map_err(|(e, _)| e)
        .expect_err("a certificate without ACLs produced");
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused}"
    );
}

/// A renewed certificate is served by the next connection, without a restart; a broken
/// renewal (a key that is not the certificate's) is refused and the previous pair kept.
#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki(dir.path(), "first");
    let second = pki(dir.path(), "second");
    let live = CertFiles {
        cert: dir.path().join("live.pem"),
        key: dir.path().join("live.key"),
    };
    let install = |from: &CertFiles| {
        std::fs::copy(&from.cert, &live.cert).unwrap();
        std::fs::copy(&from.key, &live.key).unwrap();
    };
    install(&first.broker);
    let mut broker = tls_broker(dir.path(), &live, &[]);
    let tls = broker.listener_addr("TLS");
    let list = ["-L", "-m", "5"];
    ok(
        &kcat_tls(&tls, &first.ca, &[], &list, ""),
        "the first certificate",
    );

    install(&second.broker);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kcat_tls(&tls, &second.ca, &[], &list, "").status.success() {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    failed(
        &kcat_tls(&tls, &first.ca, &[], &list, ""),
        "a client trusting only the old CA after the renewal",
    );

    // A broken renewal: the first certificate with the second key.
    std::fs::copy(&first.broker.cert, &live.cert).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        ok(
            &kcat_tls(&tls, &second.ca, &[], &list, ""),
            "the kept certificate after a broken renewal",
        );
    }
    assert!(broker.is_running());
    assert!(broker.stop().success());
}

// ---------------------------------------------------------------------------- Python clients

fn python_tls(module: &str, dist: &str, version: &str, client: &str, mech: &str) {
    require_python_package(module, dist, version);
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "main");
    let other = TestPki::generate(dir.path(), "other").unwrap();
    let mut broker = tls_broker(dir.path(), &pki.broker, &[]);
    let ca = pki.ca.to_str().unwrap();

    let out = run_script_at(
        &broker.listener_addr("TLS"),
        "tls_compat.py",
        &[client, ca, other.ca.to_str().unwrap()],
        dir.path(),
    );
    for step in ["PRODUCE_CONSUME ok", "WRONG_CA"] {
        assert!(
            out.contains(step),
            "{client} over SSL: no {step:?} in:\n{out}"
        );
    }
    let out = run_script_at(
        &broker.listener_addr("SECURE"),
        "sasl_compat.py",
        &[client, mech, ca],
        dir.path(),
    );
    sasl_script_passed(&out, &format!("{client} over SASL_SSL {mech}"));
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

#[test]
fn kafka_python_over_ssl_and_sasl_ssl_scram_sha256() {
    python_tls(
        "kafka",
        "kafka-python",
        "3.0.12",
        "kafka-python",
        "SCRAM-SHA-256",
    );
}

#[test]
fn confluent_kafka_over_ssl_and_sasl_ssl_scram_sha512() {
    python_tls(
        "confluent_kafka",
        "confluent-kafka",
        "2.16.1",
        "confluent-kafka",
        "SCRAM-SHA-512",
    );
}

// --------------------------------------------------------------------------- the Java client

/// Apache Kafka's console producer and consumer and `kafka-topics.sh` (kafka-clients 4.1.1)
/// with a client properties file: over SSL with a PEM trust store, and over SASL_SSL with
/// SCRAM-SHA-256.
#[test]
fn java_client_over_ssl_and_sasl_ssl_scram() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "main");
    let broker = tls_broker(dir.path(), &pki.broker, &[]);
    let trust = format!(
        "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
        pki.ca.display()
    );
    let ssl = dir.path().join("ssl.properties");
    std::fs::write(&ssl, format!("security.protocol=SSL\n{trust}")).unwrap();
    let sasl_ssl = dir.path().join("sasl-ssl.properties");
    std::fs::write(
        &sasl_ssl,
        format!(
            "security.protocol=SASL_SSL\n{trust}sasl.mechanism=SCRAM-SHA-256\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"admin\" password=\"admin-secret\";\n"
        ),
    )
    .unwrap();

    for (listener, props, topic) in [
        ("TLS", &ssl, "java-ssl"),
        ("SECURE", &sasl_ssl, "java-sasl-ssl"),
    ] {
        let addr = broker.listener_addr(listener);
        let props = props.to_str().unwrap();
        tool(
            "kafka-console-producer.sh",
            &[
                "--bootstrap-server",
                &addr,
                "--topic",
                topic,
                "--producer.config",
                props,
            ],
            "one\ntwo\nthree\n",
        );
        let got = consume(&addr, topic, 3, &["--consumer.config", props]);
        assert_eq!(got, ["one", "two", "three"], "{listener}");
        let listed = tool(
            "kafka-topics.sh",
            &[
                "--bootstrap-server",
                &addr,
                "--list",
                "--command-config",
                props,
            ],
            "",
        );
        assert!(listed.lines().any(|l| l == topic), "{listener}: {listed}");
    }
}
