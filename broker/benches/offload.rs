//! What moving a request's file work off the async runtime costs (`protocol::off_runtime`):
//! the same 1 KiB append and 16 KiB read, called inline on a runtime worker and through
//! `tokio::task::spawn_blocking`, one after another as a single connection issues them.
//!
//! `cargo bench -p broker --bench offload` (env: `BENCH_OPS`, default 100000; `BENCH_DIR`,
//! default `target/bench-data`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::clock::SystemClock;
use broker::log::{BatchBuilder, FlushPolicy, LogConfig, PartitionLog};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_secs_f64() * 1e9 / ops as f64
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let ops: usize = env_or("BENCH_OPS", 100_000);
    let root = PathBuf::from(env_or("BENCH_DIR", "target/bench-data".to_string()));
    let dir = root.join("offload");
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = LogConfig {
        flush: FlushPolicy::Never,
        ..LogConfig::default()
    };
    let (log, _) = PartitionLog::open(&dir, config, Arc::new(SystemClock)).expect("open log");
    let log = Arc::new(log);
    let mut b = BatchBuilder::new();
    b.push_value(1_700_000_000_000, &[b'x'; 1000]);
    let batch = b.build();

    println!("offload benchmark: {ops} ops each, 2 runtime workers, flush never");
    println!("{:>28} {:>12} {:>12}", "", "inline ns", "hop ns");
    let append = |hop: bool| {
        let (log, batch) = (log.clone(), batch.clone());
        rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..ops {
                let mut bytes = batch.clone();
                if hop {
                    let log = log.clone();
                    tokio::task::spawn_blocking(move || log.append(&mut bytes))
                        .await
                        .expect("join")
                        .expect("append");
                } else {
                    log.append(&mut bytes).expect("append");
                }
            }
            start.elapsed()
        })
    };
    let read = |hop: bool| {
        let log = log.clone();
        rt.block_on(async move {
            let end = log.high_watermark();
            let start = Instant::now();
            for i in 0..ops as i64 {
                let offset = (i * 7919) % end;
                if hop {
                    let log = log.clone();
                    tokio::task::spawn_blocking(move || log.read(offset, 16 * 1024))
                        .await
                        .expect("join")
                        .expect("read");
                } else {
                    log.read(offset, 16 * 1024).expect("read");
                }
            }
            start.elapsed()
        })
    };
    // Interleaved, best of three, so both see the same machine.
    let best = |f: &dyn Fn(bool) -> Duration, hop: bool| (0..3).map(|_| f(hop)).min().unwrap();
    let (ai, ah) = (best(&append, false), best(&append, true));
    println!(
        "{:>28} {:>12.0} {:>12.0}",
        "append 1 KiB (page cache)",
        per_op(ai, ops),
        per_op(ah, ops)
    );
    let (ri, rh) = (best(&read, false), best(&read, true));
    println!(
        "{:>28} {:>12.0} {:>12.0}",
        "read 16 KiB (page cache)",
        per_op(ri, ops),
        per_op(rh, ops)
    );
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
