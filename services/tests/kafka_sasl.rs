//! The services' Kafka clients against a broker with SASL on: with KAFKA_SECURITY_PROTOCOL=
//! SASL_PLAINTEXT and a user's credentials installed, everything `kafka::client_config` builds
//! authenticates (here: the topic creation every service runs at start). Its own test binary,
//! because the settings are installed once per process. No PostgreSQL needed.

use std::sync::Arc;
use std::time::Duration;

use broker::auth::{Mechanism, SaslConfig, Users};
use broker::embedded::EmbeddedBroker;
use broker::listeners::SecurityProtocol;
use broker::NodeConfig;
use services::kafka::{ensure_topics, KafkaSecurity, TopicSpec, TopicState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_clients_authenticate_with_the_env_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut users = Users::empty();
    users
        .add_entries(["services:admin:svc-secret"], "test")
        .unwrap();
    let mut config = NodeConfig::local(dir.path());
    config.listeners[0].protocol = SecurityProtocol::SaslPlaintext;
    config.sasl = Some(Arc::new(SaslConfig {
        users,
        mechanisms: Mechanism::ALL.to_vec(),
    }));
    let broker = EmbeddedBroker::start(config).unwrap();

    KafkaSecurity {
        kafka_security_protocol: "SASL_PLAINTEXT".into(),
        kafka_sasl_mechanism: Some("PLAIN".into()),
        kafka_sasl_username: Some("services".into()),
        kafka_sasl_password: Some("svc-secret".into()),
        ..KafkaSecurity::default()
    }
    .install()
    .unwrap();
    let made = ensure_topics(
        &broker.addr,
        &[TopicSpec::new("sasl-orders", 2)],
        Duration::from_secs(20),
    )
    .await
    .expect("an authenticated admin creates its topics");
    assert_eq!(made, [("sasl-orders".to_string(), TopicState::Created)]);
    assert!(broker.broker().topics.get("sasl-orders").is_some());
}
