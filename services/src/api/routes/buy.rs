//! `POST /buy {item_id, qty}`: validate, refuse sold-out items without enqueueing, enqueue the
//! order event (keyed by item, idempotent producer, acks=all) and answer 202 only once the
//! broker acknowledged it. Never a 202 for something the queue does not have.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};
use shared::messages::OrderEvent;
use uuid::Uuid;

use crate::api::auth::MaybeUser;
use crate::api::error::ApiError;
use crate::api::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyRequest {
    pub item_id: i64,
    #[serde(default = "one")]
    pub qty: u32,
    /// Only in load-test mode, and only without a token.
    pub user_id: Option<i64>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Accepted {
    pub request_id: Uuid,
    pub status_url: String,
}

const MAX_IDEMPOTENCY_KEY: usize = 200;

pub async fn buy(
    State(state): State<Arc<AppState>>,
    MaybeUser(token_user): MaybeUser,
    headers: HeaderMap,
    body: Result<Json<BuyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(req) = body?;
    let user_id = match (token_user, req.user_id) {
        (Some(u), None) => u,
        (Some(_), Some(_)) => {
            return Err(ApiError::Unprocessable(
                "user_id comes from the token, not the body".into(),
            ))
        }
        (None, Some(u)) if state.config.load_test_mode => u,
        (None, _) => return Err(ApiError::Unauthorized),
    };
    // The event the worker will get, checked by the same rules the worker applies.
    let event = OrderEvent {
        request_id: Uuid::new_v4(),
        user_id,
        item_id: req.item_id,
        qty: req.qty,
        accepted_at_ms: shared::time::now_ms(),
    };
    event
        .validate()
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    {
        let items = state.items.read().unwrap_or_else(|e| e.into_inner());
        if !items.known.contains(&req.item_id) {
            return Err(ApiError::Unprocessable(format!(
                "unknown item {}",
                req.item_id
            )));
        }
        if items.sold_out.contains(&req.item_id) {
            return Err(ApiError::SoldOut(req.item_id));
        }
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("Idempotency-Key must be 1..={MAX_IDEMPOTENCY_KEY} visible ASCII characters"))
                })?;
            Some(k.to_string())
        }
    };

    let request_id = match key {
        None => enqueue(&state, &event).await?,
        Some(key) => {
            let cap = state.config.remember_accepted;
            let cell = state
                .idempotency
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with((event.user_id, key), cap, Default::default)
                .clone();
            // One request per key enqueues; the others wait for its request id. A failed
            // enqueue leaves the cell empty, so a retry with the key enqueues again.
            *cell.get_or_try_init(|| enqueue(&state, &event)).await?
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id,
            status_url: format!("/orders/{request_id}"),
        }),
    ))
}

async fn enqueue(state: &AppState, event: &OrderEvent) -> Result<Uuid, ApiError> {
    let key = event.item_id.to_string();
    let payload = event.encode();
    let started = Instant::now();
    // The producer's own message timeout bounds the wait; queue full fails at once.
    let sent = state
        .producer
        .send(
            FutureRecord::to(&state.config.topic)
                .key(&key)
                .payload(&payload),
            rdkafka::util::Timeout::After(std::time::Duration::ZERO),
        )
        .await;
    match sent {
        Ok(_) => {
            state
                .metrics
                .enqueue_seconds
                .observe(started.elapsed().as_secs_f64());
            let cap = state.config.remember_accepted;
            state
                .accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(event.request_id, cap, || ());
            Ok(event.request_id)
        }
        Err((e, _)) => Err(ApiError::Unavailable(e)),
    }
}
