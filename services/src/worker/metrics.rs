//! The counters every worker has, and the worker's HTTP port: `/healthz` (200 while the process
//! serves) and Prometheus `/metrics`.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use shared::shutdown::Tasks;
use tokio::net::TcpListener;

use crate::telemetry::ReadinessCheck;

/// Registered under the worker's prefix (`order_worker_*`, `inference_worker_*`).
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub batches: Counter,
    pub events: Counter,
    pub dead_lettered: Counter,
    pub db_retries: Counter,
    /// Times the worker was fenced in its group and took its membership back.
    pub rejoins: Counter,
}

impl WorkerMetrics {
    pub(super) fn batch_done(&self, events: usize) {
        self.batches.inc();
        self.events.inc_by(events as u64);
    }

    pub(super) fn rejoined(&self) {
        self.rejoins.inc();
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "batches",
            "Batches handled and committed",
            self.batches.clone(),
        );
        r.register("events", "Messages handled", self.events.clone());
        r.register(
            "dead_lettered",
            "Messages sent to the dead-letter topic",
            self.dead_lettered.clone(),
        );
        r.register(
            "db_retries",
            "Database calls retried after an error",
            self.db_retries.clone(),
        );
        r.register(
            "rejoins",
            "Times the worker was fenced in its group (FENCED_INSTANCE_ID) and joined again",
            self.rejoins.clone(),
        );
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` as a task of `tasks`, until their token is
/// cancelled.
pub(super) fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: ReadinessCheck,
    tasks: &Tasks,
) {
    let router = crate::telemetry::router(registry, ready);
    let stop = tasks.token().clone().cancelled_owned();
    tasks.spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "metrics port failed");
        }
    });
}
