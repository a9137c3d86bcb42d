//! `inference-worker`: loads a model once and serves `inference.requests` (see
//! `services::inference`). Every flag also reads an environment variable; SIGTERM finishes the
//! micro-batch in hand, commits it and leaves the group.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use services::db;
use services::inference::handler::{InferenceConfig, InferenceHandler};
use services::inference::model::command::CommandConfig;
use services::inference::model::demo::DemoConfig;
use services::inference::model::{AnyModel, ModelSpec};
use services::worker::{self, Worker, WorkerConfig};

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModelKind {
    /// The built-in demo model (load time and latency configurable).
    Demo,
    /// An external program speaking JSON lines (`--model-command`).
    Command,
}

#[derive(Debug, Parser)]
#[command(about = "Inference worker: a model loaded once, serving requests keyed by UUID")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// SASL settings of every Kafka client (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*).
    #[command(flatten)]
    kafka_security: services::kafka::KafkaSecurity,
    #[arg(long, env = "INFER_GROUP", default_value = "inference-workers")]
    group: String,
    #[arg(long, env = "INFER_MODEL", value_enum, default_value = "demo")]
    model: ModelKind,
    /// For `--model command`: the program and its arguments, split on whitespace, e.g.
    /// `python3 examples/inference/cinema_model.py`.
    #[arg(long, env = "INFER_MODEL_COMMAND")]
    model_command: Option<String>,
    #[arg(long, env = "DEMO_LOAD_MS", default_value_t = 2000)]
    demo_load_ms: u64,
    /// Time per micro-batch of the demo model.
    #[arg(long, env = "DEMO_LATENCY_MS", default_value_t = 50)]
    demo_latency_ms: u64,
    #[arg(long, env = "INFER_MAX_BATCH", default_value_t = 32)]
    max_batch: usize,
    /// Partitions of the request topic when this worker creates it (it exists: used as it is).
    #[arg(long, env = "WORKER_TOPIC_PARTITIONS", default_value_t = 6)]
    topic_partitions: i32,
    /// Deadline of a request a Kafka client produced itself (its message names none).
    #[arg(long, env = "INFER_DEFAULT_DEADLINE_MS", default_value_t = 86_400_000)]
    default_deadline_ms: u64,
    /// Model runs a request may crash before it is dead-lettered.
    #[arg(long, env = "INFER_MAX_ATTEMPTS", default_value_t = 3)]
    max_attempts: i32,
    /// Static group membership id: a restarted worker with the same id gets its partitions
    /// back at once. Default: this host's name and the metrics port; "" joins dynamically.
    #[arg(long, env = "INFER_INSTANCE_ID")]
    instance_id: Option<String>,
    /// `/healthz` and `/metrics`.
    #[arg(long, env = "INFER_METRICS_LISTEN", default_value = "127.0.0.1:9102")]
    metrics_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    let args = Args::parse();
    args.kafka_security.install()?;
    anyhow::ensure!(
        (1..=10_000).contains(&args.topic_partitions),
        "--topic-partitions must be within 1..=10000"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.max_batch),
        "--max-batch must be within 1..=10000"
    );
    anyhow::ensure!(
        (1..=100).contains(&args.max_attempts),
        "--max-attempts must be within 1..=100"
    );
    anyhow::ensure!(
        (1_000..=30 * 86_400_000).contains(&args.default_deadline_ms),
        "--default-deadline-ms must be within 1000..=2592000000 (30 days)"
    );
    let model = match args.model {
        ModelKind::Demo => ModelSpec::Demo(DemoConfig {
            load_time: Duration::from_millis(args.demo_load_ms),
            latency: Duration::from_millis(args.demo_latency_ms),
            ..DemoConfig::default()
        }),
        ModelKind::Command => {
            let cmd = args
                .model_command
                .as_deref()
                .context("--model command needs --model-command (INFER_MODEL_COMMAND)")?;
            ModelSpec::Command(CommandConfig::parse(cmd)?)
        }
    };
    let shutdown = shared::shutdown::on_signal();
    let pool = db::connect(&args.database_url, 4)
        .await
        .context("connect to PostgreSQL")?;
    let config = WorkerConfig {
        group_id: args.group,
        max_batch: args.max_batch,
        instance_id: worker::instance_id(args.instance_id.as_deref(), args.metrics_listen),
        metrics_listen: Some(args.metrics_listen),
        topic_partitions: args.topic_partitions,
        ..WorkerConfig::inference(&args.bootstrap)
    };
    let serving = InferenceConfig {
        max_attempts: args.max_attempts,
        default_deadline: Duration::from_millis(args.default_deadline_ms),
        ..InferenceConfig::new(model)
    };
    // Loading may take minutes; a SIGTERM meanwhile stops the process at once.
    let handler = tokio::select! {
        h = InferenceHandler::<AnyModel>::load(serving, pool) => h?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    Worker::start(config, handler).await?.run(shutdown).await?;
    Ok(())
}
