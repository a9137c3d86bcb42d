//! SASL authentication and admin authorization, with every real client we support and with
//! hand-made requests for the errors clients hide:
//! - rdkafka (bundled librdkafka 2.12.1; PLAIN here, SCRAM in `tls.rs`), kcat (librdkafka
//!   2.0.2: SCRAM-SHA-512 and SCRAM-SHA-256), kafka-python 3.0.12 (SCRAM-SHA-256) and
//!   confluent-kafka 2.16.1 (SCRAM-SHA-512 and PLAIN): the right password produces and
//!   consumes, a wrong one gets a clear authentication error, a non-admin cannot delete a topic
//!   (kcat has no DeleteTopics: there, a non-admin cannot create one through Metadata), an
//!   admin can;
//! - hand-made requests: only ApiVersions/SASL before authentication, unsupported mechanism (33
//!   with the enabled list), malformed SCRAM and PLAIN messages (58), SaslAuthenticate without
//!   a handshake (34), handshake v0 (refused), and the broker staying up through all of it;
//! - with no users SASL is off and not advertised, as before.
//!
//! Users of every test: `admin` (role admin) and `alice` (role user).

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{topic, Client};
use super::harness::{kcat_output_at, metric, BrokerProcess};
use super::python::{require_python_package, run_script_with};

pub(crate) const USERS: &str = "# wire tests\nadmin:admin:admin-secret\nalice:user:alice-secret\n";

/// What alice (role user, not a super user) may do: produce, consume, use groups and read
/// configs on every topic and group, and nothing else (no creating, deleting or altering).
pub(crate) const ALICE_ACLS: [&str; 4] = [
    "--acl",
    "User:alice;ALLOW;READ,WRITE,DESCRIBE,DESCRIBE_CONFIGS;TOPIC;LITERAL;*",
    "--acl",
    "User:alice;ALLOW;READ,DESCRIBE;GROUP;LITERAL;*",
];
const TIMEOUT: Duration = Duration::from_secs(20);

/// A broker with SASL on (users file in `dir`).
fn sasl_broker(dir: &std::path::Path) -> BrokerProcess {
    let users = dir.join("users");
    std::fs::write(&users, USERS).unwrap();
    let mut args = vec!["--sasl-users-file", users.to_str().unwrap()];
    args.extend(ALICE_ACLS);
    BrokerProcess::start(&dir.join("data"), &args)
}

// ------------------------------------------------------------------------------------- rdkafka

/// Keeps what librdkafka reports through the error callback (where authentication errors go).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }

    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.lock().unwrap().push(format!("{fac}: {message}"));
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

fn rd_config(broker: &BrokerProcess, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.addr())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_rdkafka_plain_produce_consume_wrong_password_and_admin_only_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path());
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));

    let admin: AdminClient<DefaultClientContext> = rd_config(&broker, "admin", "admin-secret")
        .create()
        .unwrap();
    let new = NewTopic::new("rd-sasl", 1, TopicReplication::Fixed(1));
    let res = admin.create_topics([&new], &opts).await.unwrap();
    assert!(
        res[0].is_ok(),
        "the admin could not create a topic: {res:?}"
    );

    // alice, not an admin, produces and consumes.
    let producer: FutureProducer = rd_config(&broker, "alice", "alice-secret")
        .create()
        .unwrap();
    for i in 0..5 {
        let v = format!("v{i}");
        producer
            .send(FutureRecord::<(), _>::to("rd-sasl").payload(&v), TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .expect("alice can produce");
    }
    let consumer: BaseConsumer = rd_config(&broker, "alice", "alice-secret")
        .set("group.id", "rd-sasl")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rd-sasl", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while got.len() < 5 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(got, ["v0", "v1", "v2", "v3", "v4"]);

    // A wrong password: no metadata, and librdkafka reports the broker's message.
    let errors = Errors::default();
    let wrong: BaseConsumer<Errors> = rd_config(&broker, "alice", "wrong")
        .create_with_context(errors.clone())
        .unwrap();
    let md = wrong.fetch_metadata(None, Duration::from_secs(5));
    assert!(md.is_err(), "a wrong password got metadata");
    let _ = wrong.poll(Duration::from_millis(500)); // serves the error callbacks
    let seen = errors.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|e| e.contains("invalid credentials with SASL mechanism PLAIN")),
        "no clear authentication error: {seen:?}"
    );

    // alice may not delete the topic; the admin may.
    let alice: AdminClient<DefaultClientContext> = rd_config(&broker, "alice", "alice-secret")
        .create()
        .unwrap();
    let res = alice.delete_topics(&["rd-sasl"], &opts).await.unwrap();
    assert_eq!(
        res[0],
        Err((
            "rd-sasl".to_string(),
            RDKafkaErrorCode::TopicAuthorizationFailed
        )),
        "a non-admin deleted a topic"
    );
    let res = admin.delete_topics(&["rd-sasl"], &opts).await.unwrap();
    assert_eq!(res[0], Ok("rd-sasl".to_string()));
    assert!(metric(&broker, "broker_sasl_authentication_failures_total{mechanism=\"PLAIN\",reason=\"invalid_credentials\"}").unwrap_or(0.0) >= 1.0);
}

// ---------------------------------------------------------------------------------------- kcat

/// kcat with SASL (ended after 30 s); returns its output whatever the exit status. Like every
/// kcat of the tests it runs without cargo's LD_LIBRARY_PATH, which may hold the librdkafka.so
/// rdkafka-sys built: kcat uses its own librdkafka 2.0.2, the version the compatibility
/// document lists.
fn kcat_as(
    broker: &BrokerProcess,
    mech: &str,
    user: &str,
    pw: &str,
    args: &[&str],
    stdin: &str,
) -> Output {
    let login = [mech, user, pw];
    kcat_sasl(
        &broker.addr(),
        &["security.protocol=SASL_PLAINTEXT"],
        login,
        args,
        stdin,
    )
}

/// kcat at `addr` with the `-X` settings `security` (the protocol, a CA) and the SASL login
/// `[mechanism, user, password]`, as [`kcat_as`].
pub(crate) fn kcat_sasl(
    addr: &str,
    security: &[&str],
    [mech, user, pw]: [&str; 3],
    args: &[&str],
    stdin: &str,
) -> Output {
    let login = [
        format!("sasl.mechanism={mech}"),
        format!("sasl.username={user}"),
        format!("sasl.password={pw}"),
    ];
    let mut all = Vec::new();
    for setting in security
        .iter()
        .copied()
        .chain(login.iter().map(String::as_str))
    {
        all.extend(["-X", setting]);
    }
    all.extend_from_slice(args);
    kcat_output_at(addr, Some(Duration::from_secs(30)), &all, stdin)
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sasl_kcat_scram_produce_consume_wrong_password_and_no_create_for_non_admins() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path());

    // The admin produces with SCRAM-SHA-512 (auto-creating the topic), alice reads with
    // SCRAM-SHA-256.
    let out = kcat_as(
        &broker,
        "SCRAM-SHA-512",
        "admin",
        "admin-secret",
        &["-P", "-t", "kc"],
        "a\nb\nc\n",
    );
    ok(&out, "kcat -P as admin");
    let out = kcat_as(
        &broker,
        "SCRAM-SHA-256",
        "alice",
        "alice-secret",
        &["-C", "-t", "kc", "-o", "beginning", "-e", "-q"],
        "",
    );
    assert_eq!(ok(&out, "kcat -C as alice"), "a\nb\nc\n");

    // A wrong password: kcat fails with the broker's message.
    let out = kcat_as(
        &broker,
        "SCRAM-SHA-512",
        "alice",
        "wrong",
        &["-L", "-m", "5"],
        "",
    );
    assert!(!out.status.success(), "a wrong password listed metadata");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "no clear authentication error: {err}"
    );

    // kcat has no DeleteTopics; its admin-only act is auto-creation: alice's Metadata for an
    // unknown topic does not create it.
    let out = kcat_as(
        &broker,
        "SCRAM-SHA-256",
        "alice",
        "alice-secret",
        &["-L", "-t", "by-alice", "-m", "5"],
        "",
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("Unknown topic") || !listing.contains("partition 0"),
        "alice's metadata request created a topic: {listing}"
    );
    assert!(
        !broker.data_dir.join("topics").join("by-alice").exists(),
        "a non-admin auto-created a topic"
    );
    // Plain (unauthenticated) kcat is refused.
    let out = Command::new("timeout")
        .env_remove("LD_LIBRARY_PATH")
        .args(["20", "kcat", "-b", &broker.addr(), "-L", "-m", "3"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unauthenticated client listed metadata"
    );
}

// -------------------------------------------------------------------------------------- Python

fn python_sasl(module: &str, dist: &str, version: &str, client: &str, mech: &str) {
    require_python_package(module, dist, version);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = sasl_broker(dir.path());
    let out = run_script_with(&broker, "sasl_compat.py", &[client, mech], dir.path());
    sasl_script_passed(&out, &format!("{client} {mech}"));
    assert!(broker.stop().success(), "broker did not shut down cleanly");
}

/// Every step of `sasl_compat.py` printed its success line.
pub(crate) fn sasl_script_passed(out: &str, what: &str) {
    for step in [
        "PRODUCE_CONSUME ok",
        "WRONG_PASSWORD",
        "NON_ADMIN_DELETE refused",
        "ADMIN_DELETE ok",
    ] {
        assert!(out.contains(step), "{what}: no {step:?} in:\n{out}");
    }
}

#[test]
fn sasl_kafka_python_scram_sha256() {
    python_sasl(
        "kafka",
        "kafka-python",
        "3.0.12",
        "kafka-python",
        "SCRAM-SHA-256",
    );
}

#[test]
fn sasl_confluent_kafka_scram_sha512() {
    python_sasl(
        "confluent_kafka",
        "confluent-kafka",
        "2.16.1",
        "confluent-kafka",
        "SCRAM-SHA-512",
    );
}

#[test]
fn sasl_confluent_kafka_plain() {
    python_sasl(
        "confluent_kafka",
        "confluent-kafka",
        "2.16.1",
        "confluent-kafka",
        "PLAIN",
    );
}

// ----------------------------------------------------------------------------- hand-made input

fn handshake(c: &mut Client, mech: &str) -> std::io::Result<SaslHandshakeResponse> {
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = StrBytes::from_string(mech.to_string());
    c.try_call(ApiKey::SaslHandshake, 1, &req)
}

fn authenticate(c: &mut Client, bytes: &[u8]) -> std::io::Result<SaslAuthenticateResponse> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = bytes::Bytes::copy_from_slice(bytes);
    c.try_call(ApiKey::SaslAuthenticate, 2, &req)
}

fn connect(broker: &BrokerProcess) -> Client {
    let c = Client::connect(broker);
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

fn metadata_for(c: &mut Client, name: &str) -> std::io::Result<MetadataResponse> {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic(name));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    c.try_call(ApiKey::Metadata, 12, &req)
}

#[test]
fn sasl_bad_input_gets_clear_errors_and_the_broker_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = sasl_broker(dir.path());

    // ApiVersions is served before authentication and lists the SASL APIs.
    let mut c = connect(&broker);
    let v: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let range = |k: ApiKey| {
        v.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    // Anything else before authentication closes the connection.
    assert!(
        metadata_for(&mut c, "x").is_err(),
        "Metadata served before authentication"
    );

    // An unsupported mechanism: 33 and the enabled list, then closed.
    let mut c = connect(&broker);
    let r = handshake(&mut c, "GSSAPI").unwrap();
    assert_eq!(r.error_code, 33);
    let listed: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(listed, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.is_closed());

    // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE (34).
    let mut c = connect(&broker);
    assert_eq!(
        authenticate(&mut c, b"\0alice\0alice-secret")
            .unwrap()
            .error_code,
        34
    );

    // Handshake v0 (raw tokens after it) is not served: closed.
    let mut c = connect(&broker);
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = StrBytes::from_static_str("PLAIN");
    assert!(c
        .try_call::<_, SaslHandshakeResponse>(ApiKey::SaslHandshake, 0, &req)
        .is_err());

    // Malformed SCRAM client-first messages and PLAIN messages: 58 with a message, then closed.
    for (mech, bad) in [
        ("SCRAM-SHA-256", &b"\xff\xfe garbage"[..]),
        ("SCRAM-SHA-256", b"n,,r=nonce-without-user"),
        ("SCRAM-SHA-512", b"p=tls-unique,,n=alice,r=abc"),
        ("SCRAM-SHA-512", b""),
        ("PLAIN", b"no-nuls"),
        ("PLAIN", b"\0alice\0"),
    ] {
        let mut c = connect(&broker);
        assert_eq!(handshake(&mut c, mech).unwrap().error_code, 0);
        let r = authenticate(&mut c, bad).unwrap();
        assert_eq!(r.error_code, 58, "{mech} {bad:?}");
        let msg = r.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(msg.contains("malformed"), "{mech} {bad:?}: {msg}");
        assert!(c.is_closed(), "{mech} {bad:?}: connection left open");
    }
    // A SCRAM exchange whose final message has the wrong nonce.
    let mut c = connect(&broker);
    handshake(&mut c, "SCRAM-SHA-256").unwrap();
    let first = authenticate(&mut c, b"n,,n=alice,r=abc").unwrap();
    assert_eq!(first.error_code, 0);
    assert!(first.auth_bytes.starts_with(b"r=abc"));
    let r = authenticate(&mut c, b"c=biws,r=abcNOTTHESERVERS,p=AAAA").unwrap();
    assert_eq!(r.error_code, 58);

    // A wrong PLAIN password: 58, "invalid credentials".
    let mut c = connect(&broker);
    handshake(&mut c, "PLAIN").unwrap();
    let r = authenticate(&mut c, b"\0alice\0nope").unwrap();
    assert_eq!(r.error_code, 58);
    assert!(r
        .error_message
        .unwrap()
        .contains("invalid credentials with SASL mechanism PLAIN"));

    // Still up, and a good login works; alice (not an admin) may not create topics, either by
    // CreateTopics (29) or by Metadata auto-creation (3, as with auto-creation off).
    assert!(broker.is_running());
    let mut c = connect(&broker);
    handshake(&mut c, "PLAIN").unwrap();
    assert_eq!(
        authenticate(&mut c, b"\0alice\0alice-secret")
            .unwrap()
            .error_code,
        0
    );
    let md = metadata_for(&mut c, "by-alice").unwrap();
    assert_eq!(md.topics[0].error_code, 3);
    let mut t = CreatableTopic::default();
    t.name = topic("by-alice");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 29);
    // A second handshake on an authenticated connection: ILLEGAL_SASL_STATE (34).
    assert_eq!(handshake(&mut c, "PLAIN").unwrap().error_code, 34);

    // The admin may.
    let mut c = connect(&broker);
    handshake(&mut c, "PLAIN").unwrap();
    assert_eq!(
        authenticate(&mut c, b"\0admin\0admin-secret")
            .unwrap()
            .error_code,
        0
    );
    let md = metadata_for(&mut c, "by-admin").unwrap();
    assert_eq!(
        md.topics[0].error_code, 0,
        "the admin's Metadata did not create the topic"
    );

    let failures = |reason: &str, mech: &str| {
        metric(
            &broker,
            &format!("broker_sasl_authentication_failures_total{{mechanism=\"{mech}\",reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(failures("malformed", "PLAIN") >= 2.0);
    assert!(failures("malformed", "SCRAM-SHA-256") >= 3.0);
    assert!(failures("unsupported_mechanism", "unsupported") >= 1.0);
    assert!(failures("invalid_credentials", "PLAIN") >= 1.0);
    assert!(broker.stop().success());
}

#[test]
fn sasl_is_off_without_users_and_not_advertised() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = connect(&broker);
    let v: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(v
        .api_keys
        .iter()
        .all(|a| a.api_key != ApiKey::SaslHandshake as i16
            && a.api_key != ApiKey::SaslAuthenticate as i16));
    // Unauthenticated clients may do everything, admin APIs included.
    let md = metadata_for(&mut c, "auto").unwrap();
    assert_eq!(md.topics[0].error_code, 0);
    // A handshake on a broker without SASL is an unserved API: closed.
    assert!(handshake(&mut c, "PLAIN").is_err());
}

#[test]
fn sasl_bad_users_file_stops_the_broker_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "admin:root:pw\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--sasl-users-file")
        .arg(&users)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entry 1") && err.contains("neither admin nor user"),
        "{err}"
    );
}

/// Logged in over PLAIN as `user` (hand-made requests).
fn logged_in(broker: &BrokerProcess, user: &str, password: &str) -> Client {
    let mut c = connect(broker);
    assert_eq!(handshake(&mut c, "PLAIN").unwrap().error_code, 0);
    let token = format!("\0{user}\0{password}");
    assert_eq!(
        authenticate(&mut c, token.as_bytes()).unwrap().error_code,
        0
    );
    c
}

/// The admin APIs that change topics, records and groups are admin-only like CreateTopics: a
/// non-admin's CreatePartitions, IncrementalAlterConfigs, AlterConfigs, DeleteRecords,
/// DeleteGroups and OffsetDelete are refused with the authorization error of each API and change
/// nothing; the same requests from an admin succeed. Reading configs stays open.
#[test]
fn sasl_admin_apis_that_change_things_need_an_admin() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{
        alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
        AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
        DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
        DescribeConfigsRequest, DescribeConfigsResponse, GroupId, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    };
    let s = |v: &str| StrBytes::from_string(v.to_string());

    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path());
    let mut admin = logged_in(&broker, "admin", "admin-secret");
    let mut alice = logged_in(&broker, "alice", "alice-secret");
    assert_eq!(super::client::create(&mut admin, "guarded", 1, 1, &[]), 0);
    for _ in 0..3 {
        let (code, _) = super::client::produce(&mut admin, "guarded", super::client::good_batch());
        assert_eq!(code, 0);
    }

    let grow = |c: &mut Client| -> i16 {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic("guarded");
        t.count = 2;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req);
        r.results[0].error_code
    };
    let alter_incremental = |c: &mut Client| -> i16 {
        let mut a = incremental_alter_configs_request::AlterableConfig::default();
        a.name = s("retention.ms");
        a.config_operation = 0;
        a.value = Some(s("3600000"));
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s("guarded");
        r.configs = vec![a];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        let resp: IncrementalAlterConfigsResponse =
            c.call(ApiKey::IncrementalAlterConfigs, 1, &req);
        resp.responses[0].error_code
    };
    let alter_legacy = |c: &mut Client, kind: i8, name: &str| -> i16 {
        let mut a = alter_configs_request::AlterableConfig::default();
        a.name = s("retention.ms");
        a.value = Some(s("7200000"));
        let mut r = alter_configs_request::AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = s(name);
        r.configs = vec![a];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![r];
        let resp: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req);
        resp.responses[0].error_code
    };
    let delete_records = |c: &mut Client| -> i16 {
        let mut p = DeleteRecordsPartition::default();
        p.partition_index = 0;
        p.offset = 2;
        let mut t = DeleteRecordsTopic::default();
        t.name = topic("guarded");
        t.partitions = vec![p];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let r: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req);
        r.topics[0].partitions[0].error_code
    };
    let delete_group = |c: &mut Client| -> i16 {
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(s("no-such-group"))];
        let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &req);
        r.results[0].error_code
    };
    let delete_offsets = |c: &mut Client| -> i16 {
        let mut p = OffsetDeleteRequestPartition::default();
        p.partition_index = 0;
        let mut t = OffsetDeleteRequestTopic::default();
        t.name = topic("guarded");
        t.partitions = vec![p];
        let mut req = OffsetDeleteRequest::default();
        req.group_id = GroupId(s("no-such-group"));
        req.topics = vec![t];
        let r: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req);
        r.error_code
    };
    let retention = |c: &mut Client| -> String {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s("guarded");
        r.configuration_keys = Some(vec![s("retention.ms")]);
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![r];
        let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
        assert_eq!(
            resp.results[0].error_code, 0,
            "alice may describe configs (DESCRIBE_CONFIGS)"
        );
        resp.results[0].configs[0]
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let earliest = |c: &mut Client| super::client::fetch(c, "guarded", 0, 0, 1 << 20).0;

    // alice: refused, nothing changed.
    assert_eq!(
        grow(&mut alice),
        29,
        "CreatePartitions: TOPIC_AUTHORIZATION_FAILED"
    );
    assert_eq!(alter_incremental(&mut alice), 29);
    assert_eq!(alter_legacy(&mut alice, 2, "guarded"), 29);
    assert_eq!(
        alter_legacy(&mut alice, 4, "1"),
        31,
        "broker resource: CLUSTER_AUTHORIZATION_FAILED"
    );
    assert_eq!(delete_records(&mut alice), 29);
    assert_eq!(delete_group(&mut alice), 30, "GROUP_AUTHORIZATION_FAILED");
    assert_eq!(delete_offsets(&mut alice), 30);
    assert_eq!(retention(&mut alice), "604800000");
    assert_eq!(earliest(&mut alice), 0, "records below 2 still readable");
    let mut probe = MetadataRequest::default();
    probe.topics = None;
    let meta: MetadataResponse = alice.call(ApiKey::Metadata, 12, &probe);
    let guarded = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("guarded"))
        .unwrap();
    assert_eq!(
        guarded.partitions.len(),
        1,
        "a refused CreatePartitions added one"
    );

    // admin: the same requests go through.
    assert_eq!(grow(&mut admin), 0);
    assert_eq!(alter_incremental(&mut admin), 0);
    assert_eq!(retention(&mut alice), "3600000");
    assert_eq!(delete_records(&mut admin), 0);
    assert_eq!(
        earliest(&mut alice),
        1,
        "OFFSET_OUT_OF_RANGE below the new start"
    );
    assert_eq!(
        delete_group(&mut admin),
        69,
        "GROUP_ID_NOT_FOUND, not refused"
    );
    assert_eq!(delete_offsets(&mut admin), 69);
}

/// Before authentication a connection may send only small frames (Kafka's
/// `sasl.server.max.receive.size`, 512 KiB): a larger size prefix closes it at once, before
/// the broker allocates or waits for the body. Before, an anonymous client could announce up to
/// the 100 MiB an authenticated Produce may send, and the broker held it (a 50 MB SCRAM first
/// message got a 52 MB reply echoing its nonce).
#[test]
fn an_unauthenticated_connection_may_not_send_a_large_frame() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path());
    let mut s = std::net::TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A frame of 1 MiB announced, a little of it sent.
    s.write_all(&(1024 * 1024i32).to_be_bytes()).unwrap();
    s.write_all(&[0u8; 64]).unwrap();
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection stayed open after a 1 MiB frame before login: {other:?}"),
    }
    // Under the limit, a frame before login is read as ever: the broker waits for the rest.
    let mut s = std::net::TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(&(400 * 1024i32).to_be_bytes()).unwrap();
    s.write_all(&[0u8; 64]).unwrap();
    assert!(
        matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "a 400 KiB frame before login was refused"
    );
}

/// Password guessing from one address is slowed to a few guesses a second: a failed login is
/// answered only after `--failed-authentication-delay-ms`, and an address may have at most
/// `--max-unauthenticated-connections-per-address` connections that have not logged in (more
/// are closed at once). Forty guessers for three seconds got through at most the cap per delay;
/// before, one client tried 1,000 wrong passwords in 1.4 s. Logged-in connections do not count
/// against the cap, and the right password still works afterwards.
#[test]
fn password_guessing_from_one_address_is_slowed_to_a_few_guesses_a_second() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, USERS).unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "--sasl-users-file",
            users.to_str().unwrap(),
            "--failed-authentication-delay-ms",
            "500",
            "--max-unauthenticated-connections-per-address",
            "10",
        ],
    );
    let addr = broker.addr();
    let (stop, guesses) = (AtomicBool::new(false), AtomicUsize::new(0));
    let run_for = Duration::from_secs(3);
    std::thread::scope(|s| {
        for t in 0..40 {
            let (addr, stop, guesses) = (&addr, &stop, &guesses);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(stream) = std::net::TcpStream::connect(addr) else {
                        continue;
                    };
                    let mut c = Client::over(stream);
                    let _ = c.s.set_read_timeout(Some(Duration::from_secs(5)));
                    let token = format!("\0alice\0guess-{t}");
                    let answered = handshake(&mut c, "PLAIN")
                        .and_then(|_| authenticate(&mut c, token.as_bytes()));
                    match answered {
                        Ok(r) => {
                            assert_eq!(r.error_code, 58, "a guess got in");
                            guesses.fetch_add(1, Ordering::Relaxed);
                        }
                        // Closed at once: over the address's cap of connections not logged in.
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    let guessed = guesses.load(Ordering::Relaxed);
    // 10 at a time, each held 0.5 s: about 60 in 3 s, whatever the number of guessers.
    assert!(
        guessed <= 10 * 7,
        "{guessed} wrong passwords answered in {run_for:?} from one address"
    );
    assert!(guessed >= 10, "only {guessed} guesses answered");
    let closed = metric(
        &broker,
        "broker_connections_closed_by_broker_total{reason=\"unauthenticated_limit\"}",
    )
    .unwrap_or(0.0);
    assert!(closed > 0.0, "the cap closed nothing");

    // Logged-in connections leave the cap: more than ten of them at once, all served.
    let mut logged: Vec<Client> = (0..15)
        .map(|_| logged_in(&broker, "alice", "alice-secret"))
        .collect();
    for c in &mut logged {
        metadata_for(c, "any").expect("a logged-in connection is served");
    }
}
