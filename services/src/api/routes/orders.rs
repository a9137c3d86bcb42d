//! `GET /orders/{request_id}?receipt=...`: the outcome once the worker decided the buy; before
//! that, what the receipt of the 202 (or of the 503) says: `queued`, or `unknown`. Any instance
//! answers the same, before or after restarts: the receipt is verified with the shared secret,
//! nothing is looked up in memory.
//!
//! Only the buyer may read it: the request must carry the receipt (the 202's `status_url`) or
//! the buyer's bearer token. Without either the answer is 401 whatever the id, so ids (a
//! name-based UUID of user and key, predictable when keys are) reveal nothing; with another
//! user's token a decided order is 404, as one that does not exist. Reads are rate limited per
//! client address in a bucket of their own (429 `status_address`).
//!
//! The database is asked for at most [`LOOKUP_TIMEOUT`]. When it cannot answer (down, or too
//! slow), a valid receipt still answers what it proves (`queued` or `unknown`: the decision, if
//! one was made, is not visible right now), and without a receipt the answer is 503
//! `unavailable`: never a 500, never a wait longer than the timeout, and never a 404 for a buy
//! that may have been accepted.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::auth::MaybeUser;
use crate::api::error::ApiError;
use crate::api::limits::ClientAddr;
use crate::api::receipt::ReceiptKind;
use crate::api::AppState;
use crate::orders::Outcome;

/// Where a buy is, as a client sees it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted (202) and waiting in the queue for a worker.
    Queued,
    /// The API could not learn whether it reached the queue (a 503 `outcome_unknown`): retry
    /// with the same Idempotency-Key.
    Unknown,
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

/// How long a status read waits for the database before it answers from the receipt alone.
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    pub receipt: Option<String>,
}

pub async fn order_status(
    State(state): State<Arc<AppState>>,
    MaybeUser(buyer): MaybeUser,
    ClientAddr(address): ClientAddr,
    Path(request_id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<OrderStatus>, ApiError> {
    state
        .limiters
        .check_status(address)
        .map_err(|refused| super::buy::rate_limited(&state, refused))?;
    let request_id = Uuid::parse_str(&request_id)
        .map_err(|_| ApiError::BadRequest(format!("{request_id:?} is not a UUID")))?;
    let said = query
        .receipt
        .as_deref()
        .and_then(|r| state.receipts.verify(request_id, r));
    if query.receipt.is_some() && said.is_none() {
        return Err(ApiError::BadRequest(
            "the receipt does not match this request id".into(),
        ));
    }
    if said.is_none() && buyer.is_none() {
        return Err(ApiError::ProofRequired);
    }
    let lookup = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        sqlx::query_as::<_, (Outcome, i64, i64)>(
            "SELECT status, item_id, user_id FROM orders WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&state.pool),
    )
    .await;
    match lookup {
        // Someone else's order, asked for with a token and no receipt: as if it did not exist.
        Ok(Ok(Some((_, _, owner)))) if said.is_none() && buyer != Some(owner) => {}
        Ok(Ok(Some((outcome, item, _)))) => {
            let (status, reason) = outcome.into();
            return Ok(Json(OrderStatus {
                request_id,
                status,
                reason,
                item_id: Some(item),
            }));
        }
        Ok(Ok(None)) => {}
        // The database cannot say: the receipt, if there is one, can (see the module doc).
        Ok(Err(e)) if said.is_none() => {
            tracing::warn!(error = %e, "order status: the database is unavailable; answering 503");
            return Err(ApiError::StatusUnavailable);
        }
        Err(_) if said.is_none() => {
            tracing::warn!("order status: the database did not answer in time; answering 503");
            return Err(ApiError::StatusUnavailable);
        }
        Ok(Err(_)) | Err(_) => {}
    }
    let status = match said {
        Some(ReceiptKind::Queued) => OrderState::Queued,
        Some(ReceiptKind::Unknown) => OrderState::Unknown,
        None => {
            return Err(ApiError::NotFound(
                "no decided order of yours has this id; for a buy that is still queued, use \
                 the status_url of its 202 (it carries the receipt)"
                    .into(),
            ))
        }
    };
    Ok(Json(OrderStatus {
        request_id,
        status,
        reason: None,
        item_id: None,
    }))
}
