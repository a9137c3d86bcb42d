//! The API's error type: every failure a handler can return, mapped to its HTTP status and a
//! JSON body `{"error": "...", "detail": "...", ...}` in one place. Internal errors are logged
//! here, once, and answered without their details.
//!
//! The two 503s of an enqueue say different things and are kept apart: `not_accepted` (nothing
//! was queued: retry freely) and `outcome_unknown` (it may be queued: retry with the same
//! Idempotency-Key). Both carry the request's id and key.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::limits::Limited;
use super::purchase_token::TokenProblem;

/// The request a failed enqueue was about, so the client can retry it or look it up.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub request_id: Uuid,
    pub idempotency_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// An order's status was asked for without its receipt or the buyer's token.
    #[error("an order's status needs its receipt (the status_url of the 202) or the buyer's bearer token")]
    ProofRequired,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body too large")]
    TooLarge,
    /// The body did not arrive within the body read timeout; the connection is closed.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Nothing was enqueued for `request_id` by this attempt (an earlier attempt with the same
    /// Idempotency-Key may have been: `GET /orders/{request_id}` shows it once decided). The id
    /// is there only when the client sent its own Idempotency-Key (see `routes/buy.rs`).
    #[error("item {item} is sold out")]
    SoldOut { item: i64, request_id: Option<Uuid> },
    /// Units are left, but buys already in the queue claim them all.
    #[error("item {item}: every unit left is claimed by queued orders; some may come back if those fail")]
    Claimed { item: i64, request_id: Option<Uuid> },
    /// The buyer already has another buy of this item (`first`) queued or decided here; this
    /// attempt enqueued nothing. `request_id` is the client's own request when it sent an
    /// Idempotency-Key (a replay of that key names its own request on every instance: an
    /// earlier attempt of it, on another instance, may have been queued), else `first`.
    #[error("you already bought item {item} (request {first}); one per buyer")]
    Duplicate {
        item: i64,
        request_id: Uuid,
        first: Uuid,
    },
    /// The Idempotency-Key names an earlier buy of another item (its request id): a new buy
    /// needs a new key. Nothing enqueued.
    #[error("this Idempotency-Key was used for a buy of item {item} (request {request_id}); a different buy needs a new key")]
    KeyReused { item: i64, request_id: Uuid },
    /// The sale of the item opens later (ms since the epoch): nothing enqueued.
    #[error("the sale of item {item} has not opened yet")]
    NotOpenYet { item: i64, opens_at_ms: i64 },
    /// The sale of the item is over.
    #[error("the sale of item {item} has ended")]
    SaleEnded { item: i64 },
    /// Over a rate limit: nothing enqueued; retry after the given time.
    #[error("too many requests (the {} limit); retry later", limit.as_str())]
    RateLimited {
        limit: Limited,
        retry_after: std::time::Duration,
    },
    /// The item requires a purchase token and none came.
    #[error(
        "this item needs a purchase token: GET /items/{item}/token, then send it as purchase_token"
    )]
    TokenRequired { item: i64 },
    /// The purchase token does not let this buy through.
    #[error("{}", match .0 {
        TokenProblem::Expired => "the purchase token has expired: get a new one",
        TokenProblem::NotYours => "the purchase token was not issued for this user and item",
        TokenProblem::Malformed => "the purchase token is malformed",
    })]
    TokenRejected(TokenProblem),
    /// An inference request with this UUID exists with another body.
    #[error("uuid {0} is taken by a request with another body")]
    UuidInUse(Uuid),
    #[error("{0}")]
    NotFound(String),
    /// Certainly not queued (the producer refused it, or the broker refused or never got it).
    #[error("the queue did not take the request; nothing was accepted: {source}")]
    NotAccepted {
        request: Box<Pending>,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Maybe queued: no acknowledgement within the enqueue timeout.
    #[error("the outcome is unknown ({reason}); retry with the same Idempotency-Key")]
    OutcomeUnknown {
        request: Box<Pending>,
        reason: String,
    },
    /// The queue did not take an inference request; nothing was accepted.
    #[error("queue unavailable: {0}")]
    Unavailable(#[source] rdkafka::error::KafkaError),
    /// This instance is not reading inference replies yet (the broker is away): nothing was
    /// sent, the client should retry.
    #[error("not reading inference replies yet (broker unreachable?)")]
    RepliesNotReady,
    /// An order's status needs the database, which did not answer (down or too slow), and no
    /// receipt came to answer from.
    #[error("the order database is not answering; retry shortly (with the receipt of the 202, the status is answered without it)")]
    StatusUnavailable,
    /// A bounded resource is full (e.g. the dashboard's viewers); try again later.
    #[error("{0}")]
    Busy(&'static str),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::ProofRequired => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::SoldOut { .. } | ApiError::Claimed { .. } => StatusCode::GONE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Duplicate { .. } | ApiError::UuidInUse(_) | ApiError::KeyReused { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::NotOpenYet { .. } => StatusCode::TOO_EARLY,
            ApiError::SaleEnded { .. } => StatusCode::GONE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TokenRequired { .. } => StatusCode::UNAUTHORIZED,
            ApiError::TokenRejected(_) => StatusCode::FORBIDDEN,
            ApiError::NotAccepted { .. }
            | ApiError::OutcomeUnknown { .. }
            | ApiError::Unavailable(_)
            | ApiError::RepliesNotReady
            | ApiError::StatusUnavailable
            | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized | ApiError::ProofRequired => "unauthorized",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::TooLarge => "too_large",
            ApiError::BodyTimeout(_) => "timeout",
            ApiError::SoldOut { .. } => "sold_out",
            ApiError::Claimed { .. } => "claimed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Duplicate { .. } => "duplicate",
            ApiError::KeyReused { .. } => "key_reused",
            ApiError::UuidInUse(_) => "uuid_conflict",
            ApiError::NotOpenYet { .. } => "not_open",
            ApiError::SaleEnded { .. } => "sale_ended",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TokenRequired { .. } => "purchase_token_required",
            ApiError::TokenRejected(TokenProblem::Expired) => "purchase_token_expired",
            ApiError::TokenRejected(_) => "purchase_token_invalid",
            ApiError::NotAccepted { .. } => "not_accepted",
            ApiError::OutcomeUnknown { .. } => "outcome_unknown",
            ApiError::Unavailable(_) | ApiError::RepliesNotReady | ApiError::StatusUnavailable => {
                "unavailable"
            }
            ApiError::Busy(_) => "busy",
            ApiError::Database(_) => "internal",
        }
    }
}

/// The JSON body of every error answer. Serialized straight from borrowed fields: refusals come
/// in floods (see `routes/buy.rs`), and a map of values built per answer costs more than the
/// answer.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<Uuid>,
    /// The buyer's other buy of the item, in a 409 `duplicate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opens_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error; answering 500");
                "internal error".to_string()
            }
            ApiError::NotAccepted { source, .. } | ApiError::Unavailable(source) => {
                tracing::warn!(error = %source, "the queue did not take a request; answering 503");
                "the queue did not take the request; nothing was accepted, retry".to_string()
            }
            ApiError::OutcomeUnknown { reason, .. } => {
                tracing::warn!(reason = %reason, "enqueue outcome unknown; answering 503");
                format!(
                    "the request may or may not be queued ({reason}); retry with the same \
                     Idempotency-Key: it names the same request, so it becomes at most one order"
                )
            }
            ApiError::RepliesNotReady => {
                "not reading inference replies yet; nothing was accepted, retry".to_string()
            }
            other => other.to_string(),
        };
        let pending = match &self {
            ApiError::NotAccepted { request, .. } | ApiError::OutcomeUnknown { request, .. } => {
                Some(request.as_ref())
            }
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            detail: &detail,
            request_id: match &self {
                ApiError::Duplicate { request_id, .. } | ApiError::KeyReused { request_id, .. } => {
                    Some(*request_id)
                }
                ApiError::SoldOut { request_id, .. } | ApiError::Claimed { request_id, .. } => {
                    *request_id
                }
                _ => pending.map(|p| p.request_id),
            },
            duplicate_of: match &self {
                ApiError::Duplicate { first, .. } => Some(*first),
                _ => None,
            },
            idempotency_key: pending.map(|p| p.idempotency_key.as_str()),
            status_url: pending.and_then(|p| p.status_url.as_deref()),
            opens_at_ms: match &self {
                ApiError::NotOpenYet { opens_at_ms, .. } => Some(*opens_at_ms),
                _ => None,
            },
            limit: match &self {
                ApiError::RateLimited { limit, .. } => Some(limit.as_str()),
                _ => None,
            },
        };
        // When to try again: after the wait a limit asks for, when the sale opens, or shortly
        // (the queue may take it; claimed units may come back).
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            ApiError::NotOpenYet { opens_at_ms, .. } => {
                let left = (opens_at_ms - shared::time::now_ms()).max(0) as f64 / 1000.0;
                Some(left.ceil().max(1.0) as u64)
            }
            ApiError::Claimed { .. } => Some(1),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
