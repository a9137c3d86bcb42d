//! `/healthz` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::AppState;

/// 200 when the database answers; 503 otherwise (the queue is checked per request).
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ok\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    crate::telemetry::metrics_response(&state.metrics.registry)
}
