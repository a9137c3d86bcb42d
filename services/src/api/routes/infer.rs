//! `POST /infer` and `GET /infer/{uuid}`: request/reply with a model served by the inference
//! workers (see [`crate::inference`]).
//!
//! POST takes either form:
//! - the envelope `{"input": <any JSON>, "uuid"?, "model"?, "deadline_ms"?}`;
//! - a backend's own message as is: a JSON object with a `uuid`, whose other fields are the
//!   model's input (`{"uuid": "...", "nature": "...", "database": "cinema"}`).
//!
//! The caller may choose the UUID: the request is idempotent per UUID (the same UUID with the
//! same body is the existing request, with no second model run; with another body it is a 409).
//! POST records the request as pending, registers this instance's interest in its UUID,
//! enqueues it (acks=all) with this instance's reply address, then waits up to `?wait_ms=`
//! (capped by config) for the reply: 200 with the result, or 202 with its status URL. A reply
//! that comes after the wait is stored by the worker, and GET returns it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::messages::{split_uuid, InferenceRequest, ReplyTo, MAX_MODEL_NAME};
use uuid::Uuid;

use crate::api::auth::MaybeUser;
use crate::api::enqueue::Enqueued;
use crate::api::error::{ApiError, Pending};
use crate::api::AppState;
use crate::inference::store::{self, Created, RequestState, StoredRequest};

/// Largest `/infer` body accepted; larger gets 413.
pub const MAX_INFER_BODY_BYTES: usize = 256 * 1024;

/// How often a caller waiting on a request another call enqueued looks at the table.
const POLL_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Deserialize)]
pub struct InferQuery {
    pub wait_ms: Option<u64>,
}

/// What POST (when the answer came in time) and GET answer.
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

/// A POST body, whichever form it came in.
#[derive(Debug)]
struct Asked {
    id: Option<Uuid>,
    model: Option<String>,
    input: Value,
    deadline_ms: Option<u64>,
}

/// The envelope form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    uuid: Option<Uuid>,
    input: Value,
    model: Option<String>,
    /// How long the request stays worth answering; capped by config.
    deadline_ms: Option<u64>,
}

fn parse(body: Value) -> Result<Asked, ApiError> {
    let Value::Object(fields) = &body else {
        return Err(ApiError::Unprocessable("a request is a JSON object".into()));
    };
    if fields.contains_key("input") {
        let e: Envelope = serde_json::from_value(body)
            .map_err(|e| ApiError::Unprocessable(format!("invalid request: {e}")))?;
        return Ok(Asked {
            id: e.uuid,
            model: e.model,
            input: e.input,
            deadline_ms: e.deadline_ms,
        });
    }
    if !fields.contains_key("uuid") {
        return Err(ApiError::Unprocessable(
            "input is required: send {\"input\": ...}, or a message with a \"uuid\" whose other fields are the input".into(),
        ));
    }
    let (id, input) = split_uuid(body).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(Asked {
        id: Some(id),
        model: None,
        input,
        deadline_ms: None,
    })
}

fn result_of(row: StoredRequest) -> InferResult {
    // Past its deadline a pending request will be answered `expired` by whichever worker takes
    // it, so say so now.
    let status = if row.status == RequestState::Pending && row.deadline_passed {
        RequestState::Expired
    } else {
        row.status
    };
    InferResult {
        id: row.id,
        status,
        output: row.output,
        error: row.error,
    }
}

fn accepted(id: Uuid) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(InferAccepted {
            id,
            status_url: format!("/infer/{id}"),
        }),
    )
        .into_response()
}

pub async fn infer(
    State(state): State<Arc<AppState>>,
    MaybeUser(user): MaybeUser,
    Query(query): Query<InferQuery>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    if user.is_none() && !state.config.load_test_mode {
        return Err(ApiError::Unauthorized);
    }
    let Json(body) = body?;
    let asked = parse(body)?;
    if asked.input.is_null() {
        return Err(ApiError::Unprocessable("input is required".into()));
    }
    if shared::messages::has_nul(&asked.input)
        || asked.model.as_deref().is_some_and(|m| m.contains('\0'))
    {
        return Err(ApiError::Unprocessable(
            "input and model must not contain NUL characters".into(),
        ));
    }
    if let Some(m) = &asked.model {
        if m.is_empty() || m.len() > MAX_MODEL_NAME {
            return Err(ApiError::Unprocessable(format!(
                "model must be 1..={MAX_MODEL_NAME} characters"
            )));
        }
    }
    let cfg = &state.config;
    let deadline = asked
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
        id: asked.id.unwrap_or_else(Uuid::new_v4),
        model: asked.model,
        input: asked.input,
        deadline_ms: shared::time::now_ms() + deadline.as_millis() as i64,
        reply_to: Some(ReplyTo {
            topic: reply_topic.to_string(),
            partition: Some(reply_partition),
            correlation_id: None,
        }),
    };
    match state.pending.create(&req).await? {
        Created::New => {}
        Created::Different => {
            return Err(ApiError::UuidInUse(req.id));
        }
        // The same request again: no second model run, and no second enqueue unless the first
        // may never have happened.
        Created::Same(row) => return answer_existing(&state, &req, row, wait).await,
    }
    let reply = state.replies.wait_for(req.id);
    match enqueue(&state, &req).await {
        Enqueued::Acked { .. } => {}
        Enqueued::NotQueued(e) => {
            // Certainly not queued: forget it, so it never reads as pending.
            state.replies.forget(req.id);
            store::delete_pending(&state.pool, req.id).await?;
            return Err(ApiError::Unavailable(e));
        }
        Enqueued::Unknown(why) => {
            // Maybe queued: the pending row stays, and GET /infer/{id} will show the result
            // if a worker gets it (or `expired` once its deadline passed). If it was not, a
            // retry of the same request sends it again (`send_again_if_due`).
            state.replies.forget(req.id);
            return Err(outcome_unknown(req.id, why));
        }
    }
    if wait.is_zero() {
        state.replies.forget(req.id);
        return Ok(accepted(req.id));
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
            Ok(accepted(req.id))
        }
    }
}

/// A request that exists already (the same UUID and body): its result, or, while it is pending,
/// a wait of up to `wait` on the table (its reply goes to whichever instance enqueued it).
/// While it is pending it may also be sent again: see [`send_again_if_due`].
async fn answer_existing(
    state: &AppState,
    req: &InferenceRequest,
    row: StoredRequest,
    wait: Duration,
) -> Result<Response, ApiError> {
    let id = row.id;
    let until = Instant::now() + wait;
    let mut next_resend_check = Instant::now();
    let mut row = row;
    loop {
        if row.status != RequestState::Pending || row.deadline_passed {
            return Ok(Json(result_of(row)).into_response());
        }
        if Instant::now() >= next_resend_check {
            send_again_if_due(state, req).await?;
            next_resend_check = Instant::now() + state.config.enqueue_timeout;
        }
        if Instant::now() >= until {
            return Ok(accepted(id));
        }
        tokio::time::sleep(POLL_EVERY.min(until - Instant::now())).await;
        row = match store::get(&state.pool, id).await? {
            Some(r) => r,
            // Deleted meanwhile: its enqueue certainly failed; the caller may send it again.
            None => return Err(ApiError::NotFound(format!("no inference request {id}"))),
        };
    }
}

/// A pending row does not prove its request reached the queue: the instance that wrote it may
/// have died before the send, or the send's outcome was unknown, and then nothing would ever
/// answer it. So a retry sends the request again, once its last send has certainly ended (the
/// enqueue timeout after it began; until then the copy would most likely be a duplicate), and
/// at most once per such interval over all instances (`store::resend_due`). A copy of a request
/// that did reach the queue lands behind it in the same partition (same key) and is answered
/// from its stored result: no second model run.
async fn send_again_if_due(state: &AppState, req: &InferenceRequest) -> Result<(), ApiError> {
    let cfg = &state.config;
    let Some(deadline_ms) = store::resend_due(&state.pool, req.id, cfg.enqueue_timeout).await?
    else {
        return Ok(());
    };
    // The stored deadline: a retry does not extend the request's life.
    let copy = InferenceRequest {
        deadline_ms,
        ..req.clone()
    };
    let why = match enqueue(state, &copy).await {
        Enqueued::Acked { .. } => {
            tracing::info!(id = %req.id, "a retry sent a pending inference request again");
            return Ok(());
        }
        Enqueued::NotQueued(e) => e.to_string(),
        Enqueued::Unknown(why) => why,
    };
    // Not "not accepted": the first send may have reached the queue.
    Err(outcome_unknown(
        req.id,
        format!("sending the pending request again: {why}"),
    ))
}

/// Produces `req` to the request topic, keyed by its UUID (so every copy of a request lands in
/// the same partition, behind the earlier ones), and waits at most the enqueue timeout.
async fn enqueue(state: &AppState, req: &InferenceRequest) -> Enqueued {
    let cfg = &state.config;
    state
        .infer_producer
        .send(
            &cfg.inference_topic,
            req.id.to_string().as_bytes(),
            &req.encode(),
            cfg.enqueue_timeout,
        )
        .await
}

/// The 503 for a request that may be in the queue: its id and where to look for its result.
fn outcome_unknown(id: Uuid, reason: String) -> ApiError {
    ApiError::OutcomeUnknown {
        request: Box::new(Pending {
            request_id: id,
            idempotency_key: id.to_string(),
            status_url: Some(format!("/infer/{id}")),
        }),
        reason,
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
    Ok(Json(result_of(row)))
}
