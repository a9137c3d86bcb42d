//! The dashboard's data: one [`Tick`], sent as the JSON of a server-sent event named `tick`
//! every half second on `/dashboard/events`. This is the contract `dashboard.js` reads; any
//! field may be `null` when its source did not answer in time (the broker or the database is
//! away), and the page shows "–" for it.
//!
//! ```text
//! { "t": 1795940785771,                       // server time, ms since the epoch
//!   "rates":  {"202": 812.0, "409": 3.9, "410": 0.0, "429": 0.0, "4xx": 0.0, "503": 0.0, "5xx": 0.0},
//!   "totals": {"202": 40211, ...},             // this instance's /buy answers since start
//!   "enqueue_ms": {"p50": 2.1, "p99": 6.4},    // this tick's 202s; null when there were none
//!   "backlog": 1834,                           // buys in the queue the order workers have not committed
//!   "drain_per_s": 2000.0,                     // orders written per second, from the database
//!   "orders": {"confirmed": 5000, "rejected_sold_out": 12, "rejected_duplicate": 3, "rejected_invalid": 0},
//!   "items": [{"id": 1, "name": "...", "initial": 1000, "stock": 12, "available": 0,
//!              "confirmed": 988, "rejected": 4}],
//!   "latest": [{"request_id": "...", "user_id": 7, "item_id": 1, "qty": 1,
//!               "status": "confirmed", "processed_at": 1795940785700}],   // newest first, ≤ 20
//!   "workers": {"alive": 2, "members": ["order-worker@10.0.0.5", ...]},
//!   "limits": {"rate_limited": 17, "per_user": "5/10", "per_address": "1000/2000", "global": null} }
//! ```
//!
//! Rates, totals and latencies are this API instance's (the page says which instance it is
//! watching); the orders, stock, backlog and workers are the whole sale's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tick {
    pub t: i64,
    pub rates: BTreeMap<&'static str, f64>,
    pub totals: BTreeMap<&'static str, u64>,
    pub enqueue_ms: Option<Latency>,
    pub backlog: Option<i64>,
    pub drain_per_s: Option<f64>,
    pub orders: Option<BTreeMap<String, i64>>,
    pub items: Option<Vec<ItemLine>>,
    pub latest: Option<Vec<LatestOrder>>,
    pub workers: Option<Workers>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemLine {
    pub id: i64,
    pub name: String,
    pub initial: i64,
    /// Units the database has left.
    pub stock: i64,
    /// Units this instance still admits (stock minus what the queue claims); null if this
    /// instance has not seen the item yet.
    pub available: Option<i64>,
    pub confirmed: i64,
    pub rejected: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatestOrder {
    pub request_id: Uuid,
    pub user_id: i64,
    pub item_id: i64,
    pub qty: i64,
    pub status: String,
    /// ms since the epoch.
    pub processed_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workers {
    pub alive: usize,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Limits {
    /// 429s this instance answered since start.
    pub rate_limited: u64,
    /// The limits in force, as RATE/BURST; null: off.
    pub per_user: Option<String>,
    pub per_address: Option<String>,
    pub global: Option<String>,
}
