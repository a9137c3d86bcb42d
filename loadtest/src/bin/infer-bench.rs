//! `infer-bench`: round trips through the queue for the request/reply pattern.
//!
//! An in-process broker (fsync flush), the API (in-process axum, real HTTP) and 1, then 2,
//! inference workers with the demo model at 0 ms, so what is measured is the path: HTTP, the
//! pending row, the produce, the worker's claim, result write and reply, and the reply routing.
//! Each is run by one caller at a time (the latency a caller pays) and by `--connections`
//! callers (the rate).
//!
//! Beside it, in the same run, two ceilings measured the same two ways:
//! - a bare axum handler that parses the same body and echoes it (what HTTP alone costs);
//! - the path's durable work done directly, without a queue between the steps: per request the
//!   pending row written, the request produced (acks=all, fsynced), the result stored and the
//!   reply produced (acks=all, fsynced), on the same broker and database.
//!
//! `cargo run --release -p loadtest --bin infer-bench -- --requests 5000 --connections 32`

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use loadtest::bench_db::BenchDb;
use loadtest::http1::{Connection, Target};
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use services::api::enqueue::{DurableProducer, Enqueued};
use services::api::ApiConfig;
use services::inference::handler::{InferenceConfig, InferenceHandler};
use services::inference::model::demo::{DemoConfig, DemoModel};
use services::inference::store;
use services::kafka::TopicSpec;
use services::worker::{Worker, WorkerConfig};
use shared::messages::{InferenceReply, InferenceRequest, InferenceStatus, ReplyTo};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

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

/// One measurement: one caller at a time, then `connections` callers.
#[derive(Debug)]
struct Row {
    alone_p50: f64,
    alone_p99: f64,
    rate: f64,
    p50: f64,
    p99: f64,
}

impl Row {
    async fn measure<F, Fut>(
        target: &Target,
        alone: usize,
        n: usize,
        connections: usize,
        op: F,
    ) -> anyhow::Result<Row>
    where
        F: Fn(Connection, usize) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = (Connection, bool)> + Send,
    {
        // Warm-up: connections open, the group forms and every partition is assigned.
        let (_, _, failed) = loadtest::fire::fire(target, 200, connections, op.clone()).await;
        anyhow::ensure!(failed == 0, "{failed} warm-up requests failed");
        let (_, mut one, failed) = loadtest::fire::fire(target, alone, 1, op.clone()).await;
        anyhow::ensure!(failed == 0, "{failed} requests failed or got a wrong reply");
        let (alone_p50, alone_p99, _) = one.summary_ms();
        let (took, mut many, failed) = loadtest::fire::fire(target, n, connections, op).await;
        anyhow::ensure!(failed == 0, "{failed} requests failed or got a wrong reply");
        let (p50, p99, _) = many.summary_ms();
        Ok(Row {
            alone_p50,
            alone_p99,
            rate: n as f64 / took.as_secs_f64(),
            p50,
            p99,
        })
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<44} {:>7.2} {:>7.2}   {:>8.0} {:>7.2} {:>7.2}",
            self.alone_p50, self.alone_p99, self.rate, self.p50, self.p99
        );
    }
}

/// A bare axum handler that parses the body and echoes its input, on a free port; its base URL.
async fn bare_http() -> anyhow::Result<String> {
    let app = Router::new().route(
        "/infer",
        post(|Json(body): Json<Value>| async move {
            Json(json!({"status": "done", "output": {"echo": body["input"]}}))
        }),
    );
    let listener = shared::listener::bind("127.0.0.1:0".parse()?)?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// `POST {path}` with `{"input": {"i": i}}`; true when the answer echoes `i`.
async fn post_infer(
    mut conn: Connection,
    path: Arc<str>,
    auth: Arc<str>,
    i: usize,
) -> (Connection, bool) {
    let body = json!({"input": {"i": i}}).to_string();
    let ok = match conn.post_json(&path, &auth, body.as_bytes()).await {
        Ok(a) if a.status == 200 => matches!(
            serde_json::from_slice::<Value>(&a.body),
            Ok(b) if b["output"]["echo"]["i"] == i
        ),
        _ => false,
    };
    (conn, ok)
}

/// The path's durable work, done directly: what the queue path cannot do with less.
#[derive(Debug)]
struct Direct {
    pool: sqlx::PgPool,
    producer: DurableProducer,
}

const DIRECT_REQUESTS: &str = "direct.requests";
const DIRECT_REPLIES: &str = "direct.replies";

impl Direct {
    async fn new(bootstrap: &str, pool: sqlx::PgPool) -> anyhow::Result<Self> {
        services::kafka::ensure_topics(
            bootstrap,
            &[
                TopicSpec::new(DIRECT_REQUESTS, 6),
                TopicSpec::new(DIRECT_REPLIES, 6),
            ],
            Duration::from_secs(10),
        )
        .await?;
        let producer = DurableProducer::new(bootstrap, Duration::from_secs(30), Duration::ZERO)?;
        Ok(Direct { pool, producer })
    }

    async fn round_trip(&self, i: usize) -> bool {
        let req = InferenceRequest {
            id: Uuid::new_v4(),
            model: None,
            input: json!({"i": i}),
            deadline_ms: shared::time::now_ms() + 30_000,
            reply_to: Some(ReplyTo {
                topic: DIRECT_REPLIES.into(),
                partition: Some(0),
                correlation_id: None,
            }),
        };
        let key = req.id.to_string();
        let deadline = Duration::from_secs(30);
        if !matches!(
            store::create_pending(&self.pool, &req).await,
            Ok(store::Created::New)
        ) {
            return false;
        }
        let sent = self
            .producer
            .send(DIRECT_REQUESTS, key.as_bytes(), &req.encode(), deadline)
            .await;
        if !matches!(sent, Enqueued::Acked { .. }) {
            return false;
        }
        let reply = InferenceReply {
            id: req.id,
            status: InferenceStatus::Done,
            output: Some(json!({"echo": req.input})),
            error: None,
        };
        if store::store_results(&self.pool, std::slice::from_ref(&reply))
            .await
            .is_err()
        {
            return false;
        }
        let sent = self
            .producer
            .send(DIRECT_REPLIES, key.as_bytes(), &reply.encode(), deadline)
            .await;
        matches!(sent, Enqueued::Acked { .. })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("warn");
    let args = Args::parse();
    let token = TokenKeys::new(SECRET.as_bytes()).mint(1, 3600);
    let auth: Arc<str> = format!("Authorization: Bearer {token}\r\n").into();
    let alone = (args.requests / 10).max(100);
    println!(
        "infer-bench: {alone} requests from one caller, then {} over {} connections; demo model at 0 ms",
        args.requests, args.connections
    );
    println!(
        "{:<44} {:>15}   {:>24}",
        "",
        "one caller (ms)",
        format!("{} connections", args.connections)
    );
    println!(
        "{:<44} {:>7} {:>7}   {:>8} {:>7} {:>7}",
        "", "p50", "p99", "req/s", "p50", "p99"
    );

    let bare_target = Target::parse(&bare_http().await?)?;
    let bare = {
        let (path, auth): (Arc<str>, _) = ("/infer".into(), auth.clone());
        Row::measure(
            &bare_target,
            alone,
            args.requests,
            args.connections,
            move |c, i| post_infer(c, path.clone(), auth.clone(), i),
        )
        .await?
    };
    bare.print("bare axum handler (parse, echo)");

    // Ceiling 2, on its own broker and database like each queue run.
    let db = BenchDb::create(&args.admin_url).await?;
    let dir = args.dir.join("direct");
    let _ = std::fs::remove_dir_all(&dir);
    let broker = loadtest::embedded::fsync_broker(&dir)?;
    let direct = Arc::new(Direct::new(&broker.addr, db.pool.clone()).await?);
    // No HTTP here: the connection is handed back unused.
    let ceiling = Row::measure(
        &bare_target,
        alone,
        args.requests,
        args.connections,
        move |c, i| {
            let direct = direct.clone();
            async move { (c, direct.round_trip(i).await) }
        },
    )
    .await?;
    ceiling.print("direct: 2 DB writes + 2 fsynced produces");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_db().await?;

    let mut rows = Vec::new();
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
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let handler =
                InferenceHandler::<DemoModel>::load(InferenceConfig::new(demo()), db.pool.clone())
                    .await?;
            let w = Worker::start(WorkerConfig::inference(&broker.addr), handler).await?;
            tasks.push(tokio::spawn(w.run(stop.clone())));
        }
        let target = Target::parse(&api.url())?;
        let (path, auth): (Arc<str>, _) = ("/infer?wait_ms=30000".into(), auth.clone());
        let row = Row::measure(
            &target,
            alone,
            args.requests,
            args.connections,
            move |c, i| post_infer(c, path.clone(), auth.clone(), i),
        )
        .await?;
        row.print(&format!(
            "POST /infer through the queue, {workers} worker(s)"
        ));
        rows.push((workers, row));
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        api.stop().await;
        drop(broker);
        let _ = std::fs::remove_dir_all(&dir);
        db.drop_db().await?;
    }
    for (workers, row) in &rows {
        println!(
            "{workers} worker(s): one caller's overhead over bare HTTP {:.2} ms p50 ({:.2} ms over the direct path); \
             rate {:.0}% of the direct path, {:.0}% of bare HTTP",
            row.alone_p50 - bare.alone_p50,
            row.alone_p50 - ceiling.alone_p50,
            100.0 * row.rate / ceiling.rate,
            100.0 * row.rate / bare.rate,
        );
    }
    Ok(())
}
