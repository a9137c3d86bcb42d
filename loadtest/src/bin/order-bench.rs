//! `order-bench`: the order path's two benchmarks, each beside its ceiling measured in the same
//! run on the same machine.
//!
//! - `ingest`: `POST /buy` requests/s and p50/p99 at N connections against the real API (tokens,
//!   validation, idempotent acks=all produce to the in-process broker with `fsync`), beside a
//!   bare axum handler that parses the same JSON and answers 202.
//! - `refusals`: the floods a sale answers without the queue (410 `sold_out` after the sell-out,
//!   425 `not_open` before the opening, 409 `duplicate` from buyers who already bought, 429 from
//!   a buyer over the per-user limit), each beside the same bare axum handler run just before
//!   it, with the same client and tokens.
//! - `drain`: orders/s into PostgreSQL by 1 and by 2 workers over a backlog, beside a bare
//!   batched `INSERT ... SELECT FROM UNNEST` of the same rows (1000 per statement).
//!
//! ```text
//! cargo run --release -p loadtest --bin order-bench -- ingest --requests 100000 --connections 50
//! cargo run --release -p loadtest --bin order-bench -- refusals --requests 100000 --connections 50
//! cargo run --release -p loadtest --bin order-bench -- drain --orders 200000
//! ```
//! PostgreSQL: a throwaway database is created through `DATABASE_ADMIN_URL` (default
//! `postgres://seckill:seckill@127.0.0.1:5432/postgres`, the test role) and dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use broker::EmbeddedBroker;
use clap::{Parser, Subcommand};
use loadtest::bench_db::BenchDb;
use loadtest::http1::Target;
use loadtest::latency::Latencies;
use loadtest::run_topic::RunTopic;
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
        /// Queue the buys on this Kafka cluster (`HOST:PORT[,...]`, e.g. Apache Kafka started by
        /// scripts/apache-kafka.sh) instead of the in-process broker: a topic of the run's own
        /// with 6 partitions and the cluster's replication, deleted at the end.
        #[arg(long)]
        bootstrap: Option<String>,
        /// With --bootstrap: a topic setting (`KEY=VALUE`, repeatable), e.g. `flush.messages=1`
        /// for Apache Kafka to sync every message before it acknowledges, as our broker does.
        #[arg(long = "topic-config", requires = "bootstrap")]
        topic_config: Vec<String>,
    },
    Refusals {
        /// Requests per flood (and per bare-handler run).
        #[arg(long, default_value_t = 100_000)]
        requests: usize,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Also measure each flood and the bare handler with wrk (a lighter client than this
        /// tool's, so the server's own cost shows more), this many seconds each.
        #[arg(long, default_value_t = 0)]
        wrk_seconds: u32,
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
    fire_expecting(base, buys, connections, 202).await
}

/// The same, counting as failures the answers other than `expected`.
async fn fire_expecting(
    base: &str,
    buys: Arc<Vec<Buy>>,
    connections: usize,
    expected: u16,
) -> anyhow::Result<(Duration, Latencies, usize)> {
    let target = Target::parse(base)?;
    Ok(
        loadtest::fire::fire(&target, buys.len(), connections, move |mut conn, i| {
            let buys = buys.clone();
            async move {
                let (auth, body) = &buys[i];
                let ok = matches!(
                    conn.post_json("/buy", auth, body.as_bytes()).await,
                    Ok(a) if a.status == expected
                );
                (conn, ok)
            }
        })
        .await,
    )
}

/// The ceiling every `/buy` figure is set beside: the same JSON parsed by axum, a 202 with a
/// fresh id, nothing else. Serves until the process ends; returns its base URL.
fn bare_handler() -> anyhow::Result<String> {
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
    Ok(bare_url)
}

/// `n` buys of `item`, by users `first_user + i % users`, rendered once.
fn render_buys(keys: &TokenKeys, n: usize, first_user: i64, users: usize, item: i64) -> Vec<Buy> {
    let tokens: Vec<String> = (0..users.min(n))
        .map(|u| {
            format!(
                "Authorization: Bearer {}\r\n",
                keys.mint(first_user + u as i64, 3600)
            )
        })
        .collect();
    (0..n)
        .map(|i| {
            (
                tokens[i % tokens.len()].clone(),
                serde_json::json!({ "item_id": item, "qty": 1 }).to_string(),
            )
        })
        .collect()
}

/// CPU time this process has used so far (user + system), from /proc/self/stat: with wrk as
/// the client, the process runs only the server under test, so CPU per request is the
/// server's cost, a figure that holds on a machine shared with other work.
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
            .parse()?)
    };
    // The kernel reports in USER_HZ, 100 on Linux.
    Ok(Duration::from_millis(10 * (ticks(11)? + ticks(12)?)))
}

/// One wrk run (one thread, `connections` connections, `secs` seconds) posting `body` with
/// `auth` to `{base}/buy`: (requests/s, p99 ms, answers other than `expected`).
fn wrk(
    base: &str,
    auth: &str,
    body: &str,
    expected: u16,
    connections: usize,
    secs: u32,
) -> anyhow::Result<(f64, f64, u64)> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("post.lua");
    // The status check counts per thread and sums in done(); wrk's own report gives the rate
    // and the latency distribution.
    std::fs::write(
        &script,
        format!(
            r#"wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{auth}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status ~= {expected} then bad = bad + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("unexpected %d\n", total))
end
"#
        ),
    )?;
    let out = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s")])
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(format!("{base}/buy"))
        .output()
        .map_err(|e| anyhow::anyhow!("run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let rate: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk's output: {text}"))?;
    let p99 = field("99%")
        .and_then(|v| {
            let ms = |n: &str, unit: f64| n.parse::<f64>().ok().map(|x| x * unit);
            v.strip_suffix("us")
                .and_then(|n| ms(n, 0.001))
                .or_else(|| v.strip_suffix("ms").and_then(|n| ms(n, 1.0)))
                .or_else(|| v.strip_suffix('s').and_then(|n| ms(n, 1000.0)))
        })
        .ok_or_else(|| anyhow::anyhow!("no 99% latency in wrk's output: {text}"))?;
    let unexpected = field("unexpected")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status count in wrk's output: {text}"))?;
    Ok((rate, p99, unexpected))
}

async fn refusals(
    args: &Args,
    requests: usize,
    connections: usize,
    wrk_seconds: u32,
) -> anyhow::Result<()> {
    let db = BenchDb::create(&args.admin_url).await?;
    // Item 1 is sold out, item 2 opens tomorrow, item 3 has stock (bought once by the 409 flood's
    // buyers before it starts).
    sqlx::query(
        "UPDATE items SET initial_stock = CASE id WHEN 1 THEN 100 ELSE 1000000 END, \
         stock = CASE id WHEN 1 THEN 0 ELSE 1000000 END, \
         sale_start = CASE id WHEN 2 THEN now() + interval '1 day' END",
    )
    .execute(&db.pool)
    .await?;
    let broker_dir = args.dir.join("refusals");
    let _ = std::fs::remove_dir_all(&broker_dir);
    let broker = loadtest::embedded::fsync_broker(&broker_dir)?;
    let topics = &broker.broker().topics;
    topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;
    let secret = "order-bench-secret-order-bench-secret";
    let config = ApiConfig {
        bootstrap: broker.addr.clone(),
        jwt_secret: secret.into(),
        limits: services::api::limits::RateLimits::off(),
        ..ApiConfig::default()
    };
    let open = loadtest::embedded::api(config.clone(), db.pool.clone()).await?;
    // The 429 flood: the production per-user limit, few buyers, one address (so no per-address
    // limit, as behind a load balancer that forwards many addresses).
    let limited = loadtest::embedded::api(
        ApiConfig {
            limits: services::api::limits::RateLimits {
                per_address: None,
                ..services::api::limits::RateLimits::default()
            },
            ..config
        },
        db.pool.clone(),
    )
    .await?;
    let bare_url = bare_handler()?;
    let keys = TokenKeys::new(secret.as_bytes());

    // The 409 flood's buyers, each with one accepted buy of item 3.
    let buyers = 2_000usize;
    let first = render_buys(&keys, buyers, 1_000_000, buyers, 3);
    let (_, _, failed) = fire(&open.url(), Arc::new(first), connections).await?;
    anyhow::ensure!(
        failed == 0,
        "{failed} of the 409 flood's first buys were not accepted"
    );

    let floods: [(&str, String, u16, Vec<Buy>); 4] = [
        (
            "410 sold_out",
            open.url(),
            410,
            render_buys(&keys, requests, 1, requests, 1),
        ),
        (
            "425 not_open",
            open.url(),
            425,
            render_buys(&keys, requests, 1, requests, 2),
        ),
        (
            "409 duplicate",
            open.url(),
            409,
            render_buys(&keys, requests, 1_000_000, buyers, 3),
        ),
        // 50 buyers at 5/s (burst 10) each: all but the first few hundred are over the limit.
        (
            "429 rate_limited",
            limited.url(),
            429,
            render_buys(&keys, requests, 2_000_000, 50, 3),
        ),
    ];
    // Everything the bare handler is fed is the same size as the floods' requests.
    let bare_buys = Arc::new(render_buys(&keys, requests, 1, requests, 1));
    println!(
        "order-bench refusals: {requests} requests per flood, {connections} connections; each beside the bare handler run just before it"
    );
    let mut worst = f64::INFINITY;
    for (label, url, status, buys) in floods {
        let (bare_t, mut bare_l, bare_err) =
            fire_expecting(&bare_url, bare_buys.clone(), connections, 202).await?;
        let (t, mut l, err) = fire_expecting(&url, Arc::new(buys), connections, status).await?;
        let bare_rate = (requests - bare_err) as f64 / bare_t.as_secs_f64();
        let rate = (requests - err) as f64 / t.as_secs_f64();
        let (bp50, bp99, _) = bare_l.summary_ms();
        let (p50, p99, max) = l.summary_ms();
        println!("  bare axum handler: {bare_rate:>9.0} req/s  p50 {bp50:.2} ms  p99 {bp99:.2} ms");
        println!(
            "  {label:<17}  {rate:>9.0} req/s  p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.1} ms  other answers {err}  = {:.0}% of the bare handler",
            100.0 * rate / bare_rate
        );
        // The 429 flood's buyers are within their limit for a burst of 10 and then 5 a second
        // each: those answers are 202s, as they should be.
        let allowed = if status == 429 {
            (50.0 * (10.0 + 5.0 * t.as_secs_f64().ceil())) as usize
        } else {
            0
        };
        anyhow::ensure!(
            err <= allowed,
            "{err} answers to the {label} flood were not {status}"
        );
        if status != 429 {
            worst = worst.min(rate / bare_rate);
        }
    }
    println!(
        "lowest of 410/425/409: {:.0}% of the bare handler",
        100.0 * worst
    );
    if wrk_seconds > 0 {
        // One buyer per flood is enough here: the limits are off where it matters, and the
        // 409's buyer (user 1,000,000) bought item 3 above; the 429's buyer is over its limit
        // after its first ten.
        let token = |user: i64| format!("Bearer {}", keys.mint(user, 3600));
        let body = |item: i64| serde_json::json!({ "item_id": item, "qty": 1 }).to_string();
        println!("wrk, 1 thread, {connections} connections, {wrk_seconds} s each:");
        for (label, url, status, user, item) in [
            ("410 sold_out", open.url(), 410, 1, 1),
            ("425 not_open", open.url(), 425, 1, 2),
            ("409 duplicate", open.url(), 409, 1_000_000, 3),
            ("429 rate_limited", limited.url(), 429, 3_000_000, 3),
        ] {
            let cpu = process_cpu()?;
            let (bare_rate, bare_p99, _) = wrk(
                &bare_url,
                &token(user),
                &body(item),
                202,
                connections,
                wrk_seconds,
            )?;
            let bare_cpu_us = (process_cpu()? - cpu).as_secs_f64() * 1e6
                / (bare_rate * wrk_seconds as f64).max(1.0);
            let cpu = process_cpu()?;
            let (rate, p99, unexpected) = wrk(
                &url,
                &token(user),
                &body(item),
                status,
                connections,
                wrk_seconds,
            )?;
            let cpu_us =
                (process_cpu()? - cpu).as_secs_f64() * 1e6 / (rate * wrk_seconds as f64).max(1.0);
            println!(
                "  bare axum handler: {bare_rate:>9.0} req/s  p99 {bare_p99:.2} ms  server CPU {bare_cpu_us:.1} us/request"
            );
            println!(
                "  {label:<17}  {rate:>9.0} req/s  p99 {p99:.2} ms  server CPU {cpu_us:.1} us/request  other answers {unexpected}  = {:.0}% of the bare handler's rate, {:.2}x its CPU",
                100.0 * rate / bare_rate,
                cpu_us / bare_cpu_us
            );
        }
    }
    open.stop().await;
    limited.stop().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&broker_dir);
    db.drop_db().await
}

/// Where `ingest` queues its buys: the in-process broker with `fsync`, or a topic of the run's
/// own on an external cluster.
enum IngestQueue {
    Embedded(EmbeddedBroker, std::path::PathBuf),
    External(RunTopic),
}

impl IngestQueue {
    async fn start(
        args: &Args,
        external: Option<&str>,
        topic_config: &[String],
    ) -> anyhow::Result<Self> {
        let Some(bootstrap) = external else {
            let broker_dir = args.dir.join("ingest");
            let _ = std::fs::remove_dir_all(&broker_dir);
            let broker = loadtest::embedded::fsync_broker(&broker_dir)?;
            let topics = &broker.broker().topics;
            topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;
            return Ok(IngestQueue::Embedded(broker, broker_dir));
        };
        let config = topic_config
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| anyhow::anyhow!("--topic-config wants KEY=VALUE, not {kv:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(IngestQueue::External(
            RunTopic::create(bootstrap, "bench", config).await?,
        ))
    }

    fn bootstrap(&self) -> String {
        match self {
            IngestQueue::Embedded(b, _) => b.addr.clone(),
            IngestQueue::External(t) => t.bootstrap.clone(),
        }
    }

    fn topic(&self) -> String {
        match self {
            IngestQueue::Embedded(..) => shared::topics::SECKILL_ORDERS.into(),
            IngestQueue::External(t) => t.name.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            IngestQueue::Embedded(..) => "in-process broker, flush fsync".into(),
            IngestQueue::External(t) => format!("Kafka cluster {}, topic {}", t.bootstrap, t.name),
        }
    }

    /// Messages in the topic: the sum of its partitions' high watermarks.
    async fn queued(&self) -> anyhow::Result<i64> {
        match self {
            IngestQueue::Embedded(broker, _) => Ok(broker
                .broker()
                .topics
                .get(shared::topics::SECKILL_ORDERS)
                .map(|t| t.partitions().iter().map(|p| p.high_watermark()).sum())
                .unwrap_or(0)),
            IngestQueue::External(t) => t.queued().await,
        }
    }

    /// Stops the in-process broker and removes its data, or deletes the run's topic.
    async fn finish(self) {
        match self {
            IngestQueue::Embedded(broker, dir) => {
                drop(broker);
                let _ = std::fs::remove_dir_all(dir);
            }
            IngestQueue::External(t) => t.delete().await,
        }
    }
}

async fn ingest(
    args: &Args,
    requests: usize,
    connections: usize,
    linger: Duration,
    queue: IngestQueue,
) -> anyhow::Result<()> {
    let db = BenchDb::create(&args.admin_url).await?;
    sqlx::query("UPDATE items SET initial_stock = 100000000, stock = 100000000")
        .execute(&db.pool)
        .await?;

    let secret = "order-bench-secret-order-bench-secret";
    let api = loadtest::embedded::api(
        ApiConfig {
            bootstrap: queue.bootstrap(),
            topic: queue.topic(),
            jwt_secret: secret.into(),
            limits: services::api::limits::RateLimits::off(),
            producer_linger: linger,
            ..ApiConfig::default()
        },
        db.pool.clone(),
    )
    .await?;
    let api_url = api.url();

    let bare_url = bare_handler()?;

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
        "order-bench ingest: {requests} requests, {connections} connections, {}, producer linger {:.2} ms",
        queue.describe(),
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
    let queued = queue.queued().await?;
    anyhow::ensure!(
        queued as usize == requests - api_err,
        "queue holds {queued}, but {} were accepted",
        requests - api_err
    );
    // Stop the API (and its producer) before the broker goes away.
    api.stop().await;
    queue.finish().await;
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
            ref bootstrap,
            ref topic_config,
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
            let queue = IngestQueue::start(&args, bootstrap.as_deref(), topic_config).await?;
            ingest(&args, requests, connections, linger, queue).await
        }
        Cmd::Refusals {
            requests,
            connections,
            wrk_seconds,
        } => {
            anyhow::ensure!(
                requests >= 1000 && connections > 0,
                "--requests must be at least 1000 and --connections positive"
            );
            refusals(&args, requests, connections, wrk_seconds).await
        }
        Cmd::Drain { orders } => {
            anyhow::ensure!(orders >= 10, "--orders must be at least 10");
            drain(&args, orders).await
        }
    }
}
