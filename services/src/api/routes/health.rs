//! `/healthz` (the process serves), `/readyz` (the database and the broker answer) and
//! `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::api::AppState;
use crate::telemetry::{check_broker, check_database, ready_response};

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the database and the broker answer, else 503 naming which did not.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let s = state.clone();
    let (db, broker) = tokio::join!(
        check_database(&state.pool),
        check_broker(move |t| s.producer.reachable(t))
    );
    ready_response(vec![("database", db), ("broker", broker)])
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    crate::telemetry::metrics_response(&state.metrics.registry)
}
