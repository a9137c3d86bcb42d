//! `order-bench`: the order path's two benchmarks, each beside its ceiling measured in the same
//! run on the same machine.
//!
//! - `ingest`: `POST /buy` requests/s and p50/p99 at N connections against the real API (tokens,
//!   validation, idempotent acks=all produce to the in-process broker with `fsync`), beside a
//!   bare axum handler that parses the same JSON and answers 202.
//! - `drain`: orders/s into PostgreSQL by 1 and by 2 workers over a backlog, beside a bare
//!   batched `INSERT ... SELECT FROM UNNEST` of the same rows (1000 per statement).
//!
//! ```text
//! cargo run --release -p loadtest --bin order-bench -- ingest --requests 100000 --connections 50
//! cargo run --release -p loadtest --bin order-bench -- drain --orders 200000
//! ```
//! PostgreSQL: a throwaway database is created through `DATABASE_ADMIN_URL` (default
//! `postgres://seckill:seckill@127.0.0.1:5432/postgres`, the test role) and dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use broker::log::{FlushPolicy, LogConfig};
use broker::{EmbeddedBroker, NodeConfig};
use clap::{Parser, Subcommand};
use loadtest::bench_db::BenchDb;
use loadtest::http1::Target;
use loadtest::latency::Latencies;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use services::api::auth::TokenKeys;
use services::api::ApiConfig;
use services::worker::WorkerConfig;
use shared::messages::OrderEvent;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    #[arg(
        long,
        env = "DATABASE_ADMIN_URL",
        default_value = "postgres://seckill:seckill@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    /// Data directory of the in-process broker (a real disk).
    #[arg(long, default_value = "target/order-bench")]
    dir: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Ingest {
        #[arg(long, default_value_t = 100_000)]
        requests: usize,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// The API producer's linger (ms, fractions allowed); default: the API's default.
        #[arg(long)]
        linger_ms: Option<f64>,
    },
    Drain {
        #[arg(long, default_value_t = 200_000)]
        orders: usize,
    },
}

/// One buy as sent: its `Authorization` header line and its JSON body.
type Buy = (String, String);

/// Sends the buys to `{base}/buy` over `connections` concurrent connections; (elapsed,
/// latencies, non-202s).
async fn fire(
    base: &str,
    buys: Arc<Vec<Buy>>,
    connections: usize,
) -> anyhow::Result<(Duration, Latencies, usize)> {
    let target = Target::parse(base)?;
    Ok(
        loadtest::fire::fire(&target, buys.len(), connections, move |mut conn, i| {
            let buys = buys.clone();
            async move {
                let (auth, body) = &buys[i];
                let ok = matches!(
                    conn.post_json("/buy", auth, body.as_bytes()).await,
                    Ok(a) if a.status == 202
                );
                (conn, ok)
            }
        })
        .await,
    )
}

async fn ingest(
    args: &Args,
    requests: usize,
    connections: usize,
    linger: Duration,
) -> anyhow::Result<()> {
    let db = BenchDb::create(&args.admin_url).await?;
    sqlx::query("UPDATE items SET initial_stock = 100000000, stock = 100000000")
        .execute(&db.pool)
        .await?;
    let broker_dir = args.dir.join("ingest");
    let _ = std::fs::remove_dir_all(&broker_dir);
    let broker = EmbeddedBroker::start(NodeConfig {
        log: LogConfig {
            flush: FlushPolicy::Fsync,
            ..LogConfig::default()
        },
        ..NodeConfig::local(&broker_dir)
    })?;
    let topics = &broker.broker().topics;
    topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;

    let secret = "order-bench-secret-order-bench-secret";
    let api = loadtest::embedded::api(
        ApiConfig {
            bootstrap: broker.addr.clone(),
            jwt_secret: secret.into(),
            limits: services::api::limits::RateLimits::off(),
            producer_linger: linger,
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await?;
    let api_url = api.url();

    // The ceiling: the same JSON parsed by axum, a 202 with a fresh id, nothing else.
    let bare = Router::new().route(
        "/buy",
        post(|Json(_b): Json<serde_json::Value>| async {
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "request_id": Uuid::new_v4() })),
            )
        }),
    );
    let bare_listener = shared::listener::bind("127.0.0.1:0".parse()?)?;
    let bare_url = format!("http://{}", bare_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(bare_listener, bare).await });

    let keys = TokenKeys::new(secret.as_bytes());
    // Rendered once, so the timed loops only send them.
    let buys: Arc<Vec<Buy>> = Arc::new(
        (0..requests)
            .map(|i| {
                (
                    format!(
                        "Authorization: Bearer {}\r\n",
                        keys.mint(i as i64 + 1, 3600)
                    ),
                    serde_json::json!({ "item_id": (i % 5) as i64 + 1, "qty": 1 }).to_string(),
                )
            })
            .collect(),
    );
    println!(
        "order-bench ingest: {requests} requests, {connections} connections, broker flush fsync, producer linger {:.2} ms",
        linger.as_secs_f64() * 1000.0
    );
    let (bare_t, mut bare_l, bare_err) = fire(&bare_url, buys.clone(), connections).await?;
    let (api_t, mut api_l, api_err) = fire(&api_url, buys.clone(), connections).await?;
    let (bp50, bp99, _) = bare_l.summary_ms();
    let (ap50, ap99, amax) = api_l.summary_ms();
    let bare_rate = (requests - bare_err) as f64 / bare_t.as_secs_f64();
    let api_rate = (requests - api_err) as f64 / api_t.as_secs_f64();
    println!("bare axum handler: {bare_rate:>9.0} req/s  p50 {bp50:.2} ms  p99 {bp99:.2} ms  errors {bare_err}");
    println!(
        "POST /buy (202):   {api_rate:>9.0} req/s  p50 {ap50:.2} ms  p99 {ap99:.2} ms  max {amax:.1} ms  errors {api_err}  = {:.0}% of the bare handler",
        100.0 * api_rate / bare_rate
    );
    let queued: i64 = topics
        .get(shared::topics::SECKILL_ORDERS)
        .map(|t| t.partitions().iter().map(|p| p.high_watermark()).sum())
        .unwrap_or(0);
    anyhow::ensure!(
        queued as usize == requests - api_err,
        "queue holds {queued}, but {} were accepted",
        requests - api_err
    );
    // Stop the API (and its producer) before the broker goes away.
    api.stop().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&broker_dir);
    db.drop_db().await
}

fn events(n: usize) -> Vec<OrderEvent> {
    (0..n)
        .map(|i| OrderEvent {
            request_id: Uuid::new_v4(),
            user_id: i as i64 + 1,
            item_id: (i % 5) as i64 + 1,
            qty: 1,
            accepted_at_ms: 1_700_000_000_000,
        })
        .collect()
}

async fn reset(db: &BenchDb, stock: i64) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE orders, order_counts")
        .execute(&db.pool)
        .await?;
    sqlx::query("UPDATE items SET initial_stock = $1, stock = $1")
        .bind(stock as i32)
        .execute(&db.pool)
        .await?;
    Ok(())
}

async fn drain(args: &Args, orders: usize) -> anyhow::Result<()> {
    let db = BenchDb::create(&args.admin_url).await?;
    let evs = events(orders);
    // Half the buys win: every batch locks, allocates, inserts and updates stock.
    let stock = (orders / 10) as i64;

    // Ceiling: the same rows, 1000 per INSERT ... SELECT FROM UNNEST, one statement per batch.
    reset(&db, stock).await?;
    let t = Instant::now();
    for (b, chunk) in evs.chunks(1000).enumerate() {
        let ids: Vec<Uuid> = chunk.iter().map(|e| e.request_id).collect();
        let users: Vec<i64> = chunk.iter().map(|e| e.user_id).collect();
        let items: Vec<i64> = chunk.iter().map(|e| e.item_id).collect();
        let offsets: Vec<i64> = (0..chunk.len()).map(|i| (b * 1000 + i) as i64).collect();
        sqlx::query(
            "INSERT INTO orders (request_id, user_id, item_id, qty, status, accepted_at, source_partition, source_offset) \
             SELECT r, u, i, 1, 'rejected_sold_out', now(), 0, o FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(r, u, i, o)",
        )
        .bind(&ids)
        .bind(&users)
        .bind(&items)
        .bind(&offsets)
        .execute(&db.pool)
        .await?;
    }
    let bare = t.elapsed();
    let bare_rate = orders as f64 / bare.as_secs_f64();
    println!("order-bench drain: {orders} orders over 5 items ({stock} units each), worker batches of 1000");
    println!("bare batched INSERT (1000 rows/statement): {bare_rate:>9.0} rows/s");

    for workers in [1usize, 2] {
        reset(&db, stock).await?;
        let broker_dir = args.dir.join(format!("drain-{workers}"));
        let _ = std::fs::remove_dir_all(&broker_dir);
        let broker = loadtest::embedded::fsync_broker(&broker_dir)?;
        let topics = &broker.broker().topics;
        topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .create()?;
        let sends = evs.iter().map(|e| {
            let producer = producer.clone();
            let key = e.item_id.to_string();
            let payload = e.encode();
            async move {
                producer
                    .send(
                        FutureRecord::to(shared::topics::SECKILL_ORDERS)
                            .key(&key)
                            .payload(&payload),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        });
        for r in futures_util::future::join_all(sends).await {
            r?;
        }
        // The backlog is in place; now the workers drain it.
        let stop = CancellationToken::new();
        let started = Instant::now();
        let running = loadtest::embedded::order_workers(
            workers,
            &WorkerConfig::orders(&broker.addr),
            &db.pool,
            None,
            &stop,
        )
        .await?;
        let mut first_applied: Option<(Instant, i64)> = None;
        loop {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
                .fetch_one(&db.pool)
                .await?;
            if n > 0 && first_applied.is_none() {
                first_applied = Some((Instant::now(), n));
            }
            if n as usize >= orders {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "drain stalled at {n}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        stop.cancel();
        for w in running {
            let _ = w.await;
        }
        let confirmed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'confirmed'")
                .fetch_one(&db.pool)
                .await?;
        anyhow::ensure!(
            confirmed == 5 * stock,
            "confirmed {confirmed}, expected {}",
            5 * stock
        );
        let rate = orders as f64 / took.as_secs_f64();
        // Steady state: from the first applied batch on (joining the group excluded).
        let (t0, n0) = first_applied.unwrap_or((started, 0));
        let steady = (orders as f64 - n0 as f64) / t0.elapsed().as_secs_f64().max(0.001);
        println!(
            "{workers} worker(s): {rate:>9.0} orders/s from start ({:.0}% of the bare INSERT), {steady:>9.0} steady ({:.0}%)",
            100.0 * rate / bare_rate,
            100.0 * steady / bare_rate
        );
        // The backlog's producer goes before the broker, so it does not log the broker leaving.
        drop(producer);
        drop(broker);
        let _ = std::fs::remove_dir_all(&broker_dir);
    }
    db.drop_db().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("warn");
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    match args.command {
        Cmd::Ingest {
            requests,
            connections,
            linger_ms,
        } => {
            anyhow::ensure!(
                requests > 0 && connections > 0,
                "--requests and --connections must be positive"
            );
            let linger = match linger_ms {
                Some(ms) if (0.0..=1000.0).contains(&ms) => Duration::from_secs_f64(ms / 1000.0),
                Some(_) => anyhow::bail!("--linger-ms must be within 0..=1000"),
                None => ApiConfig::default().producer_linger,
            };
            ingest(&args, requests, connections, linger).await
        }
        Cmd::Drain { orders } => {
            anyhow::ensure!(orders >= 10, "--orders must be at least 10");
            drain(&args, orders).await
        }
    }
}
