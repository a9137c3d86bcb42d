//! `POST /buy {item_id, qty, purchase_token?}`: limit (429 over the caller's rate), validate,
//! check the sale window (425 before, 410 after) and the purchase token where the item requires
//! one, admit (refuse an item whose stock the queue already claims, without enqueueing), enqueue the order event (keyed by item, idempotent producer,
//! acks=all) and answer 202 only once the broker acknowledged it.
//!
//! Every answer is true, also under failure:
//! - 202 `{request_id, idempotency_key, receipt, status_url}`: the buy is durable in the queue.
//! - 503 `not_accepted`: certainly nothing was queued; retrying is safe.
//! - 503 `outcome_unknown`: it may be queued; retry with the same `Idempotency-Key`, which names
//!   the same request, so it becomes at most one order.
//!
//! The request id follows from the buyer and the Idempotency-Key (a name-based UUID of both), so
//! the same key on any instance, before or after a restart, names the same order; the worker
//! applies a request id once. Without a key the API makes one and returns it.
//!
//! Refusals come in floods (the crowd before the opening, everyone after the sell-out), so they
//! are answered before the work only an accepted buy needs: the request id is derived only when
//! it means something to the client (a buy that goes to the queue, or a refusal of a buy sent
//! with its own Idempotency-Key, which a client may be retrying after an unknown outcome). A
//! refusal of a keyless buy names no request: nothing was queued, and no later request could
//! name the key the API would have made up.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::messages::OrderEvent;
use uuid::Uuid;

use crate::api::admission::{Refusal, SaleTerms, Window};
use crate::api::auth::MaybeUser;
use crate::api::enqueue::Enqueued;
use crate::api::error::{ApiError, Pending};
use crate::api::limits::ClientAddr;
use crate::api::receipt::ReceiptKind;
use crate::api::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyRequest {
    pub item_id: i64,
    #[serde(default = "one")]
    pub qty: u32,
    /// Only in load-test mode, and only without a token.
    pub user_id: Option<i64>,
    /// From `GET /items/{id}/token`, for an item that requires one.
    pub purchase_token: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Accepted {
    pub request_id: Uuid,
    /// The key this request is known by: the client's `Idempotency-Key`, or the one the API made.
    pub idempotency_key: String,
    /// Proof, for any API instance, that this buy was queued (see `receipt.rs`).
    pub receipt: String,
    /// `GET` it for the outcome; it carries the receipt.
    pub status_url: String,
}

const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Namespace of the name-based request ids (random, fixed for this project).
const REQUEST_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5ec1_1a7e_0b5e_4c3a_9f1d_2a7c_e4b8_1d60);

/// The request id of `user`'s buy with `key`: the same on every instance and after restarts.
pub fn request_id(user: i64, key: &str) -> Uuid {
    // The user id is a number, so the first '/' separates it from the key unambiguously.
    Uuid::new_v5(&REQUEST_ID_NAMESPACE, format!("{user}/{key}").as_bytes())
}

/// `/orders/{id}?receipt=...`
pub fn status_url(id: Uuid, receipt: &str) -> String {
    format!("/orders/{id}?receipt={receipt}")
}

/// Who is buying: the bearer token's user, or in load-test mode the body's.
pub(super) fn buyer(
    state: &AppState,
    token_user: Option<i64>,
    claimed: Option<i64>,
) -> Result<i64, ApiError> {
    match (token_user, claimed) {
        (Some(u), None) => Ok(u),
        (Some(_), Some(_)) => Err(ApiError::Unprocessable(
            "user_id comes from the token, not the request".into(),
        )),
        (None, Some(u)) if state.config.load_test_mode => Ok(u),
        (None, _) => Err(ApiError::Unauthorized),
    }
}

/// Takes one request of `user` from `address` out of the rate limits, or refuses it (429).
pub(super) fn within_limits(
    state: &AppState,
    user: i64,
    address: Option<std::net::IpAddr>,
) -> Result<(), ApiError> {
    state
        .limiters
        .check(user, address)
        .map_err(|refused| rate_limited(state, refused))
}

/// A 429 for the limit that refused a request, counted.
pub(super) fn rate_limited(
    state: &AppState,
    (limit, retry_after): (crate::api::limits::Limited, std::time::Duration),
) -> ApiError {
    state
        .metrics
        .rate_limited
        .get_or_create(&crate::api::state::LimitLabel {
            limit: limit.as_str(),
        })
        .inc();
    ApiError::RateLimited { limit, retry_after }
}

/// Whether `item`'s sale is open at `now_ms` (by this server's clock).
pub(super) fn sale_open(item: &SaleTerms, now_ms: i64) -> Result<(), ApiError> {
    match item.window(now_ms) {
        Window::Open => Ok(()),
        Window::NotYet(opens_at_ms) => Err(ApiError::NotOpenYet {
            item: item.id,
            opens_at_ms,
        }),
        Window::Ended(_) => Err(ApiError::SaleEnded { item: item.id }),
    }
}

pub async fn buy(
    State(state): State<Arc<AppState>>,
    MaybeUser(token_user): MaybeUser,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<BuyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(req) = body?;
    let user_id = buyer(&state, token_user, req.user_id)?;
    // Before any other work: a script over its limit costs little and enqueues nothing.
    within_limits(&state, user_id, address)?;
    let client_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Idempotency-Key must be 1..={MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ))
                })?,
        ),
    };
    // The event the worker will get, checked by the same rules the worker applies; its request
    // id is set below, once it is needed.
    let mut event = OrderEvent {
        request_id: Uuid::nil(),
        user_id,
        item_id: req.item_id,
        qty: req.qty,
        accepted_at_ms: shared::time::now_ms(),
    };
    event
        .validate()
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let item = state
        .admission
        .terms(event.item_id)
        .ok_or_else(|| ApiError::Unprocessable(format!("unknown item {}", event.item_id)))?;
    sale_open(&item, event.accepted_at_ms).inspect_err(|e| {
        state.metrics.count_refused(match e {
            ApiError::NotOpenYet { .. } => "not_open",
            _ => "ended",
        })
    })?;
    if item.require_token {
        let token = req.purchase_token.as_deref().ok_or_else(|| {
            state.metrics.count_refused("token");
            ApiError::TokenRequired { item: item.id }
        })?;
        state
            .purchase_tokens
            .verify(token, user_id, item.id, event.accepted_at_ms)
            .map_err(|problem| {
                state.metrics.count_refused("token");
                ApiError::TokenRejected(problem)
            })?;
    }
    // The key and the request id it names, made at most once, when first needed.
    let identity = std::cell::LazyCell::new(|| {
        let key = match client_key {
            Some(k) => k.to_string(),
            None => Uuid::new_v4().simple().to_string(),
        };
        let id = request_id(user_id, &key);
        (key, id)
    });
    // A refusal names the request only if the client named it (see the module doc).
    let named = || client_key.map(|_| identity.1);
    // The client's key already names a buy of another item here: that buy's id is not this
    // one's answer (the worker would apply the id once, so this buy would never happen).
    if client_key.is_some() {
        if let Some(first) = state.admission.item_of(identity.1) {
            if first != event.item_id {
                state.metrics.count_refused("key_reused");
                return Err(ApiError::KeyReused {
                    request_id: identity.1,
                    item: first,
                });
            }
        }
    }
    let reservation =
        match state
            .admission
            .reserve(event.user_id, event.item_id, event.qty as i64, || {
                identity.1
            }) {
            Ok(r) => r,
            Err(Refusal::UnknownItem) => {
                return Err(ApiError::Unprocessable(format!(
                    "unknown item {}",
                    event.item_id
                )))
            }
            Err(Refusal::SoldOut) => {
                state.metrics.count_refused("sold_out");
                return Err(ApiError::SoldOut {
                    item: event.item_id,
                    request_id: named(),
                });
            }
            Err(Refusal::Claimed) => {
                state.metrics.count_refused("claimed");
                return Err(ApiError::Claimed {
                    item: event.item_id,
                    request_id: named(),
                });
            }
            Err(Refusal::Duplicate(earlier)) => {
                state.metrics.count_refused("duplicate");
                // A keyed buy is answered under its own id, whatever this instance saw first:
                // the client may be replaying a key whose first attempt went to another
                // instance, and the same key names the same request everywhere.
                return Err(ApiError::Duplicate {
                    item: event.item_id,
                    request_id: named().unwrap_or(earlier),
                    first: earlier,
                });
            }
        };
    let (key, id) = std::cell::LazyCell::force(&identity).clone();
    event.request_id = id;

    // The worker applies a buy of a token-required item only with this signature: such an
    // item is bought only through here, where the token was checked.
    let signature = state.event_signer.get().map(|s| {
        rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: crate::orders::signature::HEADER,
            value: Some(s.sign(&event).as_bytes()),
        })
    });
    let started = Instant::now();
    let outcome = if crate::failpoints::fires(crate::failpoints::ACK_WITHOUT_ENQUEUE) {
        // As if at the start of partition 0: the units it holds are freed at the next refresh.
        Enqueued::Acked {
            partition: 0,
            offset: 0,
        }
    } else {
        state
            .producer
            .send_with(
                &state.config.topic,
                event.item_id.to_string().as_bytes(),
                &event.encode(),
                signature,
                state.config.enqueue_timeout,
            )
            .await
    };
    match outcome {
        Enqueued::Acked { partition, offset } => {
            reservation.queued(partition, offset);
            let took = started.elapsed();
            state.metrics.enqueue_seconds.observe(took.as_secs_f64());
            state.dashboard.counters.enqueued(took);
            let receipt = state.receipts.sign(ReceiptKind::Queued, id);
            Ok((
                StatusCode::ACCEPTED,
                Json(Accepted {
                    request_id: id,
                    idempotency_key: key,
                    status_url: status_url(id, &receipt),
                    receipt,
                }),
            ))
        }
        Enqueued::Unknown(why)
            if crate::failpoints::fires(crate::failpoints::UNKNOWN_AS_NOT_ACCEPTED) =>
        {
            tracing::warn!(%why, "failpoint: an unknown outcome answered not_accepted");
            Err(ApiError::NotAccepted {
                request: Box::new(Pending {
                    request_id: id,
                    idempotency_key: key,
                    status_url: None,
                }),
                source: rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
                ),
            })
        }
        Enqueued::NotQueued(e) => Err(ApiError::NotAccepted {
            request: Box::new(Pending {
                request_id: id,
                idempotency_key: key,
                status_url: None,
            }),
            source: e,
        }),
        Enqueued::Unknown(why) => {
            let receipt = state.receipts.sign(ReceiptKind::Unknown, id);
            Err(ApiError::OutcomeUnknown {
                request: Box::new(Pending {
                    request_id: id,
                    idempotency_key: key,
                    status_url: Some(status_url(id, &receipt)),
                }),
                reason: why,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_user_and_key_name_the_same_request() {
        assert_eq!(request_id(7, "k-1"), request_id(7, "k-1"));
        assert_ne!(request_id(7, "k-1"), request_id(8, "k-1"));
        assert_ne!(request_id(7, "k-1"), request_id(7, "k-2"));
        // No user/key pair can collide with another by moving the separator.
        assert_ne!(request_id(1, "2/x"), request_id(12, "x"));
    }
}
