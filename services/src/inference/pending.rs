//! The API's pending rows, written in groups: every `POST /infer` records its request before
//! enqueuing it, and one single-row transaction each held the API to the rate PostgreSQL commits
//! them one by one (~2.7k/s with 32 callers on a 2-core machine, `infer-bench`). Here the rows
//! that arrive while a write is in flight go together in the next one: one statement and one
//! commit for up to [`MAX_GROUP`] requests. A caller alone still waits for one commit only.
//!
//! Invariants:
//! - a caller is told [`Created::New`] only when its row was inserted by a committed statement;
//! - a UUID that exists, a group the database refused (an error from the server: nothing of it
//!   was committed) or a writer that was gone before it took the row sends each row through
//!   [`store::create_pending`] alone, so a bad row never fails the others and the answers are
//!   those of the single-row path;
//! - a group whose outcome is unknown (the connection broke after the statement was sent, or
//!   the writer stopped while it was out: it may have committed) is an error for each of its
//!   callers, as a single-row insert would be.
//!   Trying those rows again would find them and take them for existing requests that were
//!   never enqueued.

use std::collections::HashSet;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::store::{self, Created};
use shared::messages::InferenceRequest;

/// Most rows in one statement.
pub const MAX_GROUP: usize = 1000;
/// Most input bytes in one statement (a body may hold 256 KiB; a thousand of them would be a
/// quarter-gigabyte parameter).
pub const MAX_GROUP_BYTES: usize = 4 << 20;

/// What became of a row in its group.
#[derive(Debug)]
enum Outcome {
    Inserted,
    /// Not inserted, and certainly not: the UUID exists, or the server refused the group.
    NotInserted,
    /// The group may or may not have been committed.
    Unknown(String),
}

/// One row waiting to be written, and where to say what became of it.
struct Row {
    id: Uuid,
    model: Option<String>,
    input: String,
    deadline_secs: f64,
    outcome: oneshot::Sender<Outcome>,
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
            outcome: tx,
        };
        let outcome = match self.rows.send(row) {
            // The writer had the row and ended without a word (its runtime stopped while a
            // statement was out): the row may be in a committed statement, so this is not "not
            // inserted"; going the single-row way would find the row and take it for an
            // existing request that was never enqueued.
            Ok(()) => rx.await.unwrap_or_else(|_| {
                Outcome::Unknown("the group writer stopped before it answered".into())
            }),
            // The writer is gone and never saw the row.
            Err(_) => Outcome::NotInserted,
        };
        match outcome {
            Outcome::Inserted => Ok(Created::New),
            Outcome::Unknown(why) => Err(sqlx::Error::Io(std::io::Error::other(format!(
                "the pending row's insert may or may not have been committed: {why}"
            )))),
            // Alone, the row gets the single-row answer (and its own error, if it has one).
            Outcome::NotInserted => store::create_pending(&self.pool, req).await,
        }
    }
}

/// Waits for a row, takes the other rows already waiting (up to [`MAX_GROUP`] rows and
/// [`MAX_GROUP_BYTES`] of input) and inserts them in one statement; repeats until every handle
/// is gone.
async fn write_groups(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Row>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        let mut bytes = first.input.len();
        group.push(first);
        while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(row) => {
                    bytes += row.input.len();
                    group.push(row);
                }
                Err(_) => break,
            }
        }
        match insert_group(&pool, &group).await {
            Ok(inserted) => {
                let mut inserted: HashSet<Uuid> = inserted.into_iter().collect();
                for row in group.drain(..) {
                    // A UUID twice in one group is inserted once: the first caller has it, the
                    // second goes the single-row way and finds it (the same request, or a 409).
                    let outcome = if inserted.remove(&row.id) {
                        Outcome::Inserted
                    } else {
                        Outcome::NotInserted
                    };
                    let _ = row.outcome.send(outcome);
                }
            }
            Err(e) => {
                // An error the server answered, or a connection never had: nothing was
                // committed. Anything else may have been.
                let certain = e.as_database_error().is_some()
                    || matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed);
                tracing::warn!(error = %e, rows = group.len(), certain, "group insert of pending rows failed");
                for row in group.drain(..) {
                    let outcome = if certain {
                        Outcome::NotInserted
                    } else {
                        Outcome::Unknown(e.to_string())
                    };
                    let _ = row.outcome.send(outcome);
                }
            }
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
