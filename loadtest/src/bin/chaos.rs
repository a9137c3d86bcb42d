//! `chaos`: the stack from the real binaries as separate processes (a broker, two order APIs,
//! two order workers, PostgreSQL), a burst of buyers that retry like careful clients (the same
//! Idempotency-Key after a 503 or a broken connection), and SIGKILLs in the middle of it: the
//! broker, an API instance, a worker, PostgreSQL stopped, the broker frozen (SIGSTOP) past the
//! enqueue timeout. After the workers drained the queue, the promises are checked against the
//! database (`loadtest::verify`) and one table row is printed per scenario.
//!
//! `cargo build --release -p broker -p services --bins && cargo run --release -p loadtest --bin chaos`
//! (`--short` is the CI size; `--help` lists the rest).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use loadtest::bench_db::BenchDb;
use loadtest::processes::{bin_dir, free_port, run_once, Proc};
use loadtest::throwaway_pg::ThrowawayPg;
use loadtest::verify::{verify, Final, RequestRecord, Verdict};
use services::api::auth::TokenKeys;
use services::api::routes::buy::request_id;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    about = "Kill the stack's processes mid-burst and check every promise against the database"
)]
struct Args {
    /// A PostgreSQL server to create the run's databases on (a superuser URL). Default: a
    /// throwaway cluster, which the `postgres` scenario stops and starts again.
    #[arg(long, env = "CHAOS_DATABASE_URL")]
    database_url: Option<String>,
    /// Buyers per scenario (each makes one buy, retried until it gets a definite answer).
    #[arg(long, default_value_t = 20_000)]
    buyers: usize,
    /// Units of each of the 5 items.
    #[arg(long, default_value_t = 2_000)]
    stock: i32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Scenarios to run (comma-separated): broker, api, worker, postgres, stall, all.
    #[arg(long, default_value = "broker,api,worker,postgres,stall,all")]
    scenarios: String,
    /// The CI size: 3000 buyers, 300 units of each item, 32 connections.
    #[arg(long)]
    short: bool,
    /// The API's enqueue timeout, ms (a stalled broker answers 503 after it).
    #[arg(long, default_value_t = 2000)]
    enqueue_timeout_ms: u64,
    /// Where the processes' logs go (kept on failure).
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillBroker,
    KillApi,
    KillWorker,
    StopPostgres,
    StallBroker,
}

fn scenario(name: &str) -> anyhow::Result<Vec<Fault>> {
    Ok(match name {
        "broker" => vec![Fault::KillBroker],
        "api" => vec![Fault::KillApi],
        "worker" => vec![Fault::KillWorker],
        "postgres" => vec![Fault::StopPostgres],
        "stall" => vec![Fault::StallBroker],
        "all" => vec![
            Fault::KillBroker,
            Fault::KillApi,
            Fault::KillWorker,
            Fault::StopPostgres,
        ],
        other => bail!("unknown scenario {other:?}"),
    })
}

const SECRET: &str = "chaos-secret-chaos-secret-chaos-secret!";
const ITEMS: i64 = 5;

/// The stack of one scenario.
struct Stack {
    broker: Proc,
    admin_port: u16,
    apis: Vec<Proc>,
    workers: Vec<Proc>,
    db: BenchDb,
}

impl Stack {
    fn start(bins: &Path, logs: &Path, db: BenchDb, args: &Args) -> anyhow::Result<Stack> {
        let broker_port = free_port()?;
        let admin_port = free_port()?;
        let mut broker = Proc::new("broker", bins.join("broker"), logs, broker_port)
            .arg(format!("--listen=127.0.0.1:{broker_port}"))
            .arg(format!("--admin-listen=127.0.0.1:{admin_port}"))
            .arg(format!("--data-dir={}", logs.join("broker-data").display()))
            .arg("--default-partitions=6")
            .arg("--group-initial-rebalance-delay-ms=300");
        broker.start(Duration::from_secs(20))?;
        let bootstrap = format!("127.0.0.1:{broker_port}");
        // The migrate binary too (the database is migrated already: it must be a no-op).
        run_once(&bins.join("migrate"), &[], &[("DATABASE_URL", &db.url)])?;
        let mut apis = Vec::new();
        for i in 0..2 {
            let port = free_port()?;
            let mut api = Proc::new(&format!("api-{i}"), bins.join("order-api"), logs, port)
                .arg(format!("--listen=127.0.0.1:{port}"))
                .arg(format!("--enqueue-timeout-ms={}", args.enqueue_timeout_ms))
                // Every buyer of this run comes from 127.0.0.1; the per-user limit stays on.
                .arg("--rate-per-address=off")
                .env("DATABASE_URL", &db.url)
                .env("KAFKA_BOOTSTRAP", &bootstrap)
                .env("JWT_SECRET", SECRET);
            api.start(Duration::from_secs(20))?;
            apis.push(api);
        }
        let mut workers = Vec::new();
        for i in 0..2 {
            let port = free_port()?;
            let mut w = Proc::new(
                &format!("worker-{i}"),
                bins.join("order-worker"),
                logs,
                port,
            )
            .arg(format!("--metrics-listen=127.0.0.1:{port}"))
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BOOTSTRAP", &bootstrap);
            w.start(Duration::from_secs(20))?;
            workers.push(w);
        }
        let stack = Stack {
            broker,
            admin_port,
            apis,
            workers,
            db,
        };
        Ok(stack)
    }
}

/// Shared between the buyers, the chaos task and the status poller.
#[derive(Default)]
struct Run {
    decided: AtomicUsize,
    /// (request id, status URL) of every 202, for the poller.
    accepted: Mutex<Vec<(Uuid, String)>>,
    /// 404s seen for a 202'd request id (must stay 0).
    not_found: AtomicU64,
    status_checks: AtomicU64,
    /// Every 503 answer's latency, µs.
    unavailable_us: Mutex<Vec<u64>>,
    not_accepted: AtomicU64,
    outcome_unknown: AtomicU64,
    broken: AtomicU64,
}

/// One buyer: retries with the same Idempotency-Key until a definite answer or the deadline.
async fn buyer(
    client: reqwest::Client,
    apis: Arc<Vec<String>>,
    token: String,
    user: i64,
    item: i64,
    run: Arc<Run>,
    deadline: Instant,
) -> RequestRecord {
    let key = format!("chaos-{user}-{item}");
    let started = Instant::now();
    // The id the API derives from the buyer and the key: known even when every answer was lost.
    let mut record = RequestRecord {
        request_id: Some(request_id(user, &key)),
        status: 0,
        outcome: Final::Unresolved,
        attempts: 0,
        unavailable: 0,
        latency_ms: 0.0,
    };
    let mut claimed_retries = 0;
    while Instant::now() < deadline {
        let api = &apis[(user as usize + record.attempts as usize) % apis.len()];
        record.attempts += 1;
        let sent = Instant::now();
        let r = client
            .post(format!("{api}/buy"))
            .bearer_auth(&token)
            .header("Idempotency-Key", &key)
            .json(&serde_json::json!({"item_id": item}))
            .send()
            .await;
        let (status, body) = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                (
                    status,
                    r.json::<serde_json::Value>().await.unwrap_or_default(),
                )
            }
            Err(_) => {
                // Reset or refused (an API instance killed): unknown, retry elsewhere.
                record.unavailable += 1;
                run.broken.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(named) = body["request_id"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
        {
            if Some(named) != record.request_id {
                eprintln!(
                    "the API named request {named} for user {user}'s key {key}, expected {:?}",
                    record.request_id
                );
                record.outcome = Final::Error;
                break;
            }
        }
        record.status = status;
        match status {
            202 => {
                record.outcome = Final::Accepted;
                if let (Some(id), Some(url)) = (record.request_id, body["status_url"].as_str()) {
                    run.accepted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id, url.to_string()));
                }
                break;
            }
            // Every unit is claimed by queued buys; some may come back (rejected duplicates, a
            // dead instance's claims): a real buyer tries again a few times.
            410 if body["error"] == "claimed" && claimed_retries < 20 => {
                claimed_retries += 1;
                record.outcome = Final::Refused;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            410 => {
                record.outcome = Final::Refused;
                break;
            }
            503 => {
                record.unavailable += 1;
                run.unavailable_us
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(sent.elapsed().as_micros() as u64);
                match body["error"].as_str() {
                    Some("not_accepted") => run.not_accepted.fetch_add(1, Ordering::Relaxed),
                    _ => run.outcome_unknown.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => {
                record.outcome = Final::Error;
                break;
            }
        }
    }
    record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    run.decided.fetch_add(1, Ordering::Relaxed);
    record
}

/// Polls the status of 202'd requests through every API instance while the run goes on: a 202'd
/// id must never read as 404.
async fn poll_statuses(
    client: reqwest::Client,
    apis: Arc<Vec<String>>,
    run: Arc<Run>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let pick = {
            let acc = run.accepted.lock().unwrap_or_else(|e| e.into_inner());
            (!acc.is_empty()).then(|| acc[(i * 7919) % acc.len()].clone())
        };
        if let Some((id, url)) = pick {
            let api = &apis[i % apis.len()];
            if let Ok(r) = client.get(format!("{api}{url}")).send().await {
                run.status_checks.fetch_add(1, Ordering::Relaxed);
                if r.status().as_u16() == 404 {
                    let body = r.text().await.unwrap_or_default();
                    eprintln!("404 for accepted request {id} on {api}{url}: {body}");
                    run.not_found.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Applies the scenario's faults once a third of the buyers have their answer.
async fn inject(
    stack: Arc<tokio::sync::Mutex<Stack>>,
    pg: Option<Arc<ThrowawayPg>>,
    faults: Vec<Fault>,
    run: Arc<Run>,
    buyers: usize,
) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    while run.decided.load(Ordering::Relaxed) < buyers / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for f in faults {
        let mut s = stack.lock().await;
        match f {
            Fault::KillBroker => {
                s.broker.kill9();
                tokio::time::sleep(Duration::from_millis(1000)).await;
                s.broker.start(Duration::from_secs(30))?;
                done.push("broker SIGKILL, restarted after 1 s".to_string());
            }
            Fault::KillApi => {
                s.apis[0].kill9();
                tokio::time::sleep(Duration::from_millis(1000)).await;
                s.apis[0].start(Duration::from_secs(30))?;
                done.push("api-0 SIGKILL, restarted after 1 s".to_string());
            }
            Fault::KillWorker => {
                s.workers[0].kill9();
                tokio::time::sleep(Duration::from_millis(500)).await;
                s.workers[0].start(Duration::from_secs(30))?;
                done.push("worker-0 SIGKILL, restarted after 0.5 s".to_string());
            }
            Fault::StopPostgres => match &pg {
                Some(pg) => {
                    pg.kill_server()?;
                    tokio::time::sleep(Duration::from_millis(2000)).await;
                    pg.start_server()?;
                    done.push("PostgreSQL stopped (immediate) for 2 s".to_string());
                }
                None => done.push("PostgreSQL stop skipped (external server)".to_string()),
            },
            Fault::StallBroker => {
                s.broker.signal("STOP");
                tokio::time::sleep(Duration::from_millis(3500)).await;
                s.broker.signal("CONT");
                done.push("broker frozen (SIGSTOP) for 3.5 s".to_string());
            }
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(done)
}

/// Waits until the order workers have committed everything in `seckill` (lag 0) and every
/// accepted request is an order.
async fn drained(
    stack: &Arc<tokio::sync::Mutex<Stack>>,
    accepted: &[Uuid],
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (pool, admin) = {
            let s = stack.lock().await;
            (s.db.pool.clone(), Some(s.admin_port))
        };
        let with_order: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
                .bind(accepted)
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
        let lag = match admin {
            Some(port) => client
                .get(format!("http://127.0.0.1:{port}/groups/order-workers"))
                .send()
                .await
                .ok()
                .and_then(|r| r.status().is_success().then_some(r))
                .map(|r| async { r.json::<serde_json::Value>().await.ok() }),
            None => None,
        };
        let lag = match lag {
            Some(f) => f.await.and_then(|g| {
                g["partitions"].as_array().map(|ps| {
                    ps.iter()
                        .map(|p| p["lag"].as_i64().unwrap_or(1))
                        .sum::<i64>()
                })
            }),
            None => None,
        };
        if with_order == accepted.len() as i64 && lag == Some(0) {
            return Ok(());
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

struct Row {
    name: String,
    faults: Vec<String>,
    verdict: Verdict,
    not_found: u64,
    status_checks: u64,
    not_accepted: u64,
    outcome_unknown: u64,
    broken: u64,
    worst_503_ms: f64,
    took: Duration,
    clean_exits: bool,
}

async fn run_scenario(
    name: &str,
    args: &Args,
    admin_url: &str,
    pg: Option<Arc<ThrowawayPg>>,
    bins: &Path,
) -> anyhow::Result<Row> {
    let faults = scenario(name)?;
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
    .bind(args.stock)
    .execute(&db.pool)
    .await?;
    let stack = Stack::start(bins, &logs, db, args)?;
    let apis: Arc<Vec<String>> = Arc::new(
        stack
            .apis
            .iter()
            .map(|a| format!("http://{}", a.addr()))
            .collect(),
    );
    let stack = Arc::new(tokio::sync::Mutex::new(stack));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.connections)
        .build()?;
    // Ready: the APIs see the broker and the database.
    let ready_by = Instant::now() + Duration::from_secs(60);
    for api in apis.iter() {
        loop {
            let ok = client
                .get(format!("{api}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            anyhow::ensure!(Instant::now() < ready_by, "{api} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let run = Arc::new(Run::default());
    let keys = TokenKeys::new(SECRET.as_bytes());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let stop_polling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = tokio::spawn(poll_statuses(
        client.clone(),
        apis.clone(),
        run.clone(),
        stop_polling.clone(),
    ));
    let chaos = tokio::spawn(inject(
        stack.clone(),
        pg.clone(),
        faults,
        run.clone(),
        args.buyers,
    ));
    let limit = Arc::new(tokio::sync::Semaphore::new(args.connections));
    let mut tasks = Vec::with_capacity(args.buyers);
    for i in 0..args.buyers {
        let user = i as i64 + 1;
        let item = (i as i64 * 7) % ITEMS + 1;
        let token = keys.mint(user, 3600);
        let (client, apis, run, limit) = (client.clone(), apis.clone(), run.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            buyer(client, apis, token, user, item, run, deadline).await
        }));
    }
    let mut records = Vec::with_capacity(args.buyers);
    for t in tasks {
        records.push(t.await?);
    }
    let faults_done = chaos.await??;
    let accepted: Vec<Uuid> = records
        .iter()
        .filter(|r| r.outcome == Final::Accepted)
        .filter_map(|r| r.request_id)
        .collect();
    drained(&stack, &accepted, &client).await?;
    stop_polling.store(true, Ordering::Relaxed);
    poller.await?;
    let took = started.elapsed();

    let mut guard = stack.lock().await;
    let s = &mut *guard;
    let verdict = verify(&s.db.pool, &records).await?;
    // Each binary shuts down cleanly on SIGTERM (exit 0).
    let mut clean_exits = true;
    for p in s.apis.iter_mut().chain(s.workers.iter_mut()) {
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
    if !s.broker.terminate().is_some_and(|st| st.success()) {
        eprintln!(
            "the broker did not exit 0 on SIGTERM; see {}",
            s.broker.log_path().display()
        );
        clean_exits = false;
    }
    let mut us = run
        .unavailable_us
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    us.sort_unstable();
    let row = Row {
        name: name.to_string(),
        faults: faults_done,
        verdict,
        not_found: run.not_found.load(Ordering::Relaxed),
        status_checks: run.status_checks.load(Ordering::Relaxed),
        not_accepted: run.not_accepted.load(Ordering::Relaxed),
        outcome_unknown: run.outcome_unknown.load(Ordering::Relaxed),
        broken: run.broken.load(Ordering::Relaxed),
        worst_503_ms: us.last().copied().unwrap_or(0) as f64 / 1000.0,
        took,
        clean_exits,
    };
    let db_pool = s.db.pool.clone();
    drop(guard);
    drop(stack);
    db_pool.close().await;
    Ok(row)
}

fn print_rows(rows: &[Row], enqueue_timeout_ms: u64) {
    println!(
        "\n{:<9} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>7} {:>5} {:>6} {:>8} {:>4}",
        "scenario", "buyers", "202", "410", "unres", "503na", "503unk", "broken", "503->ord", "orders", "conf", "sold", "404s", "minstk", "w503 ms", "ok"
    );
    for r in rows {
        let v = &r.verdict;
        let ok = v.ok && r.not_found == 0 && v.unresolved == 0 && r.clean_exits;
        println!(
            "{:<9} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>7} {:>5} {:>6} {:>8.0} {:>4}",
            r.name, v.requests, v.accepted, v.refused, v.unresolved, r.not_accepted, r.outcome_unknown, r.broken,
            v.retried_that_became_orders, v.orders, v.confirmed, v.units_sold, r.not_found, v.min_stock, r.worst_503_ms,
            if ok { "yes" } else { "NO" }
        );
    }
    println!("\n(503na: 503 not_accepted answers; 503unk: 503 outcome_unknown; broken: connections cut by a killed API; 503->ord: requests that saw a 503 and are orders in the end; w503: the slowest 503, against the {enqueue_timeout_ms} ms enqueue timeout)");
    for r in rows {
        let v = &r.verdict;
        println!(
            "{}: {} in {:.1} s; {} status polls, {} 404s; every 202 an order: {}; orders nobody asked for: {}; confirmed units {} = sold {}; double-confirmed {}; clean SIGTERM exits: {}",
            r.name,
            r.faults.join(", "),
            r.took.as_secs_f64(),
            r.status_checks,
            r.not_found,
            v.accepted_with_an_order == v.accepted as i64,
            v.orders_nobody_asked_for,
            v.confirmed_units,
            v.units_sold,
            v.double_confirmed,
            r.clean_exits
        );
        for f in &v.failures {
            println!("  FAILED: {f}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing_or("error,librdkafka=off,rdkafka=off");
    let mut args = Args::parse();
    if args.short {
        args.buyers = 3000;
        args.stock = 300;
        args.connections = 32;
    }
    anyhow::ensure!(
        args.buyers > 0 && args.stock > 0 && args.connections > 0,
        "--buyers, --stock and --connections must be positive"
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
        "chaos: {} buyers per scenario over {} connections, {ITEMS} items x {} units, 2 APIs + 2 workers + broker ({}), enqueue timeout {} ms",
        args.buyers, args.connections, args.stock, bins.display(), args.enqueue_timeout_ms
    );
    let mut rows = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for n in &names {
        eprintln!("scenario {n} ...");
        let row = run_scenario(n, &args, &admin_url, pg.clone(), &bins)
            .await
            .with_context(|| format!("scenario {n} (logs in {})", args.out.join(n).display()))?;
        by_name.insert(n.clone(), rows.len());
        rows.push(row);
    }
    print_rows(&rows, args.enqueue_timeout_ms);
    let all_ok = rows
        .iter()
        .all(|r| r.verdict.ok && r.not_found == 0 && r.verdict.unresolved == 0 && r.clean_exits);
    if all_ok {
        println!("\nCHAOS VERIFIED: every promise held in every scenario.");
        Ok(())
    } else {
        bail!("chaos: a promise broke (see above)")
    }
}
