//! The real `broker` binary on a free port, driven over TCP by real Kafka clients (rdkafka,
//! kcat, kafka-python, confluent-kafka) and by hand-made requests. One test binary for the
//! subject, so the suite links once.

mod client;
mod harness;
mod loopfs;

mod acls;
mod admin;
mod admin_requests;
mod bad_input;
mod disk_faults;
mod fetch_limits;
mod go_clients;
mod groups;
mod kafka_tools;
mod kcat;
mod limits;
mod pipelining;
mod python;
mod rdkafka_client;
mod requests;
mod responsiveness;
mod sasl;
mod tls;
