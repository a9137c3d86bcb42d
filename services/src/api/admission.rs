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
//! With several instances, each may admit between two refreshes at most its share of what was
//! left at the last one (the headroom divided by the live instances, rounded up): two instances
//! admitting the same units before they see each other's counts would otherwise oversubscribe
//! the queue by up to the whole headroom, and for as long as the database is away. An instance
//! counts as live while its heartbeat row (item 0) is fresh.
//!
//! A buyer's second buy of an item through this instance is refused at once (the worker would
//! reject it as a duplicate, and meanwhile it would hold units other buyers could have): the
//! instance remembers which request of each (user, item) it admitted, and which one it is
//! enqueueing right now (a script firing the same buy many times at once gets one through, not
//! one per connection). A retry of that same
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

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use uuid::Uuid;

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

/// An item on sale, as the last refresh read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SaleItem {
    pub id: i64,
    pub name: String,
    pub initial_stock: i64,
    /// Opening and closing times, ms since the epoch (`None`: no bound).
    pub sale_start_ms: Option<i64>,
    pub sale_end_ms: Option<i64>,
    /// `/buy` needs a purchase token for this item.
    pub require_token: bool,
}

impl SaleItem {
    /// Where the sale stands at `now_ms`.
    pub fn window(&self, now_ms: i64) -> Window {
        self.terms().window(now_ms)
    }

    pub fn terms(&self) -> SaleTerms {
        SaleTerms {
            id: self.id,
            sale_start_ms: self.sale_start_ms,
            sale_end_ms: self.sale_end_ms,
            require_token: self.require_token,
        }
    }
}

/// What a buy needs to know of an item, copied out under the lock: no allocation on the path
/// that floods answer (425 before the opening, 410 after the sell-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleTerms {
    pub id: i64,
    pub sale_start_ms: Option<i64>,
    pub sale_end_ms: Option<i64>,
    pub require_token: bool,
}

impl SaleTerms {
    /// Where the sale stands at `now_ms`.
    pub fn window(&self, now_ms: i64) -> Window {
        match (self.sale_start_ms, self.sale_end_ms) {
            (Some(start), _) if now_ms < start => Window::NotYet(start),
            (_, Some(end)) if now_ms >= end => Window::Ended(end),
            _ => Window::Open,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Opens at this time (ms).
    NotYet(i64),
    Open,
    /// Closed at this time (ms).
    Ended(i64),
}

#[derive(Debug, Clone)]
struct Budget {
    item: SaleItem,
    stock_left: i64,
    peers_queued: i64,
    /// Units this instance may admit until the next refresh: its share of the headroom.
    share: i64,
    /// This instance's units at the last refresh (what it admitted since is `mine - this`).
    mine_at_refresh: i64,
}

/// The item id of an instance's heartbeat row in `api_admission` (real items are > 0).
const HEARTBEAT_ITEM: i64 = 0;

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
    /// The request of each (user, item) being enqueued right now: a second, concurrent buy by
    /// the same user is a duplicate as much as a later one.
    in_flight: HashMap<(i64, i64), Uuid>,
    /// The item of each request this instance admitted or is enqueueing: the same
    /// Idempotency-Key (so the same request id) reused for another item is refused, not
    /// answered with the first buy's id.
    item_of: HashMap<Uuid, i64>,
    refreshed: bool,
}

/// This instance's view of the sale's budgets.
pub struct Admission {
    instance: Uuid,
    /// Another instance's row this much older than the newest row belongs to an instance that
    /// stopped (or cannot reach the database): four refresh periods, at least a second.
    /// Counting a stopped instance's units longer would refuse buyers while units are free.
    /// Measured against the newest row rather than the clock, so that after the database was
    /// away for everyone, no instance takes the others for stopped.
    peer_stale_after: Duration,
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
    pub fn new(
        bootstrap: &str,
        topic: &str,
        worker_group: &str,
        refresh: Duration,
    ) -> Result<Self, KafkaError> {
        let offsets: BaseConsumer = crate::kafka::client_config(bootstrap)
            // Reads the group's committed offsets; never joins it, never commits.
            .set("group.id", worker_group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Admission {
            instance: Uuid::new_v4(),
            peer_stale_after: (refresh * 4).max(Duration::from_secs(1)),
            topic: topic.into(),
            state: Mutex::new(State::default()),
            offsets: Arc::new(offsets),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The item `id`, if it is on sale.
    pub fn item(&self, id: i64) -> Option<SaleItem> {
        self.lock().items.get(&id).map(|b| b.item.clone())
    }

    /// The terms of item `id`, if it is on sale.
    pub fn terms(&self, id: i64) -> Option<SaleTerms> {
        self.lock().items.get(&id).map(|b| b.item.terms())
    }

    /// Every item on sale with the units the API still admits (approximate: this instance's
    /// view), by id.
    pub fn items(&self) -> Vec<(SaleItem, i64, i64)> {
        let st = self.lock();
        let mut v: Vec<(SaleItem, i64, i64)> = st
            .items
            .values()
            .map(|b| {
                let mine = st.mine.get(&b.item.id).copied().unwrap_or(0);
                (
                    b.item.clone(),
                    b.stock_left,
                    (b.stock_left - b.peers_queued - mine).max(0),
                )
            })
            .collect();
        v.sort_unstable_by_key(|(i, _, _)| i.id);
        v
    }

    /// Reserves `units` of `item` for `user`'s buy, about to be enqueued. `request` gives the
    /// buy's request id; it is called only when the id matters (the buyer has an earlier buy
    /// to compare it with, or the units are reserved), so a refusal costs no id.
    pub fn reserve(
        &self,
        user: i64,
        item: i64,
        units: i64,
        request: impl FnOnce() -> Uuid,
    ) -> Result<Reservation<'_>, Refusal> {
        let request = std::cell::LazyCell::new(request);
        let mut st = self.lock();
        let Some((stock_left, peers_queued, mine_at_refresh, share)) = st
            .items
            .get(&item)
            .map(|b| (b.stock_left, b.peers_queued, b.mine_at_refresh, b.share))
        else {
            return Err(Refusal::UnknownItem);
        };
        match st
            .admitted
            .get(&(user, item))
            .or_else(|| st.in_flight.get(&(user, item)))
        {
            // The same request again (a retry): it holds no second set of units.
            Some(&earlier) if earlier == *request => {
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
        if stock_left <= 0 {
            return Err(Refusal::SoldOut);
        }
        let mine = st.mine.entry(item).or_insert(0);
        if stock_left - peers_queued - *mine < units || *mine - mine_at_refresh + units > share {
            return Err(Refusal::Claimed);
        }
        *mine += units;
        let request = *request;
        st.in_flight.insert((user, item), request);
        if st.item_of.len() < MAX_REMEMBERED_BUYERS {
            st.item_of.insert(request, item);
        }
        Ok(Reservation {
            admission: self,
            item,
            units,
            admit: Some((user, request)),
            done: false,
        })
    }

    /// The item `request` was admitted for by this instance, if it was.
    pub fn item_of(&self, request: Uuid) -> Option<i64> {
        self.lock().item_of.get(&request).copied()
    }

    /// Whether the first refresh happened (before it, every item is unknown).
    pub fn is_ready(&self) -> bool {
        self.lock().refreshed
    }

    /// Units queued by this instance and not decided yet.
    pub fn queued_units(&self) -> i64 {
        self.lock().queued.values().map(|&(_, u)| u).sum()
    }

    /// One refresh (see the module doc). The queued buys the committed offsets show as decided
    /// are forgotten only together with a successful read of the stock that includes them:
    /// when the database is away the view stays as it was (forgetting them against an old
    /// stock figure would count those units as free). When the offsets cannot be read (the
    /// broker is away) the rest of the refresh still runs, so the other instances keep seeing
    /// this one.
    pub async fn refresh(&self, pool: &PgPool) -> Result<(), RefreshError> {
        let committed = self.committed_offsets().await;
        let decided_now = |st: &State| -> Vec<(i32, i64)> {
            let Ok(committed) = &committed else {
                return Vec::new();
            };
            committed
                .iter()
                .flat_map(|(&p, &c)| st.queued.range((p, i64::MIN)..(p, c)).map(|(k, _)| *k))
                .collect()
        };
        let (items, units): (Vec<i64>, Vec<i64>) = {
            let st = self.lock();
            let mut mine = st.mine.clone();
            for k in decided_now(&st) {
                if let Some((item, u)) = st.queued.get(&k) {
                    if let Some(m) = mine.get_mut(item) {
                        *m -= u;
                    }
                }
            }
            let mut publish: Vec<(i64, i64)> = mine
                .into_iter()
                .filter(|(id, u)| *u > 0 || st.published.contains(id))
                .chain([(HEARTBEAT_ITEM, 0)])
                .collect();
            publish.sort_unstable();
            publish.into_iter().unzip()
        };
        let rows: Vec<ItemRow> = sqlx::query_as(
            "WITH published AS ( \
                 INSERT INTO api_admission AS a (instance_id, item_id, units, updated_at) \
                 SELECT $1, i, u, now() FROM UNNEST($2::bigint[], $3::bigint[]) AS t(i, u) \
                 ON CONFLICT (instance_id, item_id) \
                 DO UPDATE SET units = EXCLUDED.units, updated_at = now() \
             ) \
             , fresh AS ( \
                 SELECT * FROM api_admission WHERE instance_id <> $1 \
                   AND updated_at > (SELECT max(updated_at) FROM api_admission) \
                                    - make_interval(secs => $4) \
             ) \
             SELECT i.id, i.name, i.initial_stock, i.stock, \
                 (extract(epoch FROM i.sale_start) * 1000)::bigint AS sale_start_ms, \
                 (extract(epoch FROM i.sale_end) * 1000)::bigint AS sale_end_ms, \
                 i.require_token, \
                 COALESCE((SELECT sum(f.units) FROM fresh f WHERE f.item_id = i.id), 0)::bigint \
                     AS peers_queued, \
                 (SELECT count(DISTINCT f.instance_id) FROM fresh f)::bigint AS live_peers \
             FROM items i",
        )
        .bind(self.instance)
        .bind(&items)
        .bind(&units)
        .bind(self.peer_stale_after.as_secs_f64())
        .fetch_all(pool)
        .await?;
        let mut st = self.lock();
        for k in decided_now(&st) {
            if let Some((item, u)) = st.queued.remove(&k) {
                if let Some(m) = st.mine.get_mut(&item) {
                    *m -= u;
                }
            }
        }
        for (id, u) in items.iter().zip(&units) {
            if *u > 0 {
                st.published.insert(*id);
            } else {
                st.published.remove(id);
            }
        }
        let items = rows
            .into_iter()
            .map(|r| {
                let mine = st.mine.get(&r.id).copied().unwrap_or(0);
                let headroom = (r.stock as i64 - r.peers_queued - mine).max(0);
                let instances = r.live_peers + 1;
                (
                    r.id,
                    Budget {
                        item: SaleItem {
                            id: r.id,
                            name: r.name,
                            initial_stock: r.initial_stock as i64,
                            sale_start_ms: r.sale_start_ms,
                            sale_end_ms: r.sale_end_ms,
                            require_token: r.require_token,
                        },
                        stock_left: r.stock as i64,
                        peers_queued: r.peers_queued,
                        share: (headroom + instances - 1) / instances,
                        mine_at_refresh: mine,
                    },
                )
            })
            .collect();
        st.items = items;
        st.refreshed = true;
        committed.map(|_| ())
    }

    /// The workers' committed offset of every partition this instance has queued buys in.
    async fn committed_offsets(&self) -> Result<HashMap<i32, i64>, RefreshError> {
        let partitions = queued_partitions(&self.lock().queued);
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&self.topic, *p);
        }
        // A blocking OffsetFetch round trip: off the runtime's worker threads.
        let consumer = self.offsets.clone();
        let committed = tokio::task::spawn_blocking(move || {
            consumer.committed_offsets(tpl, Duration::from_millis(500))
        })
        .await
        .map_err(|e| RefreshError::Join(e.to_string()))??;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None, // nothing committed yet
            })
            .collect())
    }

    /// Removes rows of instances gone for a while (any instance may do it).
    pub async fn forget_stopped_instances(pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM api_admission WHERE updated_at < now() - interval '1 minute'")
            .execute(pool)
            .await?;
        Ok(())
    }
}

/// One item as the refresh reads it.
#[derive(Debug, sqlx::FromRow)]
struct ItemRow {
    id: i64,
    name: String,
    initial_stock: i32,
    stock: i32,
    sale_start_ms: Option<i64>,
    sale_end_ms: Option<i64>,
    require_token: bool,
    peers_queued: i64,
    live_peers: i64,
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

/// The partitions that hold queued buys, in order. One lookup per partition rather than a walk
/// over every queued buy: the map holds this instance's whole undecided backlog (hundreds of
/// thousands of buys in a long peak), and this runs at every refresh under the lock each buy
/// takes.
fn queued_partitions(queued: &BTreeMap<(i32, i64), (i64, i64)>) -> Vec<i32> {
    let mut partitions = Vec::new();
    let mut from = Some(i32::MIN);
    while let Some(&(p, _)) =
        from.and_then(|f| queued.range((f, i64::MIN)..).next().map(|(k, _)| k))
    {
        partitions.push(p);
        from = p.checked_add(1);
    }
    partitions
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
            st.in_flight.remove(&(user, self.item));
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
            let mut st = self.admission.lock();
            if let Some(m) = st.mine.get_mut(&self.item) {
                *m -= self.units;
            }
            // Not queued: the buyer may try again (with this request or another).
            if let Some((user, request)) = self.admit {
                st.in_flight.remove(&(user, self.item));
                st.item_of.remove(&request);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_partitions_lists_each_partition_once_in_order() {
        let mut queued = BTreeMap::new();
        assert!(queued_partitions(&queued).is_empty());
        for (p, o) in [
            (3, 7),
            (0, 1),
            (3, 2),
            (0, 9),
            (5, 0),
            (i32::MAX, 4),
            (i32::MIN, 8),
        ] {
            queued.insert((p, o), (1, 1));
        }
        assert_eq!(
            queued_partitions(&queued),
            vec![i32::MIN, 0, 3, 5, i32::MAX]
        );
    }
}
