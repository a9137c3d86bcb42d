//! The admin HTTP port: `/healthz` for liveness checks, `/metrics` for Prometheus, and
//! `/groups`, `/groups/{group}` (JSON: members, assignments, committed offsets, lag) for
//! operators and the `broker groups` command.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::log::WriteStatus;
use crate::state::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/groups", get(groups))
        .route("/groups/{group}", get(group))
        .with_state(broker)
}

/// 200 while every partition log accepts writes; 503 naming each one that does not, and why:
/// stopped for good after a failed fsync (a log refuses writes rather than acknowledge what it
/// cannot keep), or refusing them for now (disk full, a failed segment roll) until a write
/// succeeds again.
async fn healthz(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let mut problems = Vec::new();
    for (name, why) in broker.topics.unavailable() {
        problems.push(format!(
            "{name}: topic cannot be opened (files left untouched): {why}"
        ));
    }
    for t in broker.topics.list() {
        for (p, log) in t.partitions().iter().enumerate() {
            match log.write_status() {
                WriteStatus::Writable => {}
                WriteStatus::Refusing(why) => problems.push(format!(
                    "{}-{p}: refusing writes until one succeeds: {why}",
                    t.name
                )),
                WriteStatus::Failed(why) => {
                    problems.push(format!("{}-{p}: stopped for good: {why}", t.name))
                }
            }
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot write:\n{}\n", problems.join("\n")),
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
