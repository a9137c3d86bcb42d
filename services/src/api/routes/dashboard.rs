//! `GET /dashboard` (the page), `GET /dashboard/assets/{name}` (its script, style and chart
//! library, compiled into the binary) and `GET /dashboard/events` (server-sent events: a `tick`
//! every half second, see `api/dashboard/tick.rs`). The stream ends when the API shuts down, so
//! an open page never holds up a graceful stop; the page reconnects by itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;

use crate::api::dashboard::{collector::Feed, ASSETS, PAGE};
use crate::api::error::ApiError;
use crate::api::AppState;

/// The page loads only its own files and talks only to its own origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard asset {name:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            // The names carry no content hash: revalidate, never cache for long.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *body,
    )
        .into_response())
}

pub async fn events(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let feed = state.dashboard.subscribe().ok_or(ApiError::Busy(
        "too many dashboard viewers; try again later",
    ))?;
    let stream = ticks(feed, state.stopping.clone());
    Ok((
        // A proxy must pass each event on at once.
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))),
    )
        .into_response())
}

/// Each new tick as an event, until the API stops.
fn ticks(
    feed: Feed,
    stop: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((feed, stop), |(mut feed, stop)| async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                changed = feed.changed() => changed.ok()?,
            }
            let json = feed.borrow_and_update().clone();
            if let Some(json) = json {
                let event = Event::default().event("tick").data(&*json);
                return Some((Ok(event), (feed, stop)));
            }
        }
    })
}
