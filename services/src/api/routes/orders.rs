//! `GET /orders/{request_id}`: the outcome once the worker applied the buy, "queued" while it
//! waits in the queue (for ids this instance accepted), 404 for ids never seen.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::AppState;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderStatus {
    pub request_id: Uuid,
    /// queued | confirmed | rejected
    pub status: String,
    /// For rejected orders: sold_out | duplicate | invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
}

pub async fn order_status(
    State(state): State<Arc<AppState>>,
    Path(request_id): Path<String>,
) -> Result<Json<OrderStatus>, ApiError> {
    let request_id = Uuid::parse_str(&request_id)
        .map_err(|_| ApiError::BadRequest(format!("{request_id:?} is not a UUID")))?;
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT status::text, item_id FROM orders WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&state.pool)
            .await?;
    if let Some((status, item)) = row {
        let (status, reason) = match status.strip_prefix("rejected_") {
            Some(r) => ("rejected".to_string(), Some(r.to_string())),
            None => (status, None),
        };
        return Ok(Json(OrderStatus {
            request_id,
            status,
            reason,
            item_id: Some(item),
        }));
    }
    let queued = state
        .accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&request_id);
    if queued {
        return Ok(Json(OrderStatus {
            request_id,
            status: "queued".into(),
            reason: None,
            item_id: None,
        }));
    }
    Err(ApiError::NotFound)
}
