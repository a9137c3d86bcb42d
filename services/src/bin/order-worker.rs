//! `order-worker`: drains the `seckill` topic into PostgreSQL (see `services::orders::handler`).
//! Every flag also reads an environment variable; SIGTERM finishes the batch in hand, commits
//! it and leaves the group.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use services::db;
use services::orders::OrderHandler;
use services::worker::{self, Worker, WorkerConfig};

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Parser)]
#[command(about = "Seckill order worker: queue -> PostgreSQL, in batches, exactly once in effect")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// SASL settings of every Kafka client (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*).
    #[command(flatten)]
    kafka_security: services::kafka::KafkaSecurity,
    #[arg(long, env = "WORKER_GROUP", default_value = "order-workers")]
    group: String,
    #[arg(long, env = "WORKER_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// Static group membership id: a restarted worker with the same id gets its partitions
    /// back at once. Default: this host's name and the metrics port; "" joins dynamically.
    #[arg(long, env = "WORKER_INSTANCE_ID")]
    instance_id: Option<String>,
    /// `/healthz` and `/metrics`.
    #[arg(long, env = "WORKER_METRICS_LISTEN", default_value = "127.0.0.1:9101")]
    metrics_listen: SocketAddr,
    /// Partitions of the order topic when this worker creates it (it exists: used as it is).
    #[arg(long, env = "WORKER_TOPIC_PARTITIONS", default_value_t = 6)]
    topic_partitions: i32,
    /// Orders per second this worker writes at most (0: as fast as PostgreSQL takes them), for
    /// a database the sale shares with the rest of the shop.
    #[arg(long, env = "WORKER_MAX_RATE", default_value_t = 0)]
    max_rate: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    let _failpoints = services::failpoints::from_env();
    let args = Args::parse();
    args.kafka_security.install()?;
    anyhow::ensure!(
        (1..=100_000).contains(&args.max_batch),
        "--max-batch must be within 1..=100000"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.topic_partitions),
        "--topic-partitions must be within 1..=10000"
    );
    let shutdown = shared::shutdown::on_signal();
    let pool = db::connect(&args.database_url, 4)
        .await
        .context("connect to PostgreSQL")?;
    let config = WorkerConfig {
        group_id: args.group,
        max_batch: args.max_batch,
        instance_id: worker::instance_id(args.instance_id.as_deref(), args.metrics_listen),
        metrics_listen: Some(args.metrics_listen),
        max_rate: (args.max_rate > 0).then_some(args.max_rate),
        topic_partitions: args.topic_partitions,
        ..WorkerConfig::orders(&args.bootstrap)
    };
    Worker::start(config, OrderHandler::new(pool))
        .await?
        .run(shutdown)
        .await?;
    Ok(())
}
