//! The order-ingest API (axum): accepts buys, makes each durable in the queue before answering
//! 202, and lets clients poll the outcome. It also fronts the inference workers (`/infer`).
//!
//! - [`server`]: [`Api`], the composition root: builds the state, binds, runs every task.
//! - [`state`]: `AppState`: the producer, the database pool, keys, budgets and metrics.
//! - [`enqueue`]: the producer, and the three outcomes of an enqueue (acked, certainly not
//!   queued, unknown).
//! - [`admission`]: stop accepting an item once the queue claims its stock.
//! - [`limits`]: per-user, per-address and global rate limits, so a script cannot take the sale.
//! - [`purchase_token`]: short-lived signed tokens that tie a buy to a signed-in user and item.
//! - [`receipt`]: signed receipts, so any instance can say "queued" for a 202'd buy.
//! - [`auth`]: the bearer-token extractor (HS256), and the explicit load-test mode.
//! - [`connections`]: the accept loop: a header read timeout and a cap on open connections;
//!   `body_deadline`: a request body must arrive within its own timeout.
//! - [`dashboard`]: the live dashboard's page, its one collector task and the counters the
//!   request path bumps for it.
//! - [`error`]: one error type, mapped once to HTTP statuses and a JSON body.
//! - `routes/`: one file per endpoint.

pub mod admission;
pub mod auth;
mod body_deadline;
pub mod connections;
pub mod dashboard;
pub mod enqueue;
pub mod error;
pub mod limits;
pub mod purchase_token;
pub mod receipt;
pub mod routes;
pub mod server;
pub mod state;

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub use server::{Api, ApiStartError, RunningApi};
pub use state::{ApiConfig, AppState};

/// Largest `/buy` body accepted; larger gets 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The API's router, separate from `main` so tests drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    if state.config.dashboard {
        router = router
            .route("/dashboard", get(routes::dashboard::page))
            .route("/dashboard/", get(routes::dashboard::page))
            .route("/dashboard/assets/{name}", get(routes::dashboard::asset))
            .route("/dashboard/events", get(routes::dashboard::events));
    }
    router
        .route("/buy", post(routes::buy::buy))
        .route("/items", get(routes::items::list))
        .route("/items/{id}", get(routes::items::one))
        .route("/items/{id}/token", get(routes::items::token))
        .route("/orders/{request_id}", get(routes::orders::order_status))
        .route(
            "/infer",
            post(routes::infer::infer)
                .layer(DefaultBodyLimit::max(routes::infer::MAX_INFER_BODY_BYTES)),
        )
        .route("/infer/{id}", get(routes::infer::infer_status))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_deadline::read_body_in_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

/// The routes above, for [`count_responses`]'s label without an allocation per request. A
/// route missing here is still counted, under its own (allocated) name.
const ROUTES: &[&str] = &[
    "/buy",
    "/items",
    "/items/{id}",
    "/items/{id}/token",
    "/orders/{request_id}",
    "/infer",
    "/infer/{id}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/dashboard",
    "/dashboard/",
    "/dashboard/assets/{name}",
    "/dashboard/events",
];

/// Counts every response by route and status (`order_api_responses_total`).
async fn count_responses(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route: Cow<'static, str> = match req.extensions().get::<MatchedPath>() {
        Some(p) => match ROUTES.iter().find(|r| **r == p.as_str()) {
            Some(r) => Cow::Borrowed(r),
            None => Cow::Owned(p.as_str().to_string()),
        },
        None => Cow::Borrowed("unmatched"),
    };
    let resp = next.run(req).await;
    if route == "/buy" {
        state.dashboard.counters.answer(resp.status().as_u16());
    }
    state
        .metrics
        .responses
        .get_or_create(&state::ResponseLabel {
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
