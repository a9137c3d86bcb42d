//! The in-process stack the demo and the perf tools run, built with the same builders as the
//! binaries: the broker's `Node` (as `EmbeddedBroker`), the API's `Api` and the `Worker`. The
//! broker uses the default `fsync` flush (an acknowledgement means on disk) and a short initial
//! rebalance delay, since the tools start their consumers together.

use std::path::Path;
use std::time::Duration;

use broker::log::{FlushPolicy, LogConfig};
use broker::{EmbeddedBroker, NodeConfig};
use services::api::{Api, ApiConfig, RunningApi};
use services::orders::OrderHandler;
use services::worker::{Worker, WorkerConfig, WorkerError};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn fsync_broker(dir: &Path) -> anyhow::Result<EmbeddedBroker> {
    Ok(EmbeddedBroker::start(NodeConfig {
        log: LogConfig {
            flush: FlushPolicy::Fsync,
            ..LogConfig::default()
        },
        groups: broker::group::CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(300),
            ..Default::default()
        },
        ..NodeConfig::local(dir)
    })?)
}

/// The API on a free loopback port.
pub async fn api(config: ApiConfig, pool: PgPool) -> anyhow::Result<RunningApi> {
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse()?,
        ..config
    };
    Ok(Api::bind(config, pool).await?.spawn())
}

/// `n` order workers of `config` (e.g. [`WorkerConfig::orders`]), each writing at most
/// `max_rate` orders/s (`None`: as fast as PostgreSQL goes), running until `shutdown` is
/// cancelled.
pub async fn order_workers(
    n: usize,
    config: &WorkerConfig,
    pool: &PgPool,
    max_rate: Option<u32>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<Result<(), WorkerError>>>> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let w = Worker::start(
            WorkerConfig {
                max_rate,
                ..config.clone()
            },
            OrderHandler::new(pool.clone()),
        )
        .await?;
        tasks.push(tokio::spawn(w.run(shutdown.clone())));
    }
    Ok(tasks)
}
