//! `GET /orders/{request_id}`: the outcome once the worker applied the buy, "queued" while it
//! waits in the queue (for ids this instance accepted), 404 for ids never seen.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::orders::Outcome;

/// Where a buy is, as a client sees it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted (202) and waiting in the queue for a worker.
    Queued,
    Confirmed,
    Rejected,
}

/// Why a worker rejected a buy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    SoldOut,
    Duplicate,
    Invalid,
}

impl From<Outcome> for (OrderState, Option<RejectReason>) {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Confirmed => (OrderState::Confirmed, None),
            Outcome::RejectedSoldOut => (OrderState::Rejected, Some(RejectReason::SoldOut)),
            Outcome::RejectedDuplicate => (OrderState::Rejected, Some(RejectReason::Duplicate)),
            Outcome::RejectedInvalid => (OrderState::Rejected, Some(RejectReason::Invalid)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderStatus {
    pub request_id: Uuid,
    pub status: OrderState,
    /// For rejected orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
}

pub async fn order_status(
    State(state): State<Arc<AppState>>,
    Path(request_id): Path<String>,
) -> Result<Json<OrderStatus>, ApiError> {
    let request_id = Uuid::parse_str(&request_id)
        .map_err(|_| ApiError::BadRequest(format!("{request_id:?} is not a UUID")))?;
    let row: Option<(Outcome, i64)> =
        sqlx::query_as("SELECT status, item_id FROM orders WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&state.pool)
            .await?;
    if let Some((outcome, item)) = row {
        let (status, reason) = outcome.into();
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
            status: OrderState::Queued,
            reason: None,
            item_id: None,
        }));
    }
    Err(ApiError::NotFound)
}
