//! `order-api`: the order-ingest API (see `services::api`). Every flag also reads an environment
//! variable; SIGTERM stops accepting connections and finishes the requests in flight.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use services::api::{self, ApiConfig, AppState};
use services::{db, telemetry};

#[derive(Debug, Parser)]
#[command(about = "Seckill order-ingest API: accept buys, queue them durably, answer at once")]
struct Args {
    #[arg(long, env = "API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// HS256 secret of the bearer tokens (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Trust `user_id` in the body when no token is sent. For load tests only.
    #[arg(long, env = "API_LOAD_TEST_MODE", default_value_t = false)]
    load_test_mode: bool,
    /// Longest wait for the queue's acknowledgement before answering 503.
    #[arg(long, env = "API_ENQUEUE_TIMEOUT_MS", default_value_t = 5000)]
    enqueue_timeout_ms: u64,
    #[arg(long, env = "API_DB_CONNECTIONS", default_value_t = 8)]
    db_connections: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing();
    let args = Args::parse();
    anyhow::ensure!(
        args.jwt_secret.len() >= 32,
        "JWT_SECRET must be at least 32 bytes"
    );
    anyhow::ensure!(
        (100..=60_000).contains(&args.enqueue_timeout_ms),
        "--enqueue-timeout-ms must be within 100..=60000"
    );
    if args.load_test_mode {
        tracing::warn!("LOAD-TEST MODE: /buy trusts user_id from the request body when no token is sent; never use this in production");
    }
    let pool = db::connect(&args.database_url, args.db_connections)
        .await
        .context("connect to PostgreSQL")?;
    let state = AppState::new(
        ApiConfig {
            bootstrap: args.bootstrap,
            jwt_secret: args.jwt_secret,
            load_test_mode: args.load_test_mode,
            enqueue_timeout: Duration::from_millis(args.enqueue_timeout_ms),
            ..ApiConfig::default()
        },
        pool,
    )
    .await?;
    let stop_rx = telemetry::stop_on_signal();
    tokio::spawn(
        state
            .clone()
            .run_item_refresh(telemetry::stopped(stop_rx.clone())),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    tracing::info!(listen = %args.listen, "order API listening");
    axum::serve(listener, api::app(state))
        .with_graceful_shutdown(telemetry::stopped(stop_rx))
        .await?;
    Ok(())
}
