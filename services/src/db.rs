//! The PostgreSQL pool and migrations (`migrations/` at the workspace root, embedded at build).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The workspace's migrations, compiled into every service.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects and applies pending migrations (idempotent; concurrent services serialise on
/// sqlx's migration lock).
///
/// Every connection plans each statement with its actual parameters
/// (`plan_cache_mode = force_custom_plan`). sqlx prepares statements once per connection, and
/// PostgreSQL switches a prepared statement to a generic plan after five runs; a plan made while
/// `orders` was empty (the start of every sale) is a sequential scan that it then keeps while the
/// table grows to millions of rows: the order worker's batch lookups went from 4 ms to over a
/// second. Planning a batch's three lookups costs well under a millisecond.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options =
        PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
