//! Checks a run's promises against the database: what the clients were told (every request,
//! with its final answer) on one side, the `orders` and `items` tables on the other. Used by the
//! chaos command and by `loadgen verify` after any load run.
//!
//! The promises:
//! - every request that got a 202 is exactly one order;
//! - no order exists that no client asked for, and a request is at most one order however
//!   often it was retried;
//! - an order exists only for a request that may have been queued: answered 202, or 503
//!   `outcome_unknown`, or cut off, on some attempt. One answered only 410, 409, 429, another 4xx
//!   or 503 `not_accepted` ("certainly nothing was queued") must never become an order;
//! - confirmed units = units sold (stock went down by exactly what was confirmed);
//! - stock is never negative;
//! - at most one confirmed order per user and item;
//! - the counts the worker keeps (`order_counts`, the dashboard's) equal the orders.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// What a client learned about one request in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Final {
    /// 202: the API says it is queued.
    Accepted,
    /// 410: refused (sold out, or every unit claimed by queued orders).
    Refused,
    /// Never a definite answer (only 503s and broken connections until the client gave up).
    Unresolved,
    /// Another answer (4xx, 5xx other than 503).
    Error,
}

/// One request as the client saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request id the API named (in a 202 or a 503); `None` if it never answered.
    pub request_id: Option<Uuid>,
    pub status: u16,
    #[serde(rename = "final")]
    pub outcome: Final,
    pub attempts: u32,
    /// 503s seen on the way (not_accepted or outcome_unknown).
    pub unavailable: u32,
    pub latency_ms: f64,
    /// Some attempt was answered 202 or 503 `outcome_unknown`, or got no answer: an order may
    /// exist. Otherwise every answer said nothing was queued, and an order is a broken promise.
    pub could_be_queued: bool,
}

/// The verdict, with the figures behind it.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Verdict {
    pub requests: usize,
    pub accepted: usize,
    pub refused: usize,
    pub unresolved: usize,
    pub errors: usize,
    pub retried: usize,
    /// Requests that saw a 503 on the way and are orders in the end.
    pub retried_that_became_orders: i64,
    pub orders: i64,
    pub accepted_with_an_order: i64,
    /// Orders whose request id no client record names (must be 0).
    pub orders_nobody_asked_for: i64,
    /// Orders of requests every answer to which said nothing was queued (must be 0).
    pub orders_told_not_queued: i64,
    pub confirmed: i64,
    pub confirmed_units: i64,
    pub units_sold: i64,
    pub min_stock: i64,
    /// (user, item) pairs with more than one confirmed order (must be 0).
    pub double_confirmed: i64,
    /// (item, status) pairs whose kept count (`order_counts`, what the dashboard shows) differs
    /// from a count over `orders` (must be 0).
    pub miscounted: i64,
    pub ok: bool,
    pub failures: Vec<String>,
}

/// Checks `records` against the database. With `records` empty (a k6 or oha run, which keeps no
/// request ids) only the database-side promises are checked.
pub async fn verify(pool: &PgPool, records: &[RequestRecord]) -> anyhow::Result<Verdict> {
    let mut v = Verdict {
        requests: records.len(),
        ..Verdict::default()
    };
    for r in records {
        match r.outcome {
            Final::Accepted => v.accepted += 1,
            Final::Refused => v.refused += 1,
            Final::Unresolved => v.unresolved += 1,
            Final::Error => v.errors += 1,
        }
        if r.unavailable > 0 {
            v.retried += 1;
        }
    }
    let accepted: Vec<Uuid> = records
        .iter()
        .filter(|r| r.outcome == Final::Accepted)
        .filter_map(|r| r.request_id)
        .collect();
    let known: Vec<Uuid> = records
        .iter()
        .filter_map(|r| r.request_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // By id, not by record: a refusal may name another request (a keyless buy's 409 names the
    // buyer's first buy), which another record shows accepted.
    let may_be_queued: HashSet<Uuid> = records
        .iter()
        .filter(|r| r.could_be_queued)
        .filter_map(|r| r.request_id)
        .collect();
    let told_not_queued: Vec<Uuid> = records
        .iter()
        .filter_map(|r| r.request_id)
        .filter(|id| !may_be_queued.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let retried: Vec<Uuid> = records
        .iter()
        .filter(|r| r.unavailable > 0)
        .filter_map(|r| r.request_id)
        .collect();
    v.orders = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(pool)
        .await?;
    v.accepted_with_an_order =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
            .bind(&accepted)
            .fetch_one(pool)
            .await?;
    v.retried_that_became_orders =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
            .bind(&retried)
            .fetch_one(pool)
            .await?;
    if !records.is_empty() {
        v.orders_nobody_asked_for =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE NOT (request_id = ANY($1))")
                .bind(&known)
                .fetch_one(pool)
                .await?;
    }
    v.orders_told_not_queued =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE request_id = ANY($1)")
            .bind(&told_not_queued)
            .fetch_one(pool)
            .await?;
    let (confirmed, confirmed_units): (i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(sum(qty), 0)::bigint FROM orders WHERE status = 'confirmed'",
    )
    .fetch_one(pool)
    .await?;
    v.confirmed = confirmed;
    v.confirmed_units = confirmed_units;
    let (sold, min_stock): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(initial_stock - stock), 0)::bigint, COALESCE(min(stock), 0)::bigint \
         FROM items",
    )
    .fetch_one(pool)
    .await?;
    v.units_sold = sold;
    v.min_stock = min_stock;
    v.double_confirmed = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT user_id, item_id FROM orders WHERE status = 'confirmed' \
         GROUP BY user_id, item_id HAVING count(*) > 1) d",
    )
    .fetch_one(pool)
    .await?;

    v.miscounted = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT item_id, status, count(*) AS n FROM orders \
             GROUP BY item_id, status) o \
         FULL JOIN (SELECT * FROM order_counts WHERE n > 0) c USING (item_id, status) \
         WHERE o.n IS DISTINCT FROM c.n",
    )
    .fetch_one(pool)
    .await?;

    let mut fail = |ok: bool, what: String| {
        if !ok {
            v.failures.push(what);
        }
    };
    fail(
        v.accepted_with_an_order == accepted.len() as i64,
        format!(
            "{} of {} accepted requests have an order",
            v.accepted_with_an_order,
            accepted.len()
        ),
    );
    fail(
        v.orders_nobody_asked_for == 0,
        format!("{} orders no client asked for", v.orders_nobody_asked_for),
    );
    fail(
        v.orders_told_not_queued == 0,
        format!(
            "{} orders of requests whose every answer said nothing was queued (410/409/429/4xx/not_accepted)",
            v.orders_told_not_queued
        ),
    );
    fail(
        v.confirmed_units == v.units_sold,
        format!(
            "confirmed units {} != units sold {}",
            v.confirmed_units, v.units_sold
        ),
    );
    fail(v.min_stock >= 0, format!("stock went to {}", v.min_stock));
    fail(
        v.double_confirmed == 0,
        format!(
            "{} users hold two confirmed orders of one item",
            v.double_confirmed
        ),
    );
    fail(
        v.miscounted == 0,
        format!(
            "{} (item, status) counts in order_counts differ from the orders",
            v.miscounted
        ),
    );
    v.ok = v.failures.is_empty();
    Ok(v)
}
