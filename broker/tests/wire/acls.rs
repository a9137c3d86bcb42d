//! Kafka's ACLs on the real broker binary, with a broker that has SASL users (so the
//! authorizer runs): the findings of issue 34 (a `user` account produced forged orders to
//! `seckill` and joined `order-workers`, taking partitions from the real workers), each refused
//! with Kafka's error code; ACLs managed with Apache Kafka's own `kafka-acls.sh` (add, list,
//! remove), which take effect at once and survive a restart.
//!
//! Users: `admin` (role admin: a super user) and `mallory` (role user, no ACLs until given).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use super::harness::BrokerProcess;
use super::kafka_tools::tool;

const USERS: &str = "admin:admin:admin-secret\nmallory:user:mallory-secret\n";
const TIMEOUT: Duration = Duration::from_secs(20);

fn acl_broker(dir: &std::path::Path) -> BrokerProcess {
    let users = dir.join("users");
    std::fs::write(&users, USERS).unwrap();
    BrokerProcess::start(
        &dir.join("data"),
        &[
            "--sasl-users-file",
            users.to_str().unwrap(),
            "--group-initial-rebalance-delay-ms",
            "0",
        ],
    )
}

fn client(broker: &BrokerProcess, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.addr())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-256")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-secret"))
        .set("message.timeout.ms", "5000");
    c
}

/// Produces one record as `user`; the error code if refused.
async fn produce_as(broker: &BrokerProcess, user: &str, topic: &str) -> Result<(), KafkaError> {
    let p: FutureProducer = client(broker, user).create().unwrap();
    p.send(
        FutureRecord::<(), _>::to(topic).payload(r#"{"forged":true}"#),
        TIMEOUT,
    )
    .await
    .map(drop)
    .map_err(|(e, _)| e)
}

/// Subscribes to `topic` in `group` as `user` and polls until an error or a message; returns
/// the first error's code, if any.
fn join_as(
    broker: &BrokerProcess,
    user: &str,
    group: &str,
    topic: &str,
) -> Option<RDKafkaErrorCode> {
    let c: BaseConsumer = client(broker, user)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Err(e)) => return e.rdkafka_error_code(),
            Some(Ok(_)) => return None,
            None => {
                if !c.assignment().map(|a| a.count() == 0).unwrap_or(true) {
                    return None;
                }
            }
        }
    }
    panic!("{user} neither joined {group} nor got an error within {TIMEOUT:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_acls_can_neither_produce_to_seckill_nor_join_order_workers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = acl_broker(dir.path());
    // The admin (a super user) creates the topic and writes to it, as the API would.
    produce_as(&broker, "admin", "seckill")
        .await
        .expect("a super user produces");

    let forged = produce_as(&broker, "mallory", "seckill").await.unwrap_err();
    assert_eq!(
        forged.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{forged}"
    );
    assert_eq!(
        join_as(&broker, "mallory", "order-workers", "seckill"),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed)
    );
    // Nothing of mallory's reached the log: the one record is the admin's.
    let log_end = broker_log_end(&broker, "seckill");
    assert_eq!(log_end, 1);
}

/// The log end offset of partition 0 of `topic`, read as the admin.
fn broker_log_end(broker: &BrokerProcess, topic: &str) -> i64 {
    let c: BaseConsumer = client(broker, "admin").create().unwrap();
    let (_, high) = c.fetch_watermarks(topic, 0, TIMEOUT).unwrap();
    high
}

/// `kafka-acls.sh` (Apache Kafka 4.1.1) as the admin: what it adds takes effect at once, is
/// listed, survives a restart, and is gone once removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_acls_sh_adds_lists_and_removes_and_the_acls_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = acl_broker(dir.path());
    let props = dir.path().join("admin.properties");
    std::fs::write(
        &props,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"admin\" password=\"admin-secret\";\n",
    )
    .unwrap();
    let acls = |broker: &BrokerProcess, args: &[&str]| {
        let addr = broker.addr();
        let mut all = vec![
            "--bootstrap-server",
            addr.as_str(),
            "--command-config",
            props.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        tool("kafka-acls.sh", &all, "")
    };
    produce_as(&broker, "admin", "orders")
        .await
        .expect("a super user produces");
    assert!(produce_as(&broker, "mallory", "orders").await.is_err());

    acls(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:mallory",
            "--operation",
            "Write",
            "--operation",
            "Describe",
            "--topic",
            "orders",
        ],
    );
    produce_as(&broker, "mallory", "orders")
        .await
        .expect("the ACL kafka-acls.sh added lets mallory produce");
    let listed = acls(&broker, &["--list", "--topic", "orders"]);
    assert!(
        listed.contains("principal=User:mallory") && listed.contains("operation=WRITE"),
        "{listed}"
    );

    // Stored: a restart keeps it.
    broker.restart();
    produce_as(&broker, "mallory", "orders")
        .await
        .expect("the ACL survived the restart");

    acls(
        &broker,
        &[
            "--remove",
            "--force",
            "--allow-principal",
            "User:mallory",
            "--operation",
            "Write",
            "--topic",
            "orders",
        ],
    );
    let refused = produce_as(&broker, "mallory", "orders").await.unwrap_err();
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused}"
    );
    let listed = acls(&broker, &["--list", "--topic", "orders"]);
    assert!(
        !listed.contains("operation=WRITE") && listed.contains("operation=DESCRIBE"),
        "{listed}"
    );
}
