//! The stack of one scenario as separate processes from the real binaries: a broker, two order
//! APIs and two order workers on a fresh database (migrated by the real `migrate`, which must be
//! a no-op on it).

use std::path::Path;
use std::time::Duration;

use loadtest::bench_db::BenchDb;
use loadtest::netns::NetNs;
use loadtest::processes::{free_port, run_once, Proc};

pub(crate) const SECRET: &str = "chaos-secret-chaos-secret-chaos-secret!";

pub(crate) struct Stack {
    pub(crate) broker: Proc,
    /// `host:port` of the broker's admin HTTP endpoint.
    pub(crate) admin: String,
    pub(crate) apis: Vec<Proc>,
    pub(crate) workers: Vec<Proc>,
    pub(crate) db: BenchDb,
}

impl Stack {
    pub(crate) fn start(
        bins: &Path,
        logs: &Path,
        db: BenchDb,
        enqueue_timeout_ms: u64,
        broker_ns: Option<&NetNs>,
    ) -> anyhow::Result<Stack> {
        let broker_port = free_port()?;
        let admin_port = free_port()?;
        // In its own network namespace for the network faults: the others reach it over a link.
        let host = broker_ns.map_or("127.0.0.1".to_string(), |n| n.ns_ip.to_string());
        let mut broker = Proc::new("broker", bins.join("broker"), logs, broker_port)
            .arg(format!("--listen={host}:{broker_port}"))
            .arg(format!("--admin-listen={host}:{admin_port}"))
            .arg(format!("--data-dir={}", logs.join("broker-data").display()))
            .arg("--default-partitions=6")
            .arg("--group-initial-rebalance-delay-ms=300");
        if let Some(n) = broker_ns {
            broker = broker.in_netns(&n.name, n.ns_ip);
        }
        broker.start(Duration::from_secs(20))?;
        let bootstrap = format!("{host}:{broker_port}");
        run_once(&bins.join("migrate"), &[], &[("DATABASE_URL", &db.url)])?;
        let mut apis = Vec::new();
        for i in 0..2 {
            let port = free_port()?;
            let mut api = Proc::new(&format!("api-{i}"), bins.join("order-api"), logs, port)
                .arg(format!("--listen=127.0.0.1:{port}"))
                .arg(format!("--enqueue-timeout-ms={enqueue_timeout_ms}"))
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
        Ok(Stack {
            broker,
            admin: format!("{host}:{admin_port}"),
            apis,
            workers,
            db,
        })
    }
}
