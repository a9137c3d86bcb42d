//! The admin HTTP port: `/healthz` for liveness checks, `/metrics` for Prometheus, and
//! `/groups`, `/groups/{group}` (JSON: members, assignments, committed offsets, lag) for
//! operators and the `broker groups` command.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::state::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/groups", get(groups))
        .route("/groups/{group}", get(group))
        .with_state(broker)
}

/// 200 while every partition log accepts writes; 503 naming the logs that stopped (a failed
/// fsync makes a log refuse writes rather than acknowledge what it cannot keep).
async fn healthz(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let failed: Vec<String> = broker
        .topics
        .list()
        .iter()
        .flat_map(|t| {
            t.partitions()
                .iter()
                .enumerate()
                .filter(|(_, log)| log.is_failed())
                .map(move |(p, _)| format!("{}-{p}", t.name))
        })
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed logs: {}\n", failed.join(", ")),
        )
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let b = broker.clone();
    let body = tokio::task::spawn_blocking(move || b.metrics.render(&b.topics, &b.groups))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// Every consumer group with members, assignments, committed offsets and lag.
async fn groups(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    Json(broker.groups.reports(&broker.topics))
}

async fn group(
    State(broker): State<Arc<Broker>>,
    Path(group): Path<String>,
) -> axum::response::Response {
    match broker.groups.report(&group, &broker.topics) {
        Some(r) => Json(r).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no group {group}\n")).into_response(),
    }
}
