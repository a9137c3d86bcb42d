//! The PostgreSQL pool and migrations (`migrations/` at the workspace root, embedded at build).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The workspace's migrations, compiled into every service.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects and applies pending migrations (idempotent; concurrent services serialise on
/// sqlx's migration lock).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
