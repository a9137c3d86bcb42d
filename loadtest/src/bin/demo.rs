//! `demo`: the peak-shaving demo, one command, no configuration.
//!
//! Starts a throwaway PostgreSQL (unless DATABASE_URL is given), the broker, the order API and
//! two order workers, all in this process except PostgreSQL; seeds a sale; fires a burst of buys
//! from many users as fast as the machine allows; shows ingest rate, backlog, drain rate and
//! orders written while it runs; then checks the outcome against the database and draws the
//! chart. `--direct` runs the same burst against an API that writes each order synchronously.
//! Ctrl-C stops everything and removes the temporary cluster and broker data.
//!
//! `cargo run --release --bin demo` (see `--help`).

use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use loadtest::burst::{self, BurstConfig, BurstResult, Live};
use loadtest::chart::{self, Sample};
use loadtest::embedded;
use loadtest::throwaway_pg::ThrowawayPg;
use services::api::ApiConfig;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    about = "The seckill peak-shaving demo: a burst of buys, queued, drained into PostgreSQL"
)]
struct Args {
    /// Use this PostgreSQL database instead of a throwaway cluster. Its sale tables are reset.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    buys: usize,
    #[arg(long, default_value_t = 20_000)]
    users: u64,
    #[arg(long, default_value_t = 5)]
    items: u64,
    /// Units of each item.
    #[arg(long, default_value_t = 1000)]
    stock: i32,
    /// Concurrent HTTP connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also run the burst against an API writing each order to PostgreSQL synchronously.
    #[arg(long)]
    direct: bool,
    /// Where the chart (peak-shaving.png) goes.
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// What the database says after a run, checked against what the API answered.
#[derive(Debug, serde::Serialize)]
struct Verified {
    requests: usize,
    accepted: usize,
    sold_out_answers: u64,
    duplicate_answers: u64,
    errors: u64,
    order_rows: i64,
    accepted_with_exactly_one_row: i64,
    confirmed: i64,
    rejected_sold_out: i64,
    rejected_duplicate: i64,
    units_sold: i64,
    stock_left: i64,
    min_stock: i64,
    ok: bool,
}

async fn seed(pool: &PgPool, items: u64, stock: i32) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE orders").execute(pool).await?;
    sqlx::query("DELETE FROM items").execute(pool).await?;
    sqlx::query(
        "INSERT INTO items (id, name, initial_stock, stock) \
         SELECT g, 'flash item ' || g, $2, $2 FROM generate_series(1, $1::bigint) g",
    )
    .bind(items as i64)
    .bind(stock)
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
        errors: live.errors.load(Ordering::Relaxed),
        order_rows: orders(pool).await,
        accepted_with_exactly_one_row: with_row,
        confirmed: count("confirmed").await?,
        rejected_sold_out: count("rejected_sold_out").await?,
        rejected_duplicate: count("rejected_duplicate").await?,
        units_sold: sold,
        stock_left: left,
        min_stock: min,
        ok: false,
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
        "  requests answered        {:>9}   (202/201 accepted {}, 410 sold out {}, 409 already bought {}, errors {})",
        v.requests, v.accepted, v.sold_out_answers, v.duplicate_answers, v.errors
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
        "  rejected: {} sold out, {} duplicate (one per user and item)",
        v.rejected_sold_out, v.rejected_duplicate
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
        "{label}: burst answered in {:.1}s ({rate:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms); last order written after {:.1}s",
        r.elapsed.as_secs_f64(),
        took.as_secs_f64()
    );
    (rate, p50, p99)
}

async fn demo(args: Args) -> anyhow::Result<bool> {
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
    seed(&pool, args.items, args.stock).await?;

    let broker_dir = tempfile::Builder::new()
        .prefix("seckill-demo-broker-")
        .tempdir()?;
    let broker = embedded::fsync_broker(broker_dir.path())?;
    let topics = &broker.broker().topics;
    topics.create(shared::topics::SECKILL_ORDERS, 6, topics.defaults().clone())?;
    let secret = format!(
        "demo-{}-{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let api = embedded::api(
        ApiConfig {
            bootstrap: broker.addr.clone(),
            jwt_secret: secret.clone(),
            items_refresh: Duration::from_millis(200),
            limits: services::api::limits::RateLimits::off(),
            ..ApiConfig::default()
        },
        pool.clone(),
    )
    .await?;
    let base = api.url();
    let stop_workers = CancellationToken::new();
    let workers = embedded::order_workers(args.workers, &broker.addr, &pool, &stop_workers).await?;
    println!(
        "broker {} | API {base} | {} order workers | sale: {} items x {} units\n\
         burst: {} buys from {} users over {} connections\n",
        broker.addr, args.workers, args.items, args.stock, args.buys, args.users, args.connections
    );
    let config = BurstConfig {
        base: base.clone(),
        buys: args.buys,
        first_user: 1,
        users: args.users,
        items: args.items,
        connections: args.connections,
        rate: None,
        secret: Some(secret.clone()),
        seed: args.seed,
    };
    let live = Arc::new(Live::default());
    let mut burst = tokio::spawn(burst::run(config.clone(), live.clone()));
    let (mut queued, samples, took) = watch(&pool, &live, &mut burst).await?;
    let q = summary_line("queued", &mut queued, took);
    let verified = verify(&pool, &queued, &live).await?;
    print_verified("queued", &verified);
    std::fs::create_dir_all(&args.out)?;
    let png = args.out.join("peak-shaving.png");
    chart::draw(
        &png,
        &format!("Peak shaving: {} buys, {} workers", args.buys, args.workers),
        &samples,
    )?;
    println!("\nchart: {}", png.display());
    stop_workers.cancel();
    for w in workers {
        let _ = w.await;
    }
    api.stop().await;
    let mut all_ok = verified.ok;
    println!("summary: {}", serde_json::to_string(&verified)?);

    if args.direct {
        println!("\n--direct: the same burst, each order written to PostgreSQL before the answer");
        seed(&pool, args.items, args.stock).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
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
    drop(broker);
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
        args.buys > 0 && args.users > 0 && args.items > 0,
        "--buys, --users and --items must be positive"
    );
    anyhow::ensure!(args.stock >= 0, "--stock must not be negative");
    let ok = tokio::select! {
        r = demo(args) => r?,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the demo's future stops the broker and PostgreSQL and removes their
            // temporary directories.
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
