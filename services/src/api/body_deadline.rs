//! A request body must arrive within [`ConnectionLimits::body_read_timeout`]
//! (`API_BODY_READ_TIMEOUT_MS`): a client that declares a body and then sends it slowly, or not
//! at all, gets 408 `timeout` and its connection is closed. Without it a handler waited for the
//! body for ever, and such connections held descriptors like the partial headers the
//! connection layer already bounds (`connections.rs`).
//!
//! The body is read whole here, up to the largest body any route accepts, and handed on as
//! bytes; each route's own limit (`DefaultBodyLimit`) still applies to it. A body larger than
//! that is left to the route, which answers 413 without reading it.
//!
//! [`ConnectionLimits::body_read_timeout`]: super::connections::ConnectionLimits::body_read_timeout

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::error::ApiError;
use super::AppState;

/// The largest body any route accepts (the `/infer` input).
const MAX_READ: usize = super::routes::infer::MAX_INFER_BODY_BYTES;

pub(super) async fn read_body_in_time(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    use http_body::Body as _;
    let (parts, body) = req.into_parts();
    // Nothing to wait for, or more than any route takes (the route refuses it with 413).
    let declared = body.size_hint();
    if body.is_end_stream() || declared.lower() > MAX_READ as u64 {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let limited = http_body_util::Limited::new(body, MAX_READ);
    let timeout = state.config.connections.body_read_timeout;
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        // Past the largest body: the routes' own limit answers 413.
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            ApiError::TooLarge.into_response()
        }
        Ok(Err(_)) => {
            ApiError::BadRequest("the request body could not be read".into()).into_response()
        }
        // Counted among the responses (408) by `count_responses`, which runs around this.
        Err(_) => {
            let mut r = ApiError::BodyTimeout(timeout).into_response();
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
    }
}
