//! A throwaway PostgreSQL database for a perf run: created (and migrated) through an admin
//! connection, dropped at the end.

use anyhow::Context;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// A throwaway database, migrated.
#[derive(Debug)]
pub struct BenchDb {
    admin: String,
    name: String,
    /// Where to reach this database (for processes started against it).
    pub url: String,
    pub pool: PgPool,
}

impl BenchDb {
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("seckill_bench_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin)
            .await
            .with_context(|| format!("connect to {admin}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let url = format!(
            "{}/{name}",
            admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin)
        );
        let pool = services::db::connect(&url, 8).await?;
        Ok(BenchDb {
            admin: admin.to_string(),
            name,
            url,
            pool,
        })
    }

    pub async fn drop_db(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut conn = PgConnection::connect(&self.admin).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}
