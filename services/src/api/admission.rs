//! Admission: the API stops accepting an item soon after its stock is claimed, counting what the
//! queue already holds for it, not only what the database has confirmed.
//!
//! An item's budget is `stock left in the database - units queued by this instance - units
//! queued by the other instances`. A buy reserves its units before it is enqueued (so
//! concurrent buys cannot both take the last unit), keeps them once the broker acknowledged it
//! (remembering its partition and offset), and gives them back if it was not queued.
//!
//! Every refresh (250 ms by default):
//! 1. the order workers' committed offsets are read: a queued buy below its partition's committed
//!    offset has been decided, and its units leave this instance's count;
//! 2. then, in one statement, this instance publishes its queued units per item and reads each
//!    item's stock and the other instances' queued units.
//!
//! A buyer's second buy of an item through this instance is refused at once (the worker would
//! reject it as a duplicate, and meanwhile it would hold units other buyers could have): the
//! instance remembers which request of each (user, item) it admitted. A retry of that same
//! request (same Idempotency-Key, so the same request id) is not a duplicate: it is enqueued
//! again, holds no units, and the worker applies the id once.
//!
//! The order matters: a worker commits offsets only after the transaction that decided those
//! buys, so everything below a committed offset read in step 1 is already in the stock read in
//! step 2. A buy decided but not yet committed is counted twice for one refresh: the error is
//! on the safe side (the API refuses a little early, never oversubscribes the queue), and a unit
//! freed by an order that ended rejected (duplicate, invalid) is offered again at the next
//! refresh.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use uuid::Uuid;

/// A row of the other instances older than this belongs to an instance that stopped.
const PEER_STALE_AFTER: Duration = Duration::from_secs(5);

/// Why a buy was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownItem,
    /// The database has no stock left.
    SoldOut,
    /// Stock is left, but queued buys claim all of it (some may come back if they fail).
    Claimed,
    /// This buyer already has another buy of this item admitted (its request id).
    Duplicate(Uuid),
}

/// (user, item) pairs remembered for duplicate refusal, at most: past it, duplicates are left
/// to the worker (which rejects them) rather than grow memory without bound.
const MAX_REMEMBERED_BUYERS: usize = 1_000_000;

#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    stock_left: i64,
    peers_queued: i64,
}

#[derive(Debug, Default)]
struct State {
    /// Items on sale, from the last refresh.
    items: HashMap<i64, Budget>,
    /// Units this instance reserved or queued, per item, not decided yet.
    mine: HashMap<i64, i64>,
    /// Queued buys of this instance: (partition, offset) -> (item, units).
    queued: BTreeMap<(i32, i64), (i64, i64)>,
    /// Items this instance has published a nonzero count for (so a zero is published too).
    published: HashSet<i64>,
    /// The request this instance admitted for each (user, item).
    admitted: HashMap<(i64, i64), Uuid>,
    refreshed: bool,
}

/// This instance's view of the sale's budgets.
pub struct Admission {
    instance: Uuid,
    topic: String,
    state: Mutex<State>,
    offsets: Arc<BaseConsumer>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// `worker_group` is the order workers' consumer group, whose committed offsets on `topic`
    /// say which queued buys are decided.
    pub fn new(bootstrap: &str, topic: &str, worker_group: &str) -> Result<Self, KafkaError> {
        let offsets: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Reads the group's committed offsets; never joins it, never commits.
            .set("group.id", worker_group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Admission {
            instance: Uuid::new_v4(),
            topic: topic.into(),
            state: Mutex::new(State::default()),
            offsets: Arc::new(offsets),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `units` of `item` for `user`'s buy `request`, about to be enqueued.
    pub fn reserve(
        &self,
        user: i64,
        item: i64,
        units: i64,
        request: Uuid,
    ) -> Result<Reservation<'_>, Refusal> {
        let mut st = self.lock();
        let Some(&budget) = st.items.get(&item) else {
            return Err(Refusal::UnknownItem);
        };
        match st.admitted.get(&(user, item)) {
            // The same request again (a retry): it holds no second set of units.
            Some(&earlier) if earlier == request => {
                return Ok(Reservation {
                    admission: self,
                    item,
                    units: 0,
                    admit: None,
                    done: false,
                })
            }
            Some(&earlier) => return Err(Refusal::Duplicate(earlier)),
            None => {}
        }
        let mine = st.mine.entry(item).or_insert(0);
        if budget.stock_left <= 0 {
            return Err(Refusal::SoldOut);
        }
        if budget.stock_left - budget.peers_queued - *mine < units {
            return Err(Refusal::Claimed);
        }
        *mine += units;
        Ok(Reservation {
            admission: self,
            item,
            units,
            admit: Some((user, request)),
            done: false,
        })
    }

    /// Whether the first refresh happened (before it, every item is unknown).
    pub fn is_ready(&self) -> bool {
        self.lock().refreshed
    }

    /// Units left to admit per item, as this instance sees them (for `/items` and the
    /// dashboard).
    pub fn available(&self) -> Vec<(i64, i64)> {
        let st = self.lock();
        let mut v: Vec<(i64, i64)> = st
            .items
            .iter()
            .map(|(&id, b)| {
                let mine = st.mine.get(&id).copied().unwrap_or(0);
                (id, (b.stock_left - b.peers_queued - mine).max(0))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Units queued by this instance and not decided yet.
    pub fn queued_units(&self) -> i64 {
        self.lock().queued.values().map(|&(_, u)| u).sum()
    }

    /// One refresh (see the module doc). Errors leave the previous view in place.
    pub async fn refresh(&self, pool: &PgPool) -> Result<(), RefreshError> {
        self.forget_decided().await?;
        let (items, units): (Vec<i64>, Vec<i64>) = {
            let st = self.lock();
            let mut publish: Vec<(i64, i64)> = st
                .mine
                .iter()
                .filter(|(id, &u)| u > 0 || st.published.contains(id))
                .map(|(&id, &u)| (id, u))
                .collect();
            publish.sort_unstable();
            publish.into_iter().unzip()
        };
        let rows: Vec<(i64, i32, i64)> = sqlx::query_as(
            "WITH published AS ( \
                 INSERT INTO api_admission AS a (instance_id, item_id, units, updated_at) \
                 SELECT $1, i, u, now() FROM UNNEST($2::bigint[], $3::bigint[]) AS t(i, u) \
                 ON CONFLICT (instance_id, item_id) \
                 DO UPDATE SET units = EXCLUDED.units, updated_at = now() \
             ) \
             SELECT i.id, i.stock, COALESCE(( \
                 SELECT sum(a.units) FROM api_admission a \
                 WHERE a.item_id = i.id AND a.instance_id <> $1 \
                   AND a.updated_at > now() - make_interval(secs => $4)), 0)::bigint \
             FROM items i",
        )
        .bind(self.instance)
        .bind(&items)
        .bind(&units)
        .bind(PEER_STALE_AFTER.as_secs_f64())
        .fetch_all(pool)
        .await?;
        let mut st = self.lock();
        for (id, u) in items.iter().zip(&units) {
            if *u > 0 {
                st.published.insert(*id);
            } else {
                st.published.remove(id);
            }
        }
        st.items = rows
            .into_iter()
            .map(|(id, stock, peers)| {
                (
                    id,
                    Budget {
                        stock_left: stock as i64,
                        peers_queued: peers,
                    },
                )
            })
            .collect();
        st.refreshed = true;
        Ok(())
    }

    /// Drops the queued buys that the workers' committed offsets show as decided.
    async fn forget_decided(&self) -> Result<(), RefreshError> {
        let partitions: Vec<i32> = {
            let st = self.lock();
            let mut p: Vec<i32> = st.queued.keys().map(|&(p, _)| p).collect();
            p.dedup();
            p
        };
        if partitions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&self.topic, *p);
        }
        // A blocking OffsetFetch round trip: off the runtime's worker threads.
        let consumer = self.offsets.clone();
        let committed = tokio::task::spawn_blocking(move || {
            consumer.committed_offsets(tpl, Duration::from_secs(2))
        })
        .await
        .map_err(|e| RefreshError::Join(e.to_string()))??;
        let mut st = self.lock();
        for e in committed.elements() {
            let Offset::Offset(committed) = e.offset() else {
                continue; // nothing committed yet
            };
            let p = e.partition();
            let decided: Vec<(i32, i64)> = st
                .queued
                .range((p, i64::MIN)..(p, committed))
                .map(|(k, _)| *k)
                .collect();
            for k in decided {
                if let Some((item, units)) = st.queued.remove(&k) {
                    if let Some(m) = st.mine.get_mut(&item) {
                        *m -= units;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes rows of instances gone for a while (any instance may do it).
    pub async fn forget_stopped_instances(pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM api_admission WHERE updated_at < now() - interval '1 minute'")
            .execute(pool)
            .await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("read the workers' committed offsets: {0}")]
    Offsets(#[from] KafkaError),
    #[error("read the stock: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the offset reader task failed: {0}")]
    Join(String),
}

/// Units held for one buy: kept once it is queued, given back otherwise (also when dropped,
/// so a cancelled request cannot leak them).
#[derive(Debug)]
pub struct Reservation<'a> {
    admission: &'a Admission,
    item: i64,
    units: i64,
    /// The buyer and request to remember once queued (none for a retry).
    admit: Option<(i64, Uuid)>,
    done: bool,
}

impl Reservation<'_> {
    /// The broker acknowledged the buy at `partition`/`offset`: the units stay counted until the
    /// workers' committed offset passes it.
    pub fn queued(mut self, partition: i32, offset: i64) {
        let mut st = self.admission.lock();
        if self.units > 0 {
            st.queued
                .insert((partition, offset), (self.item, self.units));
        }
        if let Some((user, request)) = self.admit {
            if st.admitted.len() < MAX_REMEMBERED_BUYERS {
                st.admitted.insert((user, self.item), request);
            }
        }
        self.done = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(m) = self.admission.lock().mine.get_mut(&self.item) {
                *m -= self.units;
            }
        }
    }
}
