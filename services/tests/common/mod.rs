//! Test helpers: a fresh PostgreSQL database per test (migrations applied) and an in-process
//! broker on a free port.
#![allow(dead_code)]

use std::sync::Arc;

use broker::log::{FlushPolicy, LogConfig};
use broker::{EmbeddedBroker, NodeConfig};
use services::api::{Api, ApiConfig, RunningApi};
use services::orders::{OrderHandler, OrderStats};
use services::worker::{BatchHandler, Worker, WorkerConfig, WorkerError};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// Where tests create their databases; CI creates this role (see .ci/run).
pub(crate) fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://seckill:seckill@127.0.0.1:5432/postgres".into())
}

/// A fresh database per test (migrations applied), dropped at the end: by `drop_db`, or when a
/// failing test unwinds (so failed runs do not leak databases).
pub(crate) struct TestDb {
    pub(crate) pool: PgPool,
    pub(crate) url: String,
    name: String,
    dropped: bool,
}

impl TestDb {
    pub(crate) async fn new() -> TestDb {
        let admin = admin_url();
        let name = format!("seckill_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (set TEST_DATABASE_URL): {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TEST_DATABASE_URL must end in /<database>"),
        };
        let pool = services::db::connect(&url, 8).await.unwrap();
        TestDb {
            pool,
            url,
            name,
            dropped: false,
        }
    }

    /// Adds a sale item.
    pub(crate) async fn item(&self, id: i64, stock: i32) {
        sqlx::query("INSERT INTO items (id, name, initial_stock, stock) VALUES ($1, $2, $3, $3)")
            .bind(id)
            .bind(format!("item {id}"))
            .bind(stock)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub(crate) async fn stock(&self, id: i64) -> i32 {
        sqlx::query_scalar("SELECT stock FROM items WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Orders per status for an item.
    pub(crate) async fn counts(&self, item: i64) -> std::collections::HashMap<String, i64> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status::text, count(*) FROM orders WHERE item_id = $1 GROUP BY status",
        )
        .bind(item)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let counts: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        // The counters the worker keeps beside the orders (what the dashboard reads) agree.
        let kept: Vec<(String, i64)> =
            sqlx::query_as("SELECT status::text, n FROM order_counts WHERE item_id = $1 AND n > 0")
                .bind(item)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        assert_eq!(
            kept.into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
            counts,
            "order_counts of item {item}"
        );
        counts
    }

    pub(crate) async fn drop_db(mut self) {
        self.pool.close().await;
        drop_database(&self.name).await;
        self.dropped = true;
    }
}

/// Polls `count_sql` (a `SELECT count(*) ...`) until it counts something; fails with `what`
/// once `within` has passed. Tight polling: tests use it to act at a precise moment (a kill
/// while a batch is held).
pub(crate) async fn wait_for_rows(
    pool: &PgPool,
    count_sql: &str,
    within: std::time::Duration,
    what: &str,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let n: i64 = sqlx::query_scalar(count_sql).fetch_one(pool).await.unwrap();
        if n > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn drop_database(name: &str) {
    let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Not dropped by the test (it failed, or forgot): drop it from a thread of its own, as
        // this may run inside a runtime that is shutting down.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

/// The broker as the services see it in production: fsync before ack; consumers started together
/// land in one generation after a short initial rebalance delay.
pub(crate) fn broker(dir: &std::path::Path) -> EmbeddedBroker {
    EmbeddedBroker::start(NodeConfig {
        log: LogConfig {
            flush: FlushPolicy::Fsync,
            ..LogConfig::default()
        },
        groups: broker::group::CoordinatorConfig {
            initial_rebalance_delay: std::time::Duration::from_millis(300),
            ..Default::default()
        },
        ..NodeConfig::local(dir)
    })
    .unwrap()
}

/// An order worker on `bootstrap`, started with the worker builder the binary uses.
pub(crate) async fn order_worker(
    bootstrap: &str,
    pool: PgPool,
    tune: impl FnOnce(&mut WorkerConfig),
) -> Worker<OrderHandler> {
    order_worker_with_stats(bootstrap, pool, tune).await.0
}

/// The same, with the handler's counters (confirmed, rejected, already applied).
pub(crate) async fn order_worker_with_stats(
    bootstrap: &str,
    pool: PgPool,
    tune: impl FnOnce(&mut WorkerConfig),
) -> (Worker<OrderHandler>, Arc<OrderStats>) {
    let mut config = WorkerConfig::orders(bootstrap);
    tune(&mut config);
    let handler = OrderHandler::new(pool);
    let stats = handler.stats();
    (Worker::start(config, handler).await.unwrap(), stats)
}

/// Runs `worker` as a task whose token is never cancelled: aborting the task is a crash (no
/// final commit, no LeaveGroup of its own).
pub(crate) fn spawn_until_aborted<H: BatchHandler>(
    worker: Worker<H>,
) -> tokio::task::JoinHandle<Result<(), WorkerError>> {
    tokio::spawn(worker.run(CancellationToken::new()))
}

/// Starts an API instance with the builder the binary uses, on a free port.
pub(crate) async fn api(config: ApiConfig, pool: PgPool) -> RunningApi {
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    Api::bind(config, pool).await.unwrap().spawn()
}

/// A fresh database with the sale `items` (id, stock) and a broker with the order topic in
/// `partitions`: what the API tests start from.
pub(crate) async fn sale_fixture(
    items: &[(i64, i32)],
    partitions: i32,
) -> (TestDb, tempfile::TempDir, EmbeddedBroker) {
    let db = TestDb::new().await;
    for (id, stock) in items {
        db.item(*id, *stock).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    create_topic(&b, "seckill", partitions);
    (db, dir, b)
}

pub(crate) fn create_topic(b: &EmbeddedBroker, name: &str, partitions: i32) {
    let topics = &b.broker().topics;
    topics
        .create(name, partitions, topics.defaults().clone())
        .unwrap();
}

pub(crate) fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
