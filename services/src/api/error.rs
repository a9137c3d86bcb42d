//! The API's error type: every failure a handler can return, mapped to its HTTP status and a
//! JSON body `{"error": "...", "detail": "...", ...}` in one place. Internal errors are logged
//! here, once, and answered without their details.
//!
//! The two 503s of an enqueue say different things and are kept apart: `not_accepted` (nothing
//! was queued: retry freely) and `outcome_unknown` (it may be queued: retry with the same
//! Idempotency-Key). Both carry the request's id and key.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

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
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body too large")]
    TooLarge,
    /// Nothing was enqueued for `request_id` by this attempt (an earlier attempt with the same
    /// Idempotency-Key may have been: `GET /orders/{request_id}` shows it once decided).
    #[error("item {item} is sold out")]
    SoldOut { item: i64, request_id: Uuid },
    /// Units are left, but buys already in the queue claim them all.
    #[error("item {item}: every unit left is claimed by queued orders; some may come back if those fail")]
    Claimed { item: i64, request_id: Uuid },
    /// The buyer already has another buy of this item queued or decided.
    #[error("you already bought item {item} (request {request_id}); one per buyer")]
    Duplicate { item: i64, request_id: Uuid },
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
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::SoldOut { .. } | ApiError::Claimed { .. } => StatusCode::GONE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Duplicate { .. } | ApiError::UuidInUse(_) => StatusCode::CONFLICT,
            ApiError::NotAccepted { .. }
            | ApiError::OutcomeUnknown { .. }
            | ApiError::Unavailable(_)
            | ApiError::RepliesNotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::TooLarge => "too_large",
            ApiError::SoldOut { .. } => "sold_out",
            ApiError::Claimed { .. } => "claimed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Duplicate { .. } => "duplicate",
            ApiError::UuidInUse(_) => "uuid_conflict",
            ApiError::NotAccepted { .. } => "not_accepted",
            ApiError::OutcomeUnknown { .. } => "outcome_unknown",
            ApiError::Unavailable(_) | ApiError::RepliesNotReady => "unavailable",
            ApiError::Database(_) => "internal",
        }
    }
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
        let mut body = json!({ "error": self.code(), "detail": detail });
        if let (
            ApiError::Duplicate { request_id, .. }
            | ApiError::SoldOut { request_id, .. }
            | ApiError::Claimed { request_id, .. },
            Some(map),
        ) = (&self, body.as_object_mut())
        {
            map.insert("request_id".into(), request_id.to_string().into());
        }
        if let ApiError::NotAccepted { request, .. } | ApiError::OutcomeUnknown { request, .. } =
            &self
        {
            if let (Some(map), Ok(serde_json::Value::Object(extra))) =
                (body.as_object_mut(), serde_json::to_value(request))
            {
                map.extend(extra);
            }
        }
        // Worth trying again shortly: the queue may take it, or claimed units may come back.
        if status == StatusCode::SERVICE_UNAVAILABLE || matches!(self, ApiError::Claimed { .. }) {
            return (status, [(header::RETRY_AFTER, "1")], Json(body)).into_response();
        }
        (status, Json(body)).into_response()
    }
}
