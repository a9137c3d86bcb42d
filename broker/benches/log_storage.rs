//! Storage benchmark: appends N records of S bytes to a partition log in batches of 16 KiB and
//! 1 MiB under each flush policy, reads them back, and prints MB/s and records/s beside the raw
//! sequential write bandwidth of the same disk measured in the same run (plain `std::fs` write +
//! one `fdatasync` of the same bytes). The ratio is the figure that matters on a noisy machine.
//!
//! `cargo bench -p broker --bench log_storage` (env: `BENCH_RECORDS`, default 1000000;
//! `BENCH_RECORD_BYTES`, default 100; `BENCH_DIR`, default `target/bench-data`;
//! `BENCH_IN_FLIGHT`, appends awaiting durability at once under `fsync`, default 8;
//! `BENCH_REPEAT`, runs per row whose best is printed, default 3).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::clock::SystemClock;
use broker::log::{FlushPolicy, LogConfig, PartitionLog};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

/// The ceiling: the same bytes written with plain std::fs in the same chunks, one fdatasync.
fn raw_write(dir: &Path, batches: &[Vec<u8>]) -> Duration {
    let path = dir.join("raw.bin");
    let start = Instant::now();
    let mut f = File::create(&path).expect("create raw file");
    for b in batches {
        f.write_all(b).expect("raw write");
    }
    f.sync_data().expect("raw fdatasync");
    let took = start.elapsed();
    drop(f);
    let _ = fs::remove_file(&path);
    took
}

struct Run {
    append: Duration,
    read: Duration,
    read_bytes: u64,
}

fn run_policy(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    batches: &[Vec<u8>],
    policy: FlushPolicy,
    in_flight: usize,
) -> Run {
    let config = LogConfig {
        flush: policy,
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    };
    let (log, _) = PartitionLog::open(dir, config, Arc::new(SystemClock)).expect("open log");
    let mut input: Vec<Vec<u8>> = batches.to_vec();

    let append = rt
        .block_on(broker::perf::append_all(&log, &mut input, in_flight))
        .expect("append");

    let start = Instant::now();
    let mut offset = 0;
    let mut read_bytes = 0u64;
    let end = log.high_watermark();
    while offset < end {
        let r = log.read(offset, 1 << 20).expect("read");
        let mut rest = &r.bytes[..];
        while !rest.is_empty() {
            let h = broker::log::BatchHeader::parse(rest).expect("header");
            offset = h.next_offset();
            rest = &rest[h.total_len()..];
        }
        read_bytes += r.bytes.len() as u64;
    }
    let read = start.elapsed();
    log.close().expect("close");
    Run {
        append,
        read,
        read_bytes,
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn main() {
    // `cargo test --benches` runs bench binaries with no work to do.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let records: usize = env_or("BENCH_RECORDS", 1_000_000);
    let record_bytes: usize = env_or("BENCH_RECORD_BYTES", 100);
    let in_flight: usize = env_or("BENCH_IN_FLIGHT", 8);
    let repeat: usize = env_or("BENCH_REPEAT", 3).max(1);
    let root = PathBuf::from(env_or("BENCH_DIR", "target/bench-data".to_string()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    println!(
        "storage benchmark: {records} records of {record_bytes} B, dir {}, fsync window {in_flight}, best of {repeat}",
        root.display()
    );
    println!(
        "{:>8} {:>12} {:>10} {:>12} {:>9} {:>10} {:>12} {:>10}",
        "batch",
        "policy",
        "append MB/s",
        "records/s",
        "vs raw",
        "read MB/s",
        "records/s",
        "raw MB/s"
    );
    for batch_bytes in [16 * 1024, 1024 * 1024] {
        let batches = broker::perf::make_batches(records, record_bytes, batch_bytes);
        let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
        for policy in [
            FlushPolicy::Fsync,
            FlushPolicy::Interval(100),
            FlushPolicy::Never,
        ] {
            // Best of `repeat` for both the ceiling and the log, interleaved so both see the
            // same disk weather; the ceiling uses the same disk, bytes and chunks.
            let mut raw = Duration::MAX;
            let mut best: Option<Run> = None;
            for _ in 0..repeat {
                let dir = fresh_dir(&root, "run");
                raw = raw.min(raw_write(&dir, &batches));
                let run = run_policy(&rt, &dir, &batches, policy, in_flight);
                assert_eq!(run.read_bytes, total, "read back a different volume");
                let _ = fs::remove_dir_all(&dir);
                best = Some(match best {
                    Some(b) => Run {
                        append: b.append.min(run.append),
                        read: b.read.min(run.read),
                        read_bytes: run.read_bytes,
                    },
                    None => run,
                });
            }
            let Some(run) = best else { return };
            let raw_mbps = mbps(total, raw);
            let append_mbps = mbps(total, run.append);
            println!(
                "{:>8} {:>12} {:>10.1} {:>12.0} {:>8.0}% {:>10.1} {:>12.0} {:>10.1}",
                if batch_bytes >= 1 << 20 {
                    "1MiB"
                } else {
                    "16KiB"
                },
                policy.to_string(),
                append_mbps,
                records as f64 / run.append.as_secs_f64(),
                100.0 * append_mbps / raw_mbps,
                mbps(total, run.read),
                records as f64 / run.read.as_secs_f64(),
                raw_mbps,
            );
        }
    }
}
