//! `GET /items`, `GET /items/{id}`: what is on sale, when it opens and closes, and how much is
//! left, with the server's clock so a countdown on the client does not trust the client's clock.
//! `GET /items/{id}/token`: a purchase token for the signed-in user, handed out only while the
//! sale is open (see `purchase_token.rs`): a buyer of an item that requires one must have come
//! through here after the opening, not just fired `/buy` at the opening second.
//!
//! The figures come from the admission view, refreshed from the database a few times a second;
//! no request reads the database.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::api::admission::{SaleItem, Window};
use crate::api::auth::MaybeUser;
use crate::api::error::ApiError;
use crate::api::limits::ClientAddr;
use crate::api::AppState;

/// Where the sale of an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    Upcoming,
    Open,
    /// Open, but the queue already claims every unit.
    SoldOut,
    Ended,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ItemView {
    pub id: i64,
    pub name: String,
    pub initial_stock: i64,
    /// Units the database still has (the workers' view).
    pub stock_left: i64,
    /// Units the API still admits: stock left minus what the queue already claims.
    pub available: i64,
    pub sale_start_ms: Option<i64>,
    pub sale_end_ms: Option<i64>,
    pub require_token: bool,
    pub status: SaleStatus,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Items {
    /// This server's clock (ms since the epoch), to count down against.
    pub server_time_ms: i64,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ItemAnswer {
    pub server_time_ms: i64,
    #[serde(flatten)]
    pub item: ItemView,
}

fn view(item: SaleItem, stock_left: i64, available: i64, now_ms: i64) -> ItemView {
    let status = match item.window(now_ms) {
        Window::NotYet(_) => SaleStatus::Upcoming,
        Window::Ended(_) => SaleStatus::Ended,
        Window::Open if available == 0 => SaleStatus::SoldOut,
        Window::Open => SaleStatus::Open,
    };
    ItemView {
        id: item.id,
        name: item.name,
        initial_stock: item.initial_stock,
        stock_left,
        available,
        sale_start_ms: item.sale_start_ms,
        sale_end_ms: item.sale_end_ms,
        require_token: item.require_token,
        status,
    }
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Items> {
    let now = shared::time::now_ms();
    Json(Items {
        server_time_ms: now,
        items: state
            .admission
            .items()
            .into_iter()
            .map(|(item, left, available)| view(item, left, available, now))
            .collect(),
    })
}

pub async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<ItemAnswer>, ApiError> {
    let now = shared::time::now_ms();
    let (item, left, available) = state
        .admission
        .items()
        .into_iter()
        .find(|(i, _, _)| i.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no item {id} is on sale")))?;
    Ok(Json(ItemAnswer {
        server_time_ms: now,
        item: view(item, left, available, now),
    }))
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// Only in load-test mode, and only without a bearer token (as on `/buy`).
    pub user_id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PurchaseToken {
    pub item_id: i64,
    pub purchase_token: String,
    pub expires_at_ms: i64,
}

/// A purchase token for the caller and item `id`, while its sale is open. Counts against the
/// caller's rate limits like a buy: a script cannot mint its way around them.
pub async fn token(
    State(state): State<Arc<AppState>>,
    MaybeUser(token_user): MaybeUser,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<PurchaseToken>, ApiError> {
    let user = super::buy::buyer(&state, token_user, query.user_id)?;
    super::buy::within_limits(&state, user, address)?;
    let item = state
        .admission
        .terms(id)
        .ok_or_else(|| ApiError::NotFound(format!("no item {id} is on sale")))?;
    let now = shared::time::now_ms();
    super::buy::sale_open(&item, now)?;
    let expires_at_ms = now + state.config.purchase_token_ttl.as_millis() as i64;
    Ok(Json(PurchaseToken {
        item_id: id,
        purchase_token: state.purchase_tokens.mint(user, id, expires_at_ms),
        expires_at_ms,
    }))
}
