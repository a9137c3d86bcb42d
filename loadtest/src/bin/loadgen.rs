//! `loadgen`: the demo's load generator on its own, against any running stack, and the token
//! minter for k6.
//!
//! - `loadgen tokens --users 20000 --secret "$JWT_SECRET" --out loadtest/k6/tokens.json`: a JSON
//!   array of bearer tokens, token i for user i+1.
//! - `loadgen buy --base http://localhost:8080 --buys 100000 --users 20000 --secret "$JWT_SECRET"`:
//!   a burst of `POST /buy` as fast as `--connections` allow; prints answers by status, the rate
//!   and p50/p99. Without `--secret` it sends `user_id` in the body (the API's load-test mode).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loadtest::burst::{self, BurstConfig, Live};

#[derive(Debug, Parser)]
#[command(about = "Load generator for the seckill API, and token minting for k6")]
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
    /// Fire a burst of buys at a running API.
    Buy {
        #[arg(long, default_value = "http://localhost:8080")]
        base: String,
        #[arg(long, default_value_t = 100_000)]
        buys: usize,
        #[arg(long, default_value_t = 20_000)]
        users: u64,
        #[arg(long, default_value_t = 5)]
        items: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// The API's JWT secret; without it, load-test mode (user_id in the body).
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
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
            let tokens = burst::mint_tokens(&secret, users, ttl_secs);
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
            users,
            items,
            connections,
            secret,
            seed,
        } => {
            anyhow::ensure!(
                buys > 0 && users > 0 && items > 0 && connections > 0,
                "sizes must be positive"
            );
            let live = Arc::new(Live::default());
            let mut r = burst::run(
                BurstConfig {
                    base,
                    buys,
                    users,
                    items,
                    connections,
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
                    410 => "sold out",
                    503 => "queue unavailable",
                    _ => "",
                };
                println!("  {status:>3} {what:<18} {n}");
            }
            println!("accepted request ids: {}", r.accepted.len());
        }
    }
    Ok(())
}
