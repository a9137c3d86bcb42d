//! The API's pending rows, written in groups: every `POST /infer` records its request before
//! enqueuing it, and one single-row transaction each held the API to the rate PostgreSQL commits
//! them one by one (~2.7k/s with 32 callers on a 2-core machine, `infer-bench`). Here the rows
//! that arrive while a write is in flight go together in the next one: one statement and one
//! commit for up to [`MAX_GROUP`] requests. A caller alone still waits for one commit only.
//!
//! Invariant: a caller is told [`Created::New`] only when its row was inserted by a committed
//! statement; every other outcome (a UUID that exists, a group the database refused, a writer
//! that is gone) goes through [`store::create_pending`] alone, so a bad row never fails the
//! others and the answers are those the single-row path gives.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::store::{self, Created};
use shared::messages::InferenceRequest;

/// Most rows in one statement.
pub const MAX_GROUP: usize = 1000;

/// One row waiting to be written, and where to say whether it was inserted.
struct Row {
    id: Uuid,
    model: Option<String>,
    input: String,
    deadline_secs: f64,
    inserted: oneshot::Sender<bool>,
}

/// The handle callers share; the writer task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct PendingRows {
    pool: PgPool,
    rows: mpsc::UnboundedSender<Row>,
}

impl PendingRows {
    /// Starts the writer on the current runtime.
    pub fn spawn(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_groups(pool.clone(), rx));
        PendingRows { pool, rows: tx }
    }

    /// Records a request the API is about to enqueue (see [`store::create_pending`]).
    pub async fn create(&self, req: &InferenceRequest) -> Result<Created, sqlx::Error> {
        let (tx, rx) = oneshot::channel();
        let row = Row {
            id: req.id,
            model: req.model.clone(),
            input: req.input.to_string(),
            deadline_secs: req.deadline_ms as f64 / 1000.0,
            inserted: tx,
        };
        if self.rows.send(row).is_ok() && rx.await == Ok(true) {
            return Ok(Created::New);
        }
        // Not inserted by the group: the UUID exists, or the group failed. Alone, the row gets
        // the single-row answer (and its own error, if it has one).
        store::create_pending(&self.pool, req).await
    }
}

/// Waits for a row, takes every other row already waiting (up to [`MAX_GROUP`]) and inserts
/// them in one statement; repeats until every handle is gone.
async fn write_groups(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Row>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let inserted = insert_group(&pool, &group).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, rows = group.len(), "group insert of pending rows failed; each is tried alone");
            Vec::new()
        });
        let mut inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
        for row in group.drain(..) {
            // A UUID twice in one group is inserted once: the first caller has it, the second
            // goes the single-row way and finds it (the same request, or a 409).
            let _ = row.inserted.send(inserted.remove(&row.id));
        }
    }
}

/// Inserts the rows whose UUID is free; returns the UUIDs inserted.
async fn insert_group(pool: &PgPool, group: &[Row]) -> Result<Vec<Uuid>, sqlx::Error> {
    let ids: Vec<Uuid> = group.iter().map(|r| r.id).collect();
    let models: Vec<Option<&str>> = group.iter().map(|r| r.model.as_deref()).collect();
    let inputs: Vec<&str> = group.iter().map(|r| r.input.as_str()).collect();
    let deadlines: Vec<f64> = group.iter().map(|r| r.deadline_secs).collect();
    sqlx::query_scalar(
        "INSERT INTO inference_requests (id, model, input, deadline) \
         SELECT i, m, x::jsonb, to_timestamp(d) \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::float8[]) AS t(i, m, x, d) \
         ON CONFLICT (id) DO NOTHING \
         RETURNING id",
    )
    .bind(&ids)
    .bind(&models)
    .bind(&inputs)
    .bind(&deadlines)
    .fetch_all(pool)
    .await
}
