//! The "bot": one user firing `/buy` far above any person's pace, at a fixed rate for a while,
//! cycling over the items with a fresh Idempotency-Key each time (so every request is a new
//! buy, not a retry). Run beside the normal buyers, it shows what the sale's protections do:
//! the rate limit answers most of it 429 before any work, admission refuses the rest, and the
//! bot ends with at most one order per item, like everybody else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::http1::{Connection, Target};

#[derive(Debug, Clone)]
pub struct BotConfig {
    pub base: String,
    /// The bot's user id, and its bearer token (none: load-test mode, `user_id` in the body).
    pub user: u64,
    pub token: Option<String>,
    pub items: u64,
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BotResult {
    pub sent: u64,
    /// Answers by HTTP status (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// Request ids of its 202s.
    pub accepted: Vec<Uuid>,
    pub elapsed_s: f64,
}

impl BotResult {
    /// Adds another run's figures.
    pub fn merge(&mut self, other: BotResult) {
        self.sent += other.sent;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.accepted.extend(other.accepted);
        self.elapsed_s += other.elapsed_s;
    }

    /// Requests the rate limit let through (anything but a 429 or no answer).
    pub fn passed_the_limit(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s != 429 && **s != 0)
            .map(|(_, n)| n)
            .sum()
    }

    /// Orders the bot holds in the database, by status.
    pub async fn orders(&self, pool: &PgPool, user: u64) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status::text, count(*) FROM orders WHERE user_id = $1 GROUP BY status",
        )
        .bind(user as i64)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// Keep-alive connections the bot spreads its requests over: at most this many in flight.
const CONNECTIONS: usize = 64;

/// Fires until `duration` is over: `rate` requests per second over [`CONNECTIONS`] keep-alive
/// connections, one request per write and one answer read before the next on a connection, as
/// a script with a connection pool does. It writes HTTP/1.1 itself rather than through
/// `reqwest`: on this shared 2-core machine the bot's own client work (a task, a timer and a
/// client stack per request) is taken from the API it attacks, which a bot on another machine
/// would not do; what reaches the API (one request per packet, a token, a fresh key) is the
/// same.
pub async fn run(config: BotConfig) -> anyhow::Result<BotResult> {
    let start = Instant::now();
    let target = Target::parse(&config.base)?;
    // Every request due in `duration` is sent, also those a busy moment delayed.
    let total = (config.duration.as_secs_f64() * config.rate) as u64;
    let permits = Arc::new(Semaphore::new(0));
    // Keys unique to this run: a run after another is new buys, not retries of the old ones.
    let run = Uuid::new_v4().simple().to_string();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let config = Arc::new(config);
    let conns: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (permits, next, config, target, run) = (
                permits.clone(),
                next.clone(),
                config.clone(),
                target.clone(),
                run.clone(),
            );
            tokio::spawn(
                async move { connection(target, &config, &run, &permits, &next, total).await },
            )
        })
        .collect();
    // The pace: every millisecond, the requests due by then.
    let mut issued: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    loop {
        tick.tick().await;
        let elapsed = start.elapsed().min(config.duration);
        let due = ((elapsed.as_secs_f64() * config.rate) as u64).min(total);
        permits.add_permits((due - issued) as usize);
        issued = due;
        if issued == total {
            break;
        }
    }
    let mut out = BotResult::default();
    for c in conns {
        out.merge(c.await?);
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    Ok(out)
}

/// One connection's share of the bot's requests, until the pace stops.
async fn connection(
    target: Target,
    config: &BotConfig,
    run: &str,
    permits: &Semaphore,
    next: &std::sync::atomic::AtomicU64,
    total: u64,
) -> BotResult {
    let mut out = BotResult::default();
    let mut conn = Connection::new(target);
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= total {
            break;
        }
        // Request `i` is one of `total`: its permit comes, when it is due.
        let Ok(permit) = permits.acquire().await else {
            break;
        };
        permit.forget();
        let item = 1 + i % config.items.max(1);
        let mut headers = format!("Idempotency-Key: bot-{run}-{i}\r\n");
        let body = match &config.token {
            Some(t) => {
                headers.push_str(&format!("Authorization: Bearer {t}\r\n"));
                format!("{{\"item_id\":{item},\"qty\":1}}")
            }
            None => format!(
                "{{\"item_id\":{item},\"qty\":1,\"user_id\":{}}}",
                config.user
            ),
        };
        out.sent += 1;
        // No answer (0) when the connection failed; the next request opens a new one.
        let (status, body) = match conn.post_json("/buy", &headers, body.as_bytes()).await {
            Ok(a) => (a.status, a.body),
            Err(_) => (0, Vec::new()),
        };
        *out.statuses.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            out.accepted.extend(
                body["request_id"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_base_the_bot_cannot_speak_to_is_an_error_not_an_empty_run() {
        for base in ["https://127.0.0.1:8080", "not a url", "http://"] {
            let r = run(BotConfig {
                base: base.into(),
                user: 1,
                token: None,
                items: 1,
                rate: 10.0,
                duration: Duration::from_millis(10),
            })
            .await;
            assert!(r.is_err(), "{base}: {r:?}");
        }
    }
}
