//! The services' HTTP telemetry: the Prometheus text of a registry, the readiness answer, and
//! the `/healthz` + `/readyz` + `/metrics` router of the workers (the API serves the same three
//! beside its routes).
//!
//! `/healthz` says the process serves (for restarts); `/readyz` says its dependencies answer
//! (for load balancers): the database, and the broker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use rdkafka::error::KafkaError;
use sqlx::PgPool;

/// How long a readiness check waits for a dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// `registry` in the OpenMetrics text format, as a response.
pub fn metrics_response(registry: &Registry) -> Response {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// 200 `{"ready": true}` when every check passed, else 503 naming what failed and why.
pub fn ready_response(checks: Vec<(&'static str, Result<(), String>)>) -> Response {
    let failed: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| (name.to_string(), e.into())))
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "failed": failed})),
        )
            .into_response()
    }
}

/// The database answers a trivial query.
pub async fn check_database(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}

/// The broker answers a metadata request (`ask` runs it with the given timeout on a client the
/// service already has, on a blocking thread).
pub async fn check_broker(
    ask: impl FnOnce(Duration) -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(move || ask(CHECK_TIMEOUT).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// What a worker's `/readyz` runs.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// `/healthz` (200 while the process serves), `/readyz` (`ready`) and `/metrics` over
/// `registry`.
pub fn router(registry: Arc<Registry>, ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || ready()))
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { metrics_response(&registry) }
            }),
        )
}
