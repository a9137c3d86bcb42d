//! The buyers of a scenario, as careful clients: each arrives at its time in an open-loop burst,
//! sends its buy with its own Idempotency-Key and retries with the same key after a 503 or a
//! broken connection, alternating the API instances. Every attempt is recorded with when it was
//! sent and answered, on which instance, and what the answer was (`loadtest::answers`), so the
//! verdict can attribute every order and every fault.
//!
//! Some buyers do more, as real ones do:
//! - every tenth buys the item a second time with another key on the other instance (a double
//!   click), then replays its first key there (a client that lost the first answer): the replay
//!   must still be answered under the first key's own request id;
//! - three in four take a 503 `not_accepted` at its word and gives up ("certainly nothing was
//!   queued"): an order for it would be a broken promise.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadtest::answers::{classify, BuyAnswer};
use loadtest::verify::{Final, RequestRecord};
use services::api::routes::buy::request_id;
use uuid::Uuid;

/// Time since the burst started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(pub(crate) Instant);

impl Clock {
    pub(crate) fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) api: usize,
    pub(crate) sent: Duration,
    pub(crate) answered: Duration,
    /// `Err`: an answer the API does not document (see `loadtest::answers`).
    pub(crate) answer: Result<BuyAnswer, String>,
}

/// One request (one Idempotency-Key) and every attempt of it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) id: Uuid,
    pub(crate) attempts: Vec<Attempt>,
}

impl Request {
    /// What the client learned in the end, for `loadtest::verify`.
    pub(crate) fn record(&self) -> RequestRecord {
        let answers = || self.attempts.iter().filter_map(|a| a.answer.as_ref().ok());
        let last = self.attempts.last();
        let outcome = if answers().any(|a| *a == BuyAnswer::Accepted) {
            Final::Accepted
        } else {
            match last.map(|a| &a.answer) {
                Some(Err(_)) => Final::Error,
                Some(Ok(a)) if a.is_definite() || !a.may_be_queued() => Final::Refused,
                _ => Final::Unresolved,
            }
        };
        RequestRecord {
            request_id: Some(self.id),
            status: 0,
            outcome,
            attempts: self.attempts.len() as u32,
            unavailable: answers()
                .filter(|a| {
                    matches!(
                        a,
                        BuyAnswer::NotAccepted | BuyAnswer::OutcomeUnknown | BuyAnswer::Cut
                    )
                })
                .count() as u32,
            latency_ms: last.map_or(0.0, |a| a.answered.as_secs_f64() * 1000.0),
            could_be_queued: answers().any(|a| a.may_be_queued())
                || self.attempts.iter().any(|a| a.answer.is_err()),
        }
    }
}

/// What the poller and the verdict share with the buyers while the burst runs.
#[derive(Default)]
pub(crate) struct Seen {
    /// (request id, status URL) of every 202, for the status poller.
    pub(crate) accepted: Mutex<Vec<(Uuid, String)>>,
}

pub(crate) struct Shop {
    pub(crate) client: reqwest::Client,
    pub(crate) apis: Vec<String>,
    pub(crate) clock: Clock,
    pub(crate) deadline: Instant,
    pub(crate) seen: Seen,
    /// Requests in flight at most (the clients' connections); a buyer waiting to retry holds
    /// none.
    pub(crate) connections: tokio::sync::Semaphore,
}

/// Buyer `n` (user `n + 1`): its buy, and for some a second buy and a replay (module doc).
pub(crate) async fn shopper(shop: Arc<Shop>, n: usize, token: String, item: i64) -> Vec<Request> {
    let user = n as i64 + 1;
    let first_api = n % shop.apis.len();
    let gives_up = n % 4 != 0;
    let key = format!("chaos-{user}");
    let mut first = Request {
        id: request_id(user, &key),
        attempts: Vec::new(),
    };
    until_definite(&shop, &mut first, &key, &token, item, first_api, gives_up).await;
    if n % 10 != 0 {
        return vec![first];
    }
    let other_api = (first_api + 1) % shop.apis.len();
    let again_key = format!("chaos-{user}-again");
    let mut second = Request {
        id: request_id(user, &again_key),
        attempts: Vec::new(),
    };
    until_definite(
        &shop,
        &mut second,
        &again_key,
        &token,
        item,
        other_api,
        gives_up,
    )
    .await;
    until_definite(&shop, &mut first, &key, &token, item, other_api, gives_up).await;
    vec![first, second]
}

/// Sends `request` until a definite answer, an answer it takes at its word, or the deadline.
async fn until_definite(
    shop: &Shop,
    request: &mut Request,
    key: &str,
    token: &str,
    item: i64,
    first_api: usize,
    gives_up_on_not_accepted: bool,
) {
    let mut claimed = 0;
    let mut tries = 0usize;
    while Instant::now() < shop.deadline {
        let api = (first_api + tries) % shop.apis.len();
        tries += 1;
        let (sent, answer) = send(shop, api, key, token, item, request.id).await;
        request.attempts.push(Attempt {
            api,
            sent,
            answered: shop.clock.now(),
            answer: answer.clone(),
        });
        let pause = match answer {
            Err(_) => return,
            Ok(BuyAnswer::Accepted | BuyAnswer::SoldOut | BuyAnswer::Duplicate { .. }) => return,
            Ok(BuyAnswer::NotAccepted) if gives_up_on_not_accepted => return,
            // Units claimed by queued buys may come back: a real buyer tries a few more times.
            Ok(BuyAnswer::Claimed) if claimed < 20 => {
                claimed += 1;
                500
            }
            Ok(BuyAnswer::Claimed) => return,
            Ok(BuyAnswer::RateLimited) => 1000,
            Ok(BuyAnswer::NotAccepted | BuyAnswer::OutcomeUnknown) => 200,
            Ok(BuyAnswer::Cut | BuyAnswer::Unreachable) => 100,
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

async fn send(
    shop: &Shop,
    api: usize,
    key: &str,
    token: &str,
    item: i64,
    id: Uuid,
) -> (Duration, Result<BuyAnswer, String>) {
    let _connection = shop.connections.acquire().await;
    let sent = shop.clock.now();
    (sent, answer(shop, key, token, item, id, api).await)
}

/// One attempt over the wire, read against the documented answers.
async fn answer(
    shop: &Shop,
    key: &str,
    token: &str,
    item: i64,
    id: Uuid,
    api: usize,
) -> Result<BuyAnswer, String> {
    let sent = shop
        .client
        .post(format!("{}/buy", shop.apis[api]))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({"item_id": item}))
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        // Refused at connect (an instance down): the buy never left the client.
        Err(e) if e.is_connect() => return Ok(BuyAnswer::Unreachable),
        // Cut or timed out after it was sent: it may have been queued.
        Err(_) => return Ok(BuyAnswer::Cut),
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(_) => return Ok(BuyAnswer::Cut),
    };
    let answer = classify(status, &body, id, key);
    if answer == Ok(BuyAnswer::Accepted) {
        let url = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["status_url"].as_str().map(String::from));
        if let Some(url) = url {
            shop.seen
                .accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, url));
        }
    }
    answer
}

/// What the status poller saw.
#[derive(Debug, Default)]
pub(crate) struct Polls {
    pub(crate) answered: u64,
    /// Answers other than a 200 with a documented status, for a request answered 202 (each a
    /// broken promise: a 404 says an accepted buy does not exist).
    pub(crate) wrong: Vec<String>,
}

/// Reads the status of 202'd requests through every API instance while the run goes on.
pub(crate) async fn poll_statuses(
    shop: Arc<Shop>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Polls {
    let mut polls = Polls::default();
    let mut i = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let pick = {
            let acc = shop.seen.accepted.lock().unwrap_or_else(|e| e.into_inner());
            (!acc.is_empty()).then(|| acc[(i * 7919) % acc.len()].clone())
        };
        if let Some((id, url)) = pick {
            let api = &shop.apis[i % shop.apis.len()];
            // An instance being killed answers nothing: that is no answer, not a wrong one.
            if let Ok(r) = shop.client.get(format!("{api}{url}")).send().await {
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                polls.answered += 1;
                let documented = matches!(
                    body["status"].as_str(),
                    Some("queued" | "confirmed" | "rejected")
                );
                if status != 200 || !documented || body["request_id"] != id.to_string() {
                    polls.wrong.push(format!(
                        "{status} {body} for accepted request {id} on {api}"
                    ));
                }
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    polls
}
