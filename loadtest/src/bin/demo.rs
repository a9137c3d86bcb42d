//! `demo`: the peak-shaving demo, one command, no configuration.
//!
//! Starts a throwaway PostgreSQL (unless DATABASE_URL is given), the broker, the order API (with
//! its live dashboard) and two order workers, all in this process except PostgreSQL; seeds a
//! sale that opens a few seconds later; at the opening, buyers arrive at a fixed rate (open
//! loop) well above what the workers write, so the queue takes the peak: the backlog builds
//! while the sale sells out, then drains at the pace the workers are allowed. It prints the
//! dashboard's address at start and the rates while it runs, then checks the outcome against
//! the database, reports the peak and draws the chart.
//!
//! The workers are capped (`--drain-rate`, per worker; `WORKER_MAX_RATE` in production): on
//! this machine they write ~100k orders/s in batches, faster than any burst one machine can
//! send, and a real shop's database has other work to do. `--drain-rate 0` removes the cap.
//!
//! `--bootstrap HOST:PORT[,...]` runs the sale on an external Kafka cluster (Apache Kafka,
//! Redpanda, or this project's broker started on its own) instead of the embedded broker: the
//! order topic and the workers' group get names of this run's own, so an earlier run's events
//! are never replayed into this run's database, and the topic is deleted at the end.
//!
//! `--direct` runs the same arrivals against an API that writes each order synchronously,
//! `--bot-rate N` adds a script buying as one user N times a second beside the buyers, `--hold`
//! keeps the stack up after the run until Ctrl-C. Ctrl-C stops everything and removes the
//! temporary cluster and broker data.
//!
//! `cargo run --release --bin demo` (see `--help`).

use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use loadtest::bot::{self, BotConfig};
use loadtest::burst::{self, BurstConfig, BurstResult, Live};
use loadtest::chart::{self, Sample};
use loadtest::embedded;
use loadtest::run_topic::RunTopic;
use loadtest::throwaway_pg::ThrowawayPg;
use services::api::auth::TokenKeys;
use services::api::limits::RateLimits;
use services::api::ApiConfig;
use services::worker::WorkerConfig;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The workspace's allocator (see `shared::allocator`).
#[global_allocator]
static ALLOC: shared::allocator::Allocator = shared::allocator::ALLOCATOR;

#[derive(Debug, Parser)]
#[command(
    about = "The seckill peak-shaving demo: a burst of buys, queued, drained into PostgreSQL"
)]
struct Args {
    /// Use this PostgreSQL database instead of a throwaway cluster. Its sale tables are reset.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Buyers arriving per second (open loop: whatever the answers).
    #[arg(long, default_value_t = 8_000.0)]
    rate: f64,
    /// Seconds of arrivals.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Instead of --rate/--duration: this many buys as fast as --connections allow.
    #[arg(long)]
    buys: Option<usize>,
    #[arg(long, default_value_t = 50_000)]
    users: u64,
    #[arg(long, default_value_t = 5)]
    items: u64,
    /// Units of each item.
    #[arg(long, default_value_t = 6000)]
    stock: i32,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Orders per second each worker writes at most (0: no cap).
    #[arg(long, default_value_t = 2000)]
    drain_rate: u32,
    /// The sale opens this many seconds after start-up.
    #[arg(long, default_value_t = 3.0)]
    opens_in: f64,
    /// Also run a bot: one user buying this many times a second beside the buyers.
    #[arg(long)]
    bot_rate: Option<f64>,
    /// Keep everything running after the run (the dashboard stays live) until Ctrl-C.
    #[arg(long)]
    hold: bool,
    /// The API's address (default: a free port on loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Also run the arrivals against an API writing each order to PostgreSQL synchronously.
    #[arg(long)]
    direct: bool,
    /// Where the chart (peak-shaving.png) goes.
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run on this Kafka cluster (`HOST:PORT[,...]`) instead of the embedded broker. The order
    /// topic is created with the cluster's default replication factor and deleted afterwards.
    #[arg(long)]
    bootstrap: Option<String>,
}

/// What the database says after a run, checked against what the API answered.
#[derive(Debug, serde::Serialize)]
struct Verified {
    requests: usize,
    accepted: usize,
    sold_out_answers: u64,
    duplicate_answers: u64,
    limited_answers: u64,
    errors: u64,
    order_rows: i64,
    accepted_with_exactly_one_row: i64,
    confirmed: i64,
    rejected_sold_out: i64,
    rejected_duplicate: i64,
    /// Of the 202s, the share that ended rejected for want of stock (the API refuses once the
    /// queue claims the stock, so this stays near 0).
    accepted_then_sold_out_pct: f64,
    units_sold: i64,
    stock_left: i64,
    min_stock: i64,
    ok: bool,
}

/// A fresh sale: `items` items of `stock` units, opening `opens_in` seconds from now.
async fn seed(pool: &PgPool, items: u64, stock: i32, opens_in: f64) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE orders, order_counts, api_admission")
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM items").execute(pool).await?;
    let names = [
        "Phone X",
        "Laptop Air",
        "Headphones Pro",
        "Watch S",
        "Tablet M",
    ];
    sqlx::query(
        "INSERT INTO items (id, name, initial_stock, stock, sale_start) \
         SELECT g, COALESCE(($3::text[])[g], 'Flash item ' || g), $2, $2, \
                now() + make_interval(secs => $4) \
         FROM generate_series(1, $1::bigint) g",
    )
    .bind(items as i64)
    .bind(stock)
    .bind(&names[..])
    .bind(opens_in)
    .execute(pool)
    .await?;
    Ok(())
}

async fn orders(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn verify(pool: &PgPool, r: &BurstResult, live: &Live) -> anyhow::Result<Verified> {
    let count = |status: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE status = $1::order_status")
            .bind(status)
            .fetch_one(pool)
            .await
    };
    let with_row: i64 =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
            .bind(&r.accepted)
            .fetch_one(pool)
            .await?;
    let (sold, left, min): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(initial_stock - stock), 0)::bigint, COALESCE(sum(stock), 0)::bigint, \
         COALESCE(min(stock), 0)::bigint FROM items",
    )
    .fetch_one(pool)
    .await?;
    let confirmed_units: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(qty), 0)::bigint FROM orders WHERE status = 'confirmed'",
    )
    .fetch_one(pool)
    .await?;
    let distinct: std::collections::HashSet<&Uuid> = r.accepted.iter().collect();
    let v = Verified {
        requests: r.statuses.values().sum::<u64>() as usize,
        accepted: r.accepted.len(),
        sold_out_answers: live.sold_out.load(Ordering::Relaxed),
        duplicate_answers: live.duplicates.load(Ordering::Relaxed),
        limited_answers: live.limited.load(Ordering::Relaxed),
        errors: live.errors.load(Ordering::Relaxed),
        order_rows: orders(pool).await,
        accepted_with_exactly_one_row: with_row,
        confirmed: count("confirmed").await?,
        rejected_sold_out: count("rejected_sold_out").await?,
        rejected_duplicate: count("rejected_duplicate").await?,
        accepted_then_sold_out_pct: 0.0,
        units_sold: sold,
        stock_left: left,
        min_stock: min,
        ok: false,
    };
    let v = Verified {
        accepted_then_sold_out_pct: 100.0 * v.rejected_sold_out as f64 / (v.accepted.max(1)) as f64,
        ..v
    };
    let ok = distinct.len() == r.accepted.len()
        && v.order_rows == v.accepted as i64
        && v.accepted_with_exactly_one_row == v.accepted as i64
        && confirmed_units == v.units_sold
        && v.min_stock >= 0;
    Ok(Verified { ok, ..v })
}

fn print_verified(label: &str, v: &Verified) {
    let mark = |b: bool| if b { "ok" } else { "FAILED" };
    println!("\n{label}: verified against the database");
    println!(
        "  requests answered        {:>9}   (202/201 accepted {}, 410 sold out {}, 409 already bought {}, 429 limited {}, errors {})",
        v.requests, v.accepted, v.sold_out_answers, v.duplicate_answers, v.limited_answers, v.errors
    );
    println!(
        "  every accepted request is exactly one order row: {} ({} rows, {} accepted)",
        mark(
            v.order_rows == v.accepted as i64
                && v.accepted_with_exactly_one_row == v.accepted as i64
        ),
        v.order_rows,
        v.accepted
    );
    println!(
        "  confirmed = stock sold: {} ({} confirmed, {} units sold, {} left)",
        mark(v.ok),
        v.confirmed,
        v.units_sold,
        v.stock_left
    );
    println!(
        "  stock never negative: {} (lowest {})",
        mark(v.min_stock >= 0),
        v.min_stock
    );
    println!(
        "  rejected: {} sold out ({:.2}% of the accepted), {} duplicate (one per user and item)",
        v.rejected_sold_out, v.accepted_then_sold_out_pct, v.rejected_duplicate
    );
}

/// Prints a progress line every half second and records the samples for the chart, until the
/// burst is over and every accepted buy is in the database.
async fn watch(
    pool: &PgPool,
    live: &Live,
    burst: &mut tokio::task::JoinHandle<BurstResult>,
) -> anyhow::Result<(BurstResult, Vec<Sample>, Duration)> {
    let started = Instant::now();
    let mut samples = vec![Sample {
        t: 0.0,
        demand: 0.0,
        ingest: 0.0,
        drain: 0.0,
        backlog: 0.0,
    }];
    let (mut last_t, mut last_sent, mut last_acc, mut last_ord) = (0.0, 0u64, 0u64, 0i64);
    let mut last_print = 0.0;
    let mut result = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            r = &mut *burst, if result.is_none() => { result = Some(r.context("load generator")?); }
            _ = tick.tick() => {}
        }
        let t = started.elapsed().as_secs_f64();
        let sent = live.sent.load(Ordering::Relaxed);
        let acc = live.accepted.load(Ordering::Relaxed);
        let ord = orders(pool).await;
        let dt = (t - last_t).max(0.001);
        let s = Sample {
            t,
            demand: (sent - last_sent) as f64 / dt,
            ingest: (acc - last_acc) as f64 / dt,
            drain: (ord - last_ord).max(0) as f64 / dt,
            backlog: (acc as i64 - ord).max(0) as f64,
        };
        if t - last_t >= 0.09 {
            samples.push(s);
            (last_t, last_sent, last_acc, last_ord) = (t, sent, acc, ord);
        }
        if t - last_print >= 0.5 {
            last_print = t;
            // Rates over the last half second.
            let recent: Vec<&Sample> = samples.iter().rev().take(5).collect();
            let avg = |f: fn(&Sample) -> f64| {
                recent.iter().map(|s| f(s)).sum::<f64>() / recent.len().max(1) as f64
            };
            println!(
                "  {t:>6.1}s  requests {:>7.0}/s  accepted {:>7.0}/s  backlog {:>7.0}  drain {:>7.0}/s  orders in db {ord:>7}",
                avg(|s| s.demand),
                avg(|s| s.ingest),
                s.backlog,
                avg(|s| s.drain)
            );
        }
        if let Some(r) = &result {
            if ord >= r.accepted.len() as i64 {
                samples.push(s);
                let took = started.elapsed();
                return Ok((result.take().unwrap_or_default(), samples, took));
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the workers stalled: {ord} of {} orders written",
                r.accepted.len()
            );
        }
    }
}

fn summary_line(label: &str, r: &mut BurstResult, took: Duration) -> (f64, f64, f64) {
    let rate = r.statuses.values().sum::<u64>() as f64 / r.elapsed.as_secs_f64().max(0.001);
    let (p50, p99, _) = r.latencies.summary_ms();
    println!(
        "{label}: arrivals answered in {:.1}s ({rate:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms); last order written after {:.1}s",
        r.elapsed.as_secs_f64(),
        took.as_secs_f64()
    );
    (rate, p50, p99)
}

/// The peak, from the samples: the backlog's high point, when, and how long the queue held buys.
#[derive(Debug, serde::Serialize)]
struct Peak {
    backlog_max: f64,
    at_s: f64,
    /// From the first buy queued but not yet written to the backlog's return to zero.
    held_s: f64,
}

fn peak(samples: &[Sample]) -> Peak {
    let top = samples
        .iter()
        .max_by(|a, b| a.backlog.total_cmp(&b.backlog))
        .copied()
        .unwrap_or(Sample {
            t: 0.0,
            demand: 0.0,
            ingest: 0.0,
            drain: 0.0,
            backlog: 0.0,
        });
    let first = samples
        .iter()
        .find(|s| s.backlog > 0.0)
        .map(|s| s.t)
        .unwrap_or(top.t);
    let last = samples
        .iter()
        .filter(|s| s.t >= top.t)
        .find(|s| s.backlog <= 0.0)
        .or(samples.last())
        .map(|s| s.t)
        .unwrap_or(top.t);
    Peak {
        backlog_max: top.backlog,
        at_s: top.t,
        held_s: (last - first).max(0.0),
    }
}

fn burst_config(args: &Args, base: String, secret: &str) -> BurstConfig {
    let (buys, rate) = match args.buys {
        Some(n) => (n, None),
        None => (
            (args.rate * args.duration).round() as usize,
            Some(args.rate),
        ),
    };
    BurstConfig {
        base,
        buys,
        first_user: 1,
        users: args.users,
        items: args.items,
        connections: args.connections,
        rate,
        secret: Some(secret.to_string()),
        seed: args.seed,
    }
}

/// Where the demo's buys queue: the embedded broker (the default: one command, nothing to set
/// up), or an external Kafka cluster with a topic and a worker group of this run's own.
enum Queue {
    /// The broker, then its data directory, removed when dropped (fields drop in this order).
    Embedded {
        broker: broker::EmbeddedBroker,
        _data: tempfile::TempDir,
    },
    External {
        topic: RunTopic,
        group: String,
    },
}

impl Queue {
    async fn start(external: Option<&str>) -> anyhow::Result<Queue> {
        let Some(bootstrap) = external else {
            let dir = tempfile::Builder::new()
                .prefix("seckill-demo-broker-")
                .tempdir()?;
            let broker = embedded::fsync_broker(dir.path())?;
            let topics = &broker.broker().topics;
            topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;
            return Ok(Queue::Embedded { broker, _data: dir });
        };
        // Created before the API and the workers start, with the cluster's replication factor.
        let topic = RunTopic::create(bootstrap, "demo", Vec::new()).await?;
        let group = format!("order-workers.{}", topic.name);
        Ok(Queue::External { topic, group })
    }

    fn worker_config(&self) -> WorkerConfig {
        match self {
            Queue::Embedded { broker, .. } => WorkerConfig::orders(&broker.addr),
            Queue::External { topic, group } => WorkerConfig {
                topic: topic.name.clone(),
                group_id: group.clone(),
                ..WorkerConfig::orders(&topic.bootstrap)
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Queue::Embedded { broker, .. } => format!("broker {}", broker.addr),
            Queue::External { topic, group } => format!(
                "Kafka cluster {} (topic {}, group {group})",
                topic.bootstrap, topic.name
            ),
        }
    }

    /// Stops the embedded broker (and removes its data), or deletes this run's topic.
    async fn finish(self) {
        if let Queue::External { topic, .. } = self {
            topic.delete().await;
        }
    }
}

/// Ctrl-C, and whether the demo is holding (then Ctrl-C means "clean up and finish").
#[derive(Clone, Default)]
struct Interrupt {
    pressed: CancellationToken,
    holding: Arc<std::sync::atomic::AtomicBool>,
}

async fn demo(args: Args, interrupt: Interrupt) -> anyhow::Result<bool> {
    let pg = match &args.database_url {
        Some(_) => None,
        None => {
            println!("starting a throwaway PostgreSQL (initdb into a temporary directory)...");
            Some(ThrowawayPg::start()?)
        }
    };
    let url = args
        .database_url
        .clone()
        .or_else(|| pg.as_ref().map(|p| p.url.clone()))
        .context("no database")?;
    let pool = services::db::connect(&url, 16)
        .await
        .context("connect to PostgreSQL")?;
    seed(&pool, args.items, args.stock, args.opens_in).await?;
    let opens_at = Instant::now() + Duration::from_secs_f64(args.opens_in);

    let queue = Queue::start(args.bootstrap.as_deref()).await?;
    let workers_config = queue.worker_config();
    let secret = format!(
        "demo-{}-{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let api = services::api::Api::bind(
        ApiConfig {
            listen: args.listen,
            bootstrap: workers_config.bootstrap.clone(),
            topic: workers_config.topic.clone(),
            worker_group: workers_config.group_id.clone(),
            jwt_secret: secret.clone(),
            items_refresh: Duration::from_millis(200),
            // Every buyer here is 127.0.0.1: the per-address limit would be the load
            // generator's, not a buyer's. The per-user limit stays as in production.
            limits: RateLimits {
                per_address: None,
                status_per_address: None,
                ..RateLimits::default()
            },
            dashboard: true,
            ..ApiConfig::default()
        },
        pool.clone(),
    )
    .await?
    .spawn();
    let base = api.url();
    let stop_workers = CancellationToken::new();
    let drain_rate = (args.drain_rate > 0).then_some(args.drain_rate);
    let workers = embedded::order_workers(
        args.workers,
        &workers_config,
        &pool,
        drain_rate,
        &stop_workers,
    )
    .await?;
    let config = burst_config(&args, base.clone(), &secret);
    println!(
        "\ndashboard: {base}/dashboard   (open it now: the sale opens in {:.0} s)\n",
        args.opens_in
    );
    println!(
        "{} | API {base} | {} order workers, {} | sale: {} items x {} units",
        queue.describe(),
        args.workers,
        match drain_rate {
            Some(r) => format!("{r} orders/s each at most"),
            None => "uncapped".into(),
        },
        args.items,
        args.stock,
    );
    match config.rate {
        Some(rate) => println!(
            "arrivals: {rate:.0} buys/s for {:.0} s ({} buys) from {} users\n",
            args.duration, config.buys, args.users
        ),
        None => println!(
            "burst: {} buys from {} users over {} connections\n",
            config.buys, args.users, args.connections
        ),
    }
    tokio::time::sleep_until(opens_at.into()).await;
    println!("the sale is open");
    let bot = args.bot_rate.map(|rate| {
        let user = 9_000_000_000u64;
        tokio::spawn(bot::run(BotConfig {
            base: base.clone(),
            user,
            token: Some(TokenKeys::new(secret.as_bytes()).mint(user as i64, 3600)),
            items: args.items,
            rate,
            duration: Duration::from_secs_f64(match config.rate {
                Some(r) => config.buys as f64 / r,
                None => args.duration,
            }),
        }))
    });
    let live = Arc::new(Live::default());
    let mut burst = tokio::spawn(burst::run(config.clone(), live.clone()));
    let (mut queued, samples, took) = watch(&pool, &live, &mut burst).await?;
    let q = summary_line("queued", &mut queued, took);
    // The bot's 202s are orders too: the checks below count them with the buyers'.
    let mut bot_result = None;
    if let Some(bot) = bot {
        let b = bot.await??;
        queued.accepted.extend(b.accepted.iter().copied());
        live.accepted
            .fetch_add(b.accepted.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        while orders(&pool).await < queued.accepted.len() as i64
            && started.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bot_result = Some(b);
    }
    let verified = verify(&pool, &queued, &live).await?;
    print_verified("queued", &verified);
    let mut all_ok = verified.ok;
    if let Some(b) = bot_result {
        let orders = b.orders(&pool, 9_000_000_000).await?;
        let confirmed = orders.get("confirmed").copied().unwrap_or(0);
        let fair = confirmed as u64 <= args.items && b.accepted.len() as u64 <= args.items;
        println!(
            "  bot: {} requests ({:?}); {} accepted, orders {:?}: {}",
            b.sent,
            b.statuses,
            b.accepted.len(),
            orders,
            if fair {
                "no more than a person (one per item)"
            } else {
                "MORE than its share: FAILED"
            }
        );
        all_ok &= fair;
    }
    let p = peak(&samples);
    println!(
        "\npeak: the backlog reached {:.0} buys at {:.1} s; the queue held buys for {:.1} s while the workers wrote at their pace",
        p.backlog_max, p.at_s, p.held_s
    );
    std::fs::create_dir_all(&args.out)?;
    let png = args.out.join("peak-shaving.png");
    chart::draw(
        &png,
        &format!(
            "Peak shaving: {} buys at {}, {} workers",
            config.buys,
            match config.rate {
                Some(r) => format!("{r:.0}/s"),
                None => "full speed".into(),
            },
            args.workers
        ),
        &samples,
    )?;
    println!("chart: {}", png.display());
    println!("summary: {}", serde_json::to_string(&verified)?);
    println!("peak summary: {}", serde_json::to_string(&p)?);
    if args.hold {
        println!(
            "\n--hold: the stack stays up; dashboard {base}/dashboard; Ctrl-C to stop and clean up"
        );
        interrupt.holding.store(true, Ordering::SeqCst);
        interrupt.pressed.cancelled().await;
        println!("stopping and cleaning up");
    }
    stop_workers.cancel();
    for w in workers {
        let _ = w.await;
    }
    api.stop().await;

    if args.direct {
        println!(
            "\n--direct: the same arrivals, each order written to PostgreSQL before the answer"
        );
        seed(&pool, args.items, args.stock, 0.0).await?;
        let listener = shared::listener::bind("127.0.0.1:0".parse()?)?;
        let direct_base = format!("http://{}", listener.local_addr()?);
        let direct_pool = services::db::connect(&url, 32).await?;
        let server = tokio::spawn(
            axum::serve(listener, loadtest::direct::app(direct_pool, &secret)).into_future(),
        );
        let live = Arc::new(Live::default());
        let mut burst = tokio::spawn(burst::run(
            BurstConfig {
                base: direct_base,
                ..config
            },
            live.clone(),
        ));
        let (mut direct, _, took) = watch(&pool, &live, &mut burst).await?;
        let d = summary_line("direct", &mut direct, took);
        let dv = verify(&pool, &direct, &live).await?;
        print_verified("direct", &dv);
        server.abort();
        println!("\n                     queued (this product)   direct (no queue)");
        println!("  throughput req/s   {:>20.0}   {:>17.0}", q.0, d.0);
        println!("  p50 latency ms     {:>20.1}   {:>17.1}", q.1, d.1);
        println!("  p99 latency ms     {:>20.1}   {:>17.1}", q.2, d.2);
        println!(
            "  errors             {:>20}   {:>17}",
            verified.errors, dv.errors
        );
        println!("direct summary: {}", serde_json::to_string(&dv)?);
        all_ok &= dv.ok;
    }
    queue.finish().await;
    pool.close().await;
    drop(pg);
    Ok(all_ok)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // librdkafka reports the broker going away at the end as errors: expected here.
    shared::telemetry::init_tracing_or("error,librdkafka=off,rdkafka=off");
    let args = Args::parse();
    anyhow::ensure!(
        args.users > 0 && args.items > 0 && args.items <= 1000 && args.connections > 0,
        "--users, --items (at most 1000) and --connections must be positive"
    );
    anyhow::ensure!(
        args.buys.is_some_and(|b| b > 0)
            || (args.buys.is_none()
                && args.rate > 0.0
                && args.rate.is_finite()
                && args.duration > 0.0
                && args.duration.is_finite()),
        "--buys, or --rate and --duration, must be positive"
    );
    anyhow::ensure!(
        (0.0..=3600.0).contains(&args.opens_in),
        "--opens-in must be within 0..=3600 seconds"
    );
    anyhow::ensure!(
        args.bot_rate.is_none_or(|r| r > 0.0 && r.is_finite()),
        "--bot-rate must be positive"
    );
    anyhow::ensure!(args.stock >= 0, "--stock must not be negative");
    let interrupt = Interrupt::default();
    tokio::spawn({
        let pressed = interrupt.pressed.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                pressed.cancel();
            }
        }
    });
    let mut run = Box::pin(demo(args, interrupt.clone()));
    let finished = tokio::select! {
        r = &mut run => Some(r),
        _ = interrupt.pressed.cancelled() => None,
    };
    let ok = match finished {
        Some(r) => r?,
        // --hold: the demo cleans up and finishes with its verdict.
        None if interrupt.holding.load(Ordering::SeqCst) => run.await?,
        None => {
            // Dropping the demo's future stops the broker and PostgreSQL and removes their
            // temporary directories (process::exit would skip that).
            drop(run);
            eprintln!("\ninterrupted: stopped everything, removed the temporary cluster");
            std::process::exit(130);
        }
    };
    if ok {
        println!("\nVERIFIED: every accepted buy is exactly one order; nothing oversold.");
        Ok(())
    } else {
        anyhow::bail!("verification FAILED (see above)")
    }
}
