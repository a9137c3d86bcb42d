//! The API's error type: every failure a handler can return, mapped to its HTTP status and a
//! JSON body `{"error": "...", "detail": "..."}` in one place. Internal errors are logged here,
//! once, and answered without their details.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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
    #[error("item {0} is sold out")]
    SoldOut(i64),
    #[error("not found")]
    NotFound,
    /// The queue did not acknowledge: nothing was accepted, the client should retry.
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
            ApiError::SoldOut(_) => StatusCode::GONE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::RepliesNotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::TooLarge => "too_large",
            ApiError::SoldOut(_) => "sold_out",
            ApiError::NotFound => "not_found",
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
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "queue unavailable; answering 503");
                "the queue did not acknowledge; nothing was accepted, retry".to_string()
            }
            ApiError::RepliesNotReady => {
                "not reading inference replies yet; nothing was accepted, retry".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(json!({ "error": self.code(), "detail": detail }));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return (status, [(header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}
