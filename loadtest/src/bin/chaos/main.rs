//! `chaos`: the stack from the real binaries as separate processes (a broker, two order APIs,
//! two order workers, PostgreSQL), an open-loop burst of buyers that retry like careful clients
//! (`shoppers`), and faults in the middle of it (`faults`): SIGKILL of the broker, an API
//! instance or a worker, PostgreSQL stopped, the broker frozen past the enqueue timeout. After
//! the workers drained the queue, every answer and every order is held to the promises: the
//! clients' side by `verdict`, the database's by `loadtest::verify`. Any broken promise fails
//! the run (exit 1) and is named.
//!
//! `cargo build --release -p broker -p services --bins && cargo run --release -p loadtest --bin chaos`
//! (`--short` is the CI size; `--help` lists the rest).

mod faults;
mod shoppers;
mod stack;
mod verdict;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use loadtest::bench_db::BenchDb;
use loadtest::netns::NetNs;
use loadtest::processes::bin_dir;
use loadtest::throwaway_pg::ThrowawayPg;
use loadtest::verify::{verify, Final, Verdict};
use services::api::auth::TokenKeys;
use uuid::Uuid;

use crate::faults::{scenario, Window};
use crate::shoppers::{Clock, Shop};
use crate::stack::{Stack, SECRET};
use crate::verdict::{judge, ClientSide, Limits};

#[derive(Debug, Parser)]
#[command(
    about = "Kill the stack's processes mid-burst and hold every answer and every order to the promises"
)]
struct Args {
    /// A PostgreSQL server to create the run's databases on (a superuser URL). Default: a
    /// throwaway cluster, which the `postgres` scenario stops and starts again.
    #[arg(long, env = "CHAOS_DATABASE_URL")]
    database_url: Option<String>,
    /// Buyers arriving per second (open loop, up to --connections at once).
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// Length of the burst, seconds (the `all` scenario's is 6 s longer, for its four faults).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Units of each of the 5 items. Default: 90% of the buyers' units, so the sale sells out
    /// near the end of the burst and every fault meets buyers who can still buy.
    #[arg(long)]
    stock: Option<i32>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Scenarios to run (comma-separated): broker, api, worker, postgres, stall, all, and the
    /// network faults between the APIs and workers and the broker (root, iproute2 and nftables):
    /// net-cut, net-loss.
    #[arg(
        long,
        default_value = "broker,api,worker,postgres,stall,all,net-cut,net-loss"
    )]
    scenarios: String,
    /// The CI size: 600 buyers/s for 10 s, 32 connections.
    #[arg(long)]
    short: bool,
    /// The API's enqueue timeout, ms (a stalled broker answers 503 after it).
    #[arg(long, default_value_t = 2000)]
    enqueue_timeout_ms: u64,
    /// After the broker is back, each API instance must accept and each worker commit again
    /// within this, ms.
    #[arg(long, default_value_t = 2000)]
    recovery_limit_ms: u64,
    /// Where the processes' logs go (kept on failure).
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

const ITEMS: i64 = 5;

struct Row {
    name: String,
    windows: Vec<Window>,
    verdict: Verdict,
    client: ClientSide,
    polls: u64,
    took: Duration,
    clean_exits: bool,
}

impl Row {
    fn ok(&self) -> bool {
        self.verdict.ok
            && self.verdict.unresolved == 0
            && self.client.failures.is_empty()
            && self.clean_exits
    }

    fn failures(&self) -> Vec<String> {
        let mut f = self.verdict.failures.clone();
        f.extend(self.client.failures.iter().cloned());
        if self.verdict.unresolved > 0 {
            f.push(format!(
                "{} buyers never got a definite answer",
                self.verdict.unresolved
            ));
        }
        if !self.clean_exits {
            f.push("a process did not exit 0 on SIGTERM".into());
        }
        f
    }
}

async fn run_scenario(
    name: &str,
    args: &Args,
    admin_url: &str,
    pg: Option<Arc<ThrowawayPg>>,
    bins: &Path,
) -> anyhow::Result<Row> {
    let faults = scenario(name)?;
    let seconds = args.seconds + if faults.len() > 1 { 6 } else { 0 };
    let buyers = (args.rate * seconds) as usize;
    let stock = args
        .stock
        .unwrap_or((buyers as i64 * 9 / 10 / ITEMS).max(1) as i32);
    let logs = args.out.join(name);
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let db = BenchDb::create(admin_url).await?;
    sqlx::query("DELETE FROM items").execute(&db.pool).await?;
    sqlx::query(
        "INSERT INTO items (id, name, initial_stock, stock) \
         SELECT g, 'chaos item ' || g, $2, $2 FROM generate_series(1, $1::bigint) g",
    )
    .bind(ITEMS)
    .bind(stock)
    .execute(&db.pool)
    .await?;
    // The network scenarios put the broker behind a link they can cut.
    let net = if faults.iter().any(|f| f.is_network()) {
        Some(Arc::new(NetNs::create("chaos")?))
    } else {
        None
    };
    let stack = Stack::start(bins, &logs, db, args.enqueue_timeout_ms, net.as_deref())?;
    let apis: Vec<String> = stack
        .apis
        .iter()
        .map(|a| format!("http://{}", a.addr()))
        .collect();
    let stack = Arc::new(tokio::sync::Mutex::new(stack));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.connections)
        .build()?;
    // Ready: the APIs see the broker and the database.
    let ready_by = Instant::now() + Duration::from_secs(60);
    for api in &apis {
        while !client
            .get(format!("{api}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < ready_by, "{api} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let keys = TokenKeys::new(SECRET.as_bytes());
    let clock = Clock(Instant::now());
    let shop = Arc::new(Shop {
        client: client.clone(),
        apis,
        clock,
        deadline: clock.0 + Duration::from_secs(seconds as u64 + 110),
        seen: Default::default(),
        connections: tokio::sync::Semaphore::new(args.connections),
    });
    let stop_polling = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(shoppers::poll_statuses(shop.clone(), stop_polling.clone()));
    // The first fault a quarter into the burst: buyers before it, during it and after it.
    let chaos = tokio::spawn(faults::inject(
        stack.clone(),
        pg.clone(),
        net.clone(),
        faults,
        clock,
        Duration::from_secs(args.seconds as u64) / 4,
    ));
    let mut tasks = Vec::with_capacity(buyers);
    for n in 0..buyers {
        let item = (n as i64 * 7) % ITEMS + 1;
        let token = keys.mint(n as i64 + 1, 3600);
        let arrives = Duration::from_secs_f64(n as f64 / args.rate as f64);
        let shop = shop.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(arrives.saturating_sub(shop.clock.now())).await;
            shoppers::shopper(shop, n, token, item).await
        }));
    }
    let mut requests = Vec::with_capacity(buyers);
    for t in tasks {
        requests.extend(t.await?);
    }
    let windows = chaos.await??;
    let records: Vec<_> = requests.iter().map(|r| r.record()).collect();
    let accepted: Vec<Uuid> = records
        .iter()
        .filter(|r| r.outcome == Final::Accepted)
        .filter_map(|r| r.request_id)
        .collect();
    drained(&stack, &accepted, &client).await?;
    stop_polling.store(true, std::sync::atomic::Ordering::Relaxed);
    let polls = poller.await?;
    let took = clock.now();

    let mut guard = stack.lock().await;
    let s = &mut *guard;
    let verdict = verify(&s.db.pool, &records).await?;
    let client_side = judge(
        &requests,
        &windows,
        &polls,
        s.apis.len(),
        &Limits {
            enqueue_timeout: Duration::from_millis(args.enqueue_timeout_ms),
            recovery: Duration::from_millis(args.recovery_limit_ms),
            // Ten reads a second of burst at the least. The poller tries one every 5 ms, but
            // waits for each answer: with the build's CPU taken by other work it read 384 in
            // the 10 s of the `api` scenario, so the floor is set well below what it manages.
            min_polls: seconds as u64 * 10,
        },
    );
    // Each binary shuts down cleanly on SIGTERM (exit 0).
    let mut clean_exits = true;
    for p in s
        .apis
        .iter_mut()
        .chain(s.workers.iter_mut())
        .chain(std::iter::once(&mut s.broker))
    {
        let status = p.terminate();
        if !status.is_some_and(|st| st.success()) {
            eprintln!(
                "{} exited with {status:?} on SIGTERM; see {}",
                p.name,
                p.log_path().display()
            );
            clean_exits = false;
        }
    }
    let db_pool = s.db.pool.clone();
    drop(guard);
    drop(stack);
    db_pool.close().await;
    Ok(Row {
        name: name.to_string(),
        windows,
        verdict,
        client: client_side,
        polls: polls.answered,
        took,
        clean_exits,
    })
}

/// Waits until the order workers have committed everything in `seckill` (lag 0) and every
/// accepted request is an order.
async fn drained(
    stack: &Arc<tokio::sync::Mutex<Stack>>,
    accepted: &[Uuid],
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    // Once nothing is left in the queue, orders that are still missing will stay missing (a
    // broken build): three quiet seconds end the wait, and the verdict names what is missing.
    let mut settled: Option<(i64, Instant)> = None;
    loop {
        let (pool, admin) = {
            let s = stack.lock().await;
            (s.db.pool.clone(), s.admin.clone())
        };
        let with_order: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
                .bind(accepted)
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
        let lag = match client
            .get(format!("http://{admin}/groups/order-workers"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                r.json::<serde_json::Value>().await.ok().and_then(|g| {
                    g["partitions"].as_array().map(|ps| {
                        ps.iter()
                            .map(|p| p["lag"].as_i64().unwrap_or(1))
                            .sum::<i64>()
                    })
                })
            }
            _ => None,
        };
        if lag == Some(0) {
            if with_order == accepted.len() as i64 {
                return Ok(());
            }
            match settled {
                Some((n, since)) if n == with_order => {
                    if since.elapsed() > Duration::from_secs(3) {
                        return Ok(());
                    }
                }
                _ => settled = Some((with_order, Instant::now())),
            }
        } else {
            settled = None;
        }
        if Instant::now() > deadline {
            bail!(
                "not drained after 180 s: {with_order} of {} accepted have an order, lag {lag:?}",
                accepted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| d.as_millis().to_string())
}

fn print_rows(rows: &[Row], args: &Args) {
    println!(
        "\n{:<9} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7} {:>6} {:>8} {:>4}",
        "scenario",
        "reqs",
        "202",
        "410",
        "409",
        "503na",
        "503unk",
        "cut",
        "orders",
        "conf",
        "sold",
        "polls",
        "w503 ms",
        "ok"
    );
    for r in rows {
        let (v, c) = (&r.verdict, &r.client);
        let n = |k: &str| c.by_answer.get(k).copied().unwrap_or(0);
        println!(
            "{:<9} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7} {:>6} {:>8} {:>4}",
            r.name,
            v.requests,
            n("202"),
            n("410 sold_out") + n("410 claimed"),
            n("409 duplicate"),
            n("503 not_accepted"),
            n("503 outcome_unknown"),
            n("cut") + n("refused connection"),
            v.orders,
            v.confirmed,
            v.units_sold,
            r.polls,
            c.slowest_503.as_millis(),
            if r.ok() { "yes" } else { "NO" }
        );
    }
    println!(
        "\n(counts are attempts; 503na: not_accepted, 503unk: outcome_unknown, cut: no answer or a refused connection; w503: the slowest 503, against the {} ms enqueue timeout + 100 ms)",
        args.enqueue_timeout_ms
    );
    for r in rows {
        println!("{} ({:.1} s):", r.name, r.took.as_secs_f64());
        let mut comeback = r.client.apis_back.iter();
        for (w, in_flight) in r.windows.iter().zip(&r.client.in_flight) {
            print!(
                "  {} at {:.1}-{:.1} s, {in_flight} attempts in flight",
                w.what,
                w.from.as_secs_f64(),
                w.to.as_secs_f64()
            );
            if w.broker_back {
                let apis = comeback.next().cloned().unwrap_or_default();
                let apis: Vec<String> = apis
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("api-{i} {} ms", ms(*d)))
                    .collect();
                let workers: Vec<String> = w
                    .workers_back
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("worker-{i} {} ms", ms(*d)))
                    .collect();
                print!(
                    "; after the broker (or its link) was back, first 202: {}; first commit: {}",
                    apis.join(", "),
                    workers.join(", ")
                );
            }
            println!();
        }
        let v = &r.verdict;
        println!(
            "  {} definite answers to buys sent after the faults; every 202 an order: {}; orders of buys told nothing was queued: {}; orders nobody asked for: {}; confirmed units {} = sold {}; double-confirmed {}; clean SIGTERM exits: {}",
            r.client.progress_after,
            v.accepted_with_an_order == v.accepted as i64,
            v.orders_told_not_queued,
            v.orders_nobody_asked_for,
            v.confirmed_units,
            v.units_sold,
            v.double_confirmed,
            r.clean_exits
        );
        for f in r.failures() {
            println!("  BROKEN PROMISE: {f}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("error,librdkafka=off,rdkafka=off");
    let mut args = Args::parse();
    if args.short {
        args.rate = 600;
        args.seconds = 10;
        args.connections = 32;
    }
    anyhow::ensure!(
        args.rate > 0 && args.seconds >= 4 && args.connections > 0,
        "--rate and --connections must be positive, --seconds at least 4"
    );
    let bins = bin_dir()?;
    let names: Vec<String> = args
        .scenarios
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for n in &names {
        scenario(n)?;
    }
    let pg = match &args.database_url {
        Some(_) => None,
        None => Some(Arc::new(
            ThrowawayPg::start().context("start a throwaway PostgreSQL")?,
        )),
    };
    let admin_url = match (&args.database_url, &pg) {
        (Some(u), _) => u.clone(),
        (None, Some(pg)) => pg.url.clone(),
        (None, None) => unreachable!("a throwaway cluster is started without --database-url"),
    };
    println!(
        "chaos: {} buyers/s for {} s per scenario over {} connections, {ITEMS} items, 2 APIs + 2 workers + broker ({}), enqueue timeout {} ms{}",
        args.rate,
        args.seconds,
        args.connections,
        bins.display(),
        args.enqueue_timeout_ms,
        match std::env::var("FAILPOINTS") {
            Ok(f) if !f.is_empty() => format!(", FAILPOINTS={f}"),
            _ => String::new(),
        }
    );
    let mut rows = Vec::new();
    for n in &names {
        eprintln!("scenario {n} ...");
        let row = run_scenario(n, &args, &admin_url, pg.clone(), &bins)
            .await
            .with_context(|| format!("scenario {n} (logs in {})", args.out.join(n).display()))?;
        rows.push(row);
    }
    print_rows(&rows, &args);
    if rows.iter().all(Row::ok) {
        println!("\nCHAOS VERIFIED: every promise held in every scenario.");
        Ok(())
    } else {
        bail!("chaos: a promise broke (see BROKEN PROMISE above)")
    }
}
