//! `loadgen`: the demo's load generator on its own, against any running stack; the checker of
//! a run's promises against the database; and the token minter for k6.
//!
//! - `loadgen buy --base http://localhost:8080 --buys 100000 --users 20000 --secret "$JWT_SECRET"
//!   --out results.jsonl`: a burst of `POST /buy` as fast as `--connections` allow (or, with
//!   `--rate N --duration S`, N buys per second for S seconds); prints answers by status, the rate
//!   and p50/p99, and writes every request's outcome as a JSON line. Without `--secret` it sends
//!   `user_id` in the body (the API's load-test mode).
//! - `loadgen verify --results results.jsonl --database-url postgres://...`: every 202 exactly
//!   one order, no order nobody asked for, confirmed units = units sold, stock never negative, at
//!   most one confirmed order per user and item. Without `--results` (after k6 or oha, which keep
//!   no request ids) only the database-side checks. Waits for the workers to drain first.
//! - `loadgen tokens --users 20000 --secret "$JWT_SECRET" --out loadtest/k6/tokens.json`: a JSON
//!   array of bearer tokens, token i for user i+1.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use loadtest::burst::{self, BurstConfig, Live};
use loadtest::verify::{self, RequestRecord};

#[derive(Debug, Parser)]
#[command(about = "Load generator for the seckill API, its verifier, and token minting for k6")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Mint one bearer token per user into a JSON file.
    Tokens {
        #[arg(long, default_value_t = 20_000)]
        users: u64,
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: String,
        /// Validity of the tokens.
        #[arg(long, default_value_t = 24 * 3600)]
        ttl_secs: i64,
        #[arg(long, default_value = "loadtest/k6/tokens.json")]
        out: PathBuf,
    },
    /// Fire buys at a running API.
    Buy {
        #[arg(long, default_value = "http://localhost:8080")]
        base: String,
        /// How many buys (closed loop); with --rate, --duration decides.
        #[arg(long, default_value_t = 100_000)]
        buys: usize,
        /// Open loop: buys per second, whatever the answers (with --duration).
        #[arg(long, requires = "duration")]
        rate: Option<f64>,
        /// Seconds of the open loop.
        #[arg(long, requires = "rate")]
        duration: Option<f64>,
        #[arg(long, default_value_t = 20_000)]
        users: u64,
        #[arg(long, default_value_t = 5)]
        items: u64,
        /// Concurrent requests at most.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// The API's JWT secret; without it, load-test mode (user_id in the body).
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Write every request's outcome here, one JSON object per line.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a run's promises against the database.
    Verify {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The JSON lines `loadgen buy --out` wrote; without it, the database-side checks only.
        #[arg(long)]
        results: Option<PathBuf>,
        /// Longest wait for the workers to write every accepted buy.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Tokens {
            users,
            secret,
            ttl_secs,
            out,
        } => {
            anyhow::ensure!(
                secret.len() >= 32,
                "the secret must be at least 32 bytes, as the API requires"
            );
            anyhow::ensure!(
                users > 0 && ttl_secs > 0,
                "--users and --ttl-secs must be positive"
            );
            let tokens = burst::mint_tokens(&secret, 1, users, ttl_secs);
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_vec(&tokens)?)
                .with_context(|| format!("write {}", out.display()))?;
            println!(
                "{} tokens (users 1..={users}) -> {}",
                tokens.len(),
                out.display()
            );
        }
        Cmd::Buy {
            base,
            buys,
            rate,
            duration,
            users,
            items,
            connections,
            secret,
            seed,
            out,
        } => {
            let buys = match (rate, duration) {
                (Some(r), Some(d)) => {
                    anyhow::ensure!(
                        r > 0.0 && d > 0.0 && r.is_finite() && d.is_finite(),
                        "--rate and --duration must be positive"
                    );
                    (r * d).round() as usize
                }
                _ => buys,
            };
            anyhow::ensure!(
                buys > 0 && users > 0 && items > 0 && connections > 0,
                "sizes must be positive"
            );
            // Fail before the run, not after it.
            let file = out
                .as_ref()
                .map(|p| {
                    std::fs::File::create(p).with_context(|| format!("create {}", p.display()))
                })
                .transpose()?;
            let live = Arc::new(Live::default());
            let mut r = burst::run(
                BurstConfig {
                    base,
                    buys,
                    first_user: 1,
                    users,
                    items,
                    connections,
                    rate,
                    secret,
                    seed,
                },
                live,
            )
            .await;
            let (p50, p99, max) = r.latencies.summary_ms();
            let answered: u64 = r.statuses.values().sum();
            println!(
                "{answered} requests in {:.2}s: {:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
                r.elapsed.as_secs_f64(),
                answered as f64 / r.elapsed.as_secs_f64().max(0.001)
            );
            for (status, n) in &r.statuses {
                let what = match status {
                    0 => "no answer",
                    202 => "accepted (queued)",
                    409 => "already bought",
                    410 => "sold out",
                    425 => "sale not open",
                    429 => "rate limited",
                    503 => "queue unavailable",
                    _ => "",
                };
                println!("  {status:>3} {what:<18} {n}");
            }
            println!("accepted request ids: {}", r.accepted.len());
            if let (Some(file), Some(path)) = (file, &out) {
                let mut w = BufWriter::new(file);
                for rec in &r.records {
                    serde_json::to_writer(&mut w, rec)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
                println!("{} outcomes -> {}", r.records.len(), path.display());
            }
        }
        Cmd::Verify {
            database_url,
            results,
            wait_secs,
        } => {
            let records = match &results {
                Some(p) => read_records(p)?,
                None => Vec::new(),
            };
            let pool = services::db::connect(&database_url, 2)
                .await
                .context("connect to PostgreSQL")?;
            wait_for_drain(&pool, &records, Duration::from_secs(wait_secs)).await?;
            let v = verify::verify(&pool, &records).await?;
            if results.is_none() {
                println!("no --results: checking the database-side promises only");
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
            if v.ok {
                println!("VERIFIED: every promise holds");
            } else {
                anyhow::bail!("FAILED: {}", v.failures.join("; "));
            }
        }
    }
    Ok(())
}

fn read_records(path: &PathBuf) -> anyhow::Result<Vec<RequestRecord>> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).with_context(|| {
            format!("{} line {}: not a request outcome", path.display(), n + 1)
        })?);
    }
    Ok(out)
}

/// Waits until the accepted buys are all in the database (with records), or until the order
/// count stops moving for a few seconds (without: the workers are done or stuck; the checks
/// tell which).
async fn wait_for_drain(
    pool: &sqlx::PgPool,
    records: &[RequestRecord],
    longest: Duration,
) -> anyhow::Result<()> {
    let accepted: Vec<uuid::Uuid> = records
        .iter()
        .filter(|r| r.outcome == verify::Final::Accepted)
        .filter_map(|r| r.request_id)
        .collect();
    let started = Instant::now();
    let (mut last, mut since) = (-1i64, Instant::now());
    loop {
        let (orders, applied): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE request_id = ANY($1)) FROM orders",
        )
        .bind(&accepted)
        .fetch_one(pool)
        .await?;
        if !records.is_empty() && applied >= accepted.len() as i64 {
            return Ok(());
        }
        if orders != last {
            (last, since) = (orders, Instant::now());
        } else if records.is_empty() && since.elapsed() >= Duration::from_secs(3) {
            return Ok(());
        }
        if started.elapsed() >= longest {
            println!("waited {longest:?} for the workers; checking what is there");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
