//! `migrate`: applies the workspace's migrations and exits. The services also migrate at start
//! (serialised by sqlx's lock); this binary lets a deployment do it once, before they start.

use anyhow::Context;
use clap::Parser;
use services::db;

#[derive(Debug, Parser)]
#[command(about = "Apply the seckill database migrations, then exit")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    let args = Args::parse();
    let pool = db::connect(&args.database_url, 1)
        .await
        .context("connect to PostgreSQL and migrate")?;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await?;
    tracing::info!(applied, "migrations up to date");
    Ok(())
}
