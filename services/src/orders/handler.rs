//! The order worker's batch handler: drains buys into PostgreSQL.
//!
//! Per batch: the events that cannot be decoded go to the dead-letter topic; each of the rest
//! has its signature checked ([`super::signature`]: a buy of a token-required item without the
//! API's signature is rejected as invalid, never confirmed); they are
//! applied in one transaction ([`super::apply_batch`]), retried with backoff on a transient
//! database error, never skipped. An event the database refuses for its data is isolated by
//! splitting the batch and dead-lettered with the reason. The generic worker ([`crate::worker`]) commits the offsets only after
//! that. Restarted at any point, the worker re-applies at most the last uncommitted batch, which
//! the transaction's request-id check turns into no-ops.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rdkafka::message::{BorrowedMessage, Message};
use shared::messages::OrderEvent;
use sqlx::PgPool;
use std::sync::Arc;

use super::signature::{EventSigner, HEADER};
use super::{apply_batch, Buy, Invalid};
use crate::worker::{BatchHandler, DbFailure, HandlerError, PendingAcks, WorkerContext};
use rdkafka::message::Headers;

/// What the order worker decided, for `/metrics` and the demo's progress line.
#[derive(Debug, Default)]
pub struct OrderStats {
    pub confirmed: Counter,
    pub rejected: Counter,
    pub already_applied: Counter,
    /// Buys rejected as invalid, by reason (`Invalid::as_str`).
    pub invalid: Family<ReasonLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug)]
pub struct OrderHandler {
    pool: PgPool,
    stats: Arc<OrderStats>,
    /// The API's signing key, read from the database with the first batch.
    signer: Option<EventSigner>,
}

impl OrderHandler {
    pub fn new(pool: PgPool) -> Self {
        let stats = OrderStats::default();
        for why in Invalid::ALL {
            // Present at 0 from the start, so a dashboard or alert sees the series.
            let _ = stats.invalid.get_or_create(&ReasonLabel {
                reason: why.as_str(),
            });
        }
        OrderHandler {
            pool,
            stats: Arc::new(stats),
            signer: None,
        }
    }

    pub fn stats(&self) -> Arc<OrderStats> {
        self.stats.clone()
    }
}

impl BatchHandler for OrderHandler {
    const METRICS_PREFIX: &'static str = "order_worker";

    fn database(&self) -> Option<PgPool> {
        Some(self.pool.clone())
    }

    fn register_metrics(&self, r: &mut Registry) {
        let s = &self.stats;
        r.register("confirmed", "Orders confirmed", s.confirmed.clone());
        r.register(
            "rejected",
            "Orders rejected (sold out, duplicate, invalid)",
            s.rejected.clone(),
        );
        r.register(
            "already_applied",
            "Redelivered events whose order already existed",
            s.already_applied.clone(),
        );
        r.register(
            "rejected_invalid",
            "Buys rejected because the API could not have admitted them, by reason",
            s.invalid.clone(),
        );
    }

    async fn handle(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        ctx: &WorkerContext,
    ) -> Result<PendingAcks, HandlerError> {
        if self.signer.is_none() {
            let pool = &self.pool;
            match ctx
                .retry_db("read the event signing key", || EventSigner::load(pool))
                .await
            {
                Ok(s) => self.signer = Some(s),
                Err(DbFailure::Permanent(e)) => {
                    return Err(DbFailure::Permanent(e).into());
                }
                Err(stopped @ DbFailure::Stopped) => return Err(stopped.into()),
            }
        }
        let signer = self.signer.as_ref();
        // Each buy with the message it came from, for the dead-letter topic.
        let mut buys: Vec<(Buy, &BorrowedMessage<'_>)> = Vec::with_capacity(batch.len());
        for m in batch {
            match m.payload().map(OrderEvent::decode) {
                Some(Ok(e)) => buys.push((
                    Buy {
                        signed: signed(signer, &e, m),
                        request_id: e.request_id,
                        user_id: e.user_id,
                        item_id: e.item_id,
                        qty: e.qty,
                        accepted_at_ms: e.accepted_at_ms,
                        partition: m.partition(),
                        offset: m.offset(),
                    },
                    m,
                )),
                Some(Err(e)) => ctx.dead_letter(m, &e.to_string()).await?,
                None => ctx.dead_letter(m, "empty message").await?,
            }
        }
        // Runs of the batch to apply, in queue order. A run the database refuses for its data
        // is split in halves until the offending buy stands alone; that one is dead-lettered
        // with the database's reason and the others are applied, so one bad event never stops
        // the partition.
        let mut runs = std::collections::VecDeque::new();
        if !crate::failpoints::fires(crate::failpoints::COMMIT_WITHOUT_APPLY) {
            runs.push_back(0..buys.len());
        }
        while let Some(run) = runs.pop_front() {
            if run.is_empty() {
                continue;
            }
            let slice: Vec<Buy> = buys[run.clone()].iter().map(|(b, _)| b.clone()).collect();
            let pool = &self.pool;
            match ctx
                .retry_db("apply a batch of orders", || apply_batch(pool, &slice))
                .await
            {
                Ok(s) => {
                    self.stats.confirmed.inc_by(s.confirmed);
                    self.stats
                        .rejected
                        .inc_by(s.sold_out + s.duplicate + s.invalid);
                    self.stats.already_applied.inc_by(s.already_applied);
                    for (why, n) in &s.invalid_because {
                        self.stats
                            .invalid
                            .get_or_create(&ReasonLabel {
                                reason: why.as_str(),
                            })
                            .inc_by(*n);
                    }
                    tracing::debug!(events = slice.len(), ?s, "batch applied");
                }
                Err(DbFailure::Permanent(e)) if run.len() == 1 => {
                    let reason = format!("refused by the database: {e}");
                    ctx.dead_letter(buys[run.start].1, &reason).await?;
                }
                Err(DbFailure::Permanent(_)) => {
                    let mid = run.start + run.len() / 2;
                    runs.push_front(mid..run.end);
                    runs.push_front(run.start..mid);
                }
                Err(stopped @ DbFailure::Stopped) => return Err(stopped.into()),
            }
        }
        // Every effect is in the database, committed.
        Ok(PendingAcks::none())
    }
}

/// Whether `m` carries the API's valid signature for `e`.
fn signed(signer: Option<&EventSigner>, e: &OrderEvent, m: &BorrowedMessage<'_>) -> bool {
    let (Some(signer), Some(headers)) = (signer, m.headers()) else {
        return false;
    };
    headers
        .iter()
        .find(|h| h.key == HEADER)
        .and_then(|h| h.value)
        .is_some_and(|sig| signer.verify(e, sig))
}
