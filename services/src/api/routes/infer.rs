//! `POST /infer {input, model?, deadline_ms?}` and `GET /infer/{id}`: request/reply with a model
//! served by the inference workers (see [`crate::inference`]).
//!
//! POST records the request as pending, registers this instance's interest in its UUID, enqueues
//! it (acks=all) with this instance's reply address, then waits up to `?wait_ms=` (capped by
//! config) for the reply: 200 with the result, or 202 with the UUID and its status URL. A reply
//! that comes after the wait is stored by the worker, and GET returns it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::messages::InferenceRequest;
use uuid::Uuid;

use crate::api::auth::MaybeUser;
use crate::api::enqueue::Enqueued;
use crate::api::error::{ApiError, Pending};
use crate::api::AppState;
use crate::inference::store::{self, RequestState};

/// Largest `/infer` body accepted; larger gets 413.
pub const MAX_INFER_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferBody {
    pub input: Value,
    pub model: Option<String>,
    /// How long the request stays worth answering; capped by config.
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct InferQuery {
    pub wait_ms: Option<u64>,
}

/// What POST (when the reply came in time) and GET answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct InferResult {
    pub id: Uuid,
    pub status: RequestState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InferAccepted {
    pub id: Uuid,
    pub status_url: String,
}

pub async fn infer(
    State(state): State<Arc<AppState>>,
    MaybeUser(user): MaybeUser,
    Query(query): Query<InferQuery>,
    body: Result<Json<InferBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    if user.is_none() && !state.config.load_test_mode {
        return Err(ApiError::Unauthorized);
    }
    let Json(body) = body?;
    if body.input.is_null() {
        return Err(ApiError::Unprocessable("input is required".into()));
    }
    if shared::messages::has_nul(&body.input)
        || body.model.as_deref().is_some_and(|m| m.contains('\0'))
    {
        return Err(ApiError::Unprocessable(
            "input and model must not contain NUL characters".into(),
        ));
    }
    if let Some(m) = &body.model {
        if m.is_empty() || m.len() > 100 {
            return Err(ApiError::Unprocessable(
                "model must be 1..=100 characters".into(),
            ));
        }
    }
    let cfg = &state.config;
    let deadline = body
        .deadline_ms
        .map(Duration::from_millis)
        .unwrap_or(cfg.infer_deadline)
        .min(cfg.infer_max_deadline);
    let wait = query
        .wait_ms
        .map(Duration::from_millis)
        .unwrap_or(Duration::ZERO)
        .min(cfg.infer_max_wait);
    let Some((reply_topic, reply_partition)) = state.replies.address() else {
        return Err(ApiError::RepliesNotReady);
    };
    let req = InferenceRequest {
        id: Uuid::new_v4(),
        model: body.model,
        input: body.input,
        deadline_ms: shared::time::now_ms() + deadline.as_millis() as i64,
        reply_topic: reply_topic.to_string(),
        reply_partition,
    };
    store::create_pending(&state.pool, &req).await?;
    let reply = state.replies.wait_for(req.id);
    let key = req.id.to_string();
    let payload = req.encode();
    let sent = state
        .producer
        .send(
            &cfg.inference_topic,
            key.as_bytes(),
            &payload,
            cfg.enqueue_timeout,
        )
        .await;
    match sent {
        Enqueued::Acked { .. } => {}
        Enqueued::NotQueued(e) => {
            // Certainly not queued: forget it, so it never reads as pending.
            state.replies.forget(req.id);
            store::delete_pending(&state.pool, req.id).await?;
            return Err(ApiError::Unavailable(e));
        }
        Enqueued::Unknown(why) => {
            // Maybe queued: the pending row stays, and GET /infer/{id} will show the result
            // if a worker gets it (or `expired` once its deadline passed).
            state.replies.forget(req.id);
            return Err(ApiError::OutcomeUnknown {
                request: Pending {
                    request_id: req.id,
                    idempotency_key: req.id.to_string(),
                    status_url: Some(format!("/infer/{}", req.id)),
                },
                reason: why,
            });
        }
    }
    let accepted = || {
        (
            StatusCode::ACCEPTED,
            Json(InferAccepted {
                id: req.id,
                status_url: format!("/infer/{}", req.id),
            }),
        )
            .into_response()
    };
    if wait.is_zero() {
        state.replies.forget(req.id);
        return Ok(accepted());
    }
    match tokio::time::timeout(wait, reply).await {
        Ok(Ok(r)) => Ok(Json(InferResult {
            id: r.id,
            status: r.status.into(),
            output: r.output,
            error: r.error,
        })
        .into_response()),
        _ => {
            state.replies.forget(req.id);
            Ok(accepted())
        }
    }
}

pub async fn infer_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<InferResult>, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest(format!("{id:?} is not a UUID")))?;
    let row = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no inference request {id}")))?;
    // Past its deadline a pending request will be answered `expired` by whichever worker takes
    // it, so say so now.
    let status = if row.status == RequestState::Pending && row.deadline_passed {
        RequestState::Expired
    } else {
        row.status
    };
    Ok(Json(InferResult {
        id,
        status,
        output: row.output,
        error: row.error,
    }))
}
