//! `order-worker`: drains the `seckill` topic into PostgreSQL (see `services::worker`).
//! Every flag also reads an environment variable; SIGTERM finishes the batch in hand, commits
//! it and leaves the group.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use services::worker::{Worker, WorkerConfig};
use services::{db, telemetry};

#[derive(Debug, Parser)]
#[command(about = "Seckill order worker: queue -> PostgreSQL, in batches, exactly once in effect")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, env = "WORKER_GROUP", default_value = "order-workers")]
    group: String,
    #[arg(long, env = "WORKER_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// `/healthz` and `/metrics`.
    #[arg(long, env = "WORKER_METRICS_LISTEN", default_value = "127.0.0.1:9101")]
    metrics_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let args = Args::parse();
    anyhow::ensure!(
        (1..=100_000).contains(&args.max_batch),
        "--max-batch must be within 1..=100000"
    );
    let pool = db::connect(&args.database_url, 4)
        .await
        .context("connect to PostgreSQL")?;
    let worker = Worker::new(
        WorkerConfig {
            bootstrap: args.bootstrap,
            group_id: args.group,
            max_batch: args.max_batch,
            ..WorkerConfig::default()
        },
        pool,
    )?;
    let mut registry = prometheus_client::registry::Registry::default();
    worker.stats.register(&mut registry);
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("bind {}", args.metrics_listen))?;
    let stop_rx = telemetry::stop_on_signal();
    let router = telemetry::router(Arc::new(registry));
    let http_stop = telemetry::stopped(stop_rx.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(http_stop)
            .await
    });
    tracing::info!("order worker running");
    worker.run(telemetry::stopped(stop_rx)).await?;
    let _ = http.await;
    Ok(())
}
