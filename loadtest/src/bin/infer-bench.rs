//! `infer-bench`: round trips through the queue for the request/reply pattern.
//!
//! An in-process broker (fsync flush), the API (in-process axum, real HTTP) and 1, then 2,
//! inference workers with the demo model at 0 ms, so what is measured is the path: HTTP, the
//! pending row, the produce, the worker's claim, result write and reply, and the reply routing.
//! Beside it, in the same run, the ceiling: the same model called in-process.
//!
//! `cargo run --release -p loadtest --bin infer-bench -- --requests 5000 --connections 32`

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use loadtest::bench_db::BenchDb;
use loadtest::latency::Latencies;
use serde_json::json;
use services::api::auth::TokenKeys;
use services::api::ApiConfig;
use services::inference::handler::{InferenceConfig, InferenceHandler};
use services::inference::model::demo::{DemoConfig, DemoModel};
use services::inference::model::Model;
use services::worker::{Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[arg(
        long,
        env = "DATABASE_ADMIN_URL",
        default_value = "postgres://seckill:seckill@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    #[arg(long, default_value = "target/infer-bench")]
    dir: std::path::PathBuf,
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

const SECRET: &str = "infer-bench-secret-infer-bench-secret";

fn demo() -> DemoConfig {
    DemoConfig {
        load_time: Duration::ZERO,
        latency: Duration::ZERO,
        ..DemoConfig::default()
    }
}

/// `n` POST /infer?wait_ms over `connections`; (elapsed, latencies of the 200s, failures).
async fn round_trips(base: &str, n: usize, connections: usize) -> (Duration, Latencies, usize) {
    let token: Arc<str> = TokenKeys::new(SECRET.as_bytes()).mint(1, 3600).into();
    let url: Arc<str> = format!("{base}/infer?wait_ms=30000").into();
    loadtest::fire::fire(n, connections, move |client, i| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let r = client
                .post(&*url)
                .bearer_auth(&*token)
                .json(&json!({"input": {"i": i}}))
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => matches!(
                    r.json::<serde_json::Value>().await,
                    Ok(b) if b["output"]["echo"]["i"] == i
                ),
                _ => false,
            }
        }
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("warn");
    let args = Args::parse();

    // Ceiling: the model called in-process, one request at a time.
    let mut model = DemoModel::load(&demo()).await?;
    let mut lat = Latencies::with_capacity(args.requests);
    let t = Instant::now();
    for i in 0..args.requests {
        let s = Instant::now();
        let out = model.infer(&[json!({"i": i})]).await?;
        anyhow::ensure!(out.len() == 1);
        lat.record(s.elapsed());
    }
    let bare_rate = args.requests as f64 / t.elapsed().as_secs_f64();
    let (p50, p99, _) = lat.summary_ms();
    println!(
        "infer-bench: {} requests, {} connections, demo model at 0 ms",
        args.requests, args.connections
    );
    println!("in-process model call: {bare_rate:>10.0} req/s  p50 {p50:.3} ms  p99 {p99:.3} ms");

    for workers in [1usize, 2] {
        let db = BenchDb::create(&args.admin_url).await?;
        let dir = args.dir.join(format!("w{workers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let broker = loadtest::embedded::fsync_broker(&dir)?;
        let api = loadtest::embedded::api(
            ApiConfig {
                bootstrap: broker.addr.clone(),
                jwt_secret: SECRET.into(),
                limits: services::api::limits::RateLimits::off(),
                ..ApiConfig::default()
            },
            db.pool.clone(),
        )
        .await?;
        api.state.replies.ready().await;
        let base = api.url();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let handler =
                InferenceHandler::<DemoModel>::load(InferenceConfig::new(demo()), db.pool.clone())
                    .await?;
            let w = Worker::start(WorkerConfig::inference(&broker.addr), handler).await?;
            tasks.push(tokio::spawn(w.run(stop.clone())));
        }
        // Warm-up: the group forms and every partition is assigned.
        let (_, _, failed) = round_trips(&base, 200, args.connections).await;
        anyhow::ensure!(failed == 0, "{failed} warm-up requests failed");
        let (took, mut lat, failed) = round_trips(&base, args.requests, args.connections).await;
        anyhow::ensure!(failed == 0, "{failed} requests failed or got a wrong reply");
        let rate = args.requests as f64 / took.as_secs_f64();
        let (p50, p99, _) = lat.summary_ms();
        println!(
            "{workers} worker(s) through the queue: {rate:>8.0} req/s  p50 {p50:.1} ms  p99 {p99:.1} ms  ({:.2}% of the in-process rate)",
            100.0 * rate / bare_rate
        );
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        api.stop().await;
        drop(broker);
        let _ = std::fs::remove_dir_all(&dir);
        db.drop_db().await?;
    }
    Ok(())
}
