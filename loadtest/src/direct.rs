//! The demo's `--direct` comparison: the same `/buy`, but without the queue: each order is
//! written to PostgreSQL in its own transaction before the answer (lock the item row, check the
//! user's earlier order, insert, decrement). This is what the peak hits when nothing shaves it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use services::api::auth::TokenKeys;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug)]
struct Direct {
    pool: PgPool,
    keys: TokenKeys,
}

#[derive(Debug, Deserialize)]
struct Buy {
    item_id: i64,
    #[serde(default = "one")]
    qty: i32,
}

fn one() -> i32 {
    1
}

pub fn app(pool: PgPool, secret: &str) -> Router {
    Router::new()
        .route("/buy", post(buy))
        .with_state(Arc::new(Direct {
            pool,
            keys: TokenKeys::new(secret.as_bytes()),
        }))
}

async fn buy(
    State(s): State<Arc<Direct>>,
    headers: HeaderMap,
    Json(b): Json<Buy>,
) -> (StatusCode, Json<Value>) {
    let user = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| s.keys.verify(t));
    let Some(user) = user else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    };
    match write_order(&s.pool, user, b.item_id, b.qty).await {
        Ok(Some((id, status))) => (
            StatusCode::CREATED,
            Json(json!({"request_id": id, "status": status})),
        ),
        Ok(None) => (StatusCode::GONE, Json(json!({"error": "sold_out"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "database", "detail": e.to_string()})),
        ),
    }
}

/// One transaction per buy. `None`: sold out (nothing written).
async fn write_order(
    pool: &PgPool,
    user: i64,
    item: i64,
    qty: i32,
) -> Result<Option<(Uuid, &'static str)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let stock: Option<i32> = sqlx::query_scalar("SELECT stock FROM items WHERE id = $1 FOR UPDATE")
        .bind(item)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(stock) = stock.filter(|s| *s >= qty) else {
        return Ok(None);
    };
    let dup: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE user_id = $1 AND item_id = $2 AND status = 'confirmed')",
    )
    .bind(user)
    .bind(item)
    .fetch_one(&mut *tx)
    .await?;
    let status = if dup {
        "rejected_duplicate"
    } else {
        "confirmed"
    };
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO orders (request_id, user_id, item_id, qty, status, accepted_at, source_partition, source_offset) \
         VALUES ($1, $2, $3, $4, $5::order_status, now(), -1, -1)",
    )
    .bind(id)
    .bind(user)
    .bind(item)
    .bind(qty)
    .bind(status)
    .execute(&mut *tx)
    .await?;
    if !dup {
        sqlx::query("UPDATE items SET stock = $2 WHERE id = $1")
            .bind(item)
            .bind(stock - qty)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some((id, status)))
}
