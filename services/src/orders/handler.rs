//! The order worker's batch handler: drains buys into PostgreSQL.
//!
//! Per batch: the events that cannot be decoded go to the dead-letter topic; the rest are
//! applied in one transaction ([`super::apply_batch`]), retried with backoff on a database
//! error, never skipped. The generic worker ([`crate::worker`]) commits the offsets only after
//! that. Restarted at any point, the worker re-applies at most the last uncommitted batch, which
//! the transaction's request-id check turns into no-ops.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use rdkafka::message::{BorrowedMessage, Message};
use shared::messages::OrderEvent;
use sqlx::PgPool;
use std::sync::Arc;

use super::{apply_batch, Buy};
use crate::worker::{BatchHandler, HandlerError, WorkerContext};

/// What the order worker decided, for `/metrics` and the demo's progress line.
#[derive(Debug, Default)]
pub struct OrderStats {
    pub confirmed: Counter,
    pub rejected: Counter,
    pub already_applied: Counter,
}

#[derive(Debug)]
pub struct OrderHandler {
    pool: PgPool,
    stats: Arc<OrderStats>,
}

impl OrderHandler {
    pub fn new(pool: PgPool) -> Self {
        OrderHandler {
            pool,
            stats: Arc::default(),
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
    }

    async fn handle(
        &mut self,
        batch: &[BorrowedMessage<'_>],
        ctx: &WorkerContext,
    ) -> Result<(), HandlerError> {
        let mut buys = Vec::with_capacity(batch.len());
        for m in batch {
            match m.payload().map(OrderEvent::decode) {
                Some(Ok(e)) => buys.push(Buy {
                    request_id: e.request_id,
                    user_id: e.user_id,
                    item_id: e.item_id,
                    qty: e.qty,
                    accepted_at_ms: e.accepted_at_ms,
                    partition: m.partition(),
                    offset: m.offset(),
                }),
                Some(Err(e)) => ctx.dead_letter(m, &e.to_string()).await?,
                None => ctx.dead_letter(m, "empty message").await?,
            }
        }
        let pool = &self.pool;
        let s = ctx
            .retry_db("apply a batch of orders", || apply_batch(pool, &buys))
            .await?;
        self.stats.confirmed.inc_by(s.confirmed);
        self.stats
            .rejected
            .inc_by(s.sold_out + s.duplicate + s.invalid);
        self.stats.already_applied.inc_by(s.already_applied);
        tracing::debug!(events = batch.len(), ?s, "batch applied");
        Ok(())
    }
}
