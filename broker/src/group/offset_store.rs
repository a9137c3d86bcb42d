//! Committed offsets, durable: every commit is appended to an internal partition log
//! (`<data>/__consumer_offsets`, same segments, CRCs, recovery and flush policy as topic data)
//! and acknowledged only once durable under the flush policy. At start the log is replayed into
//! memory; the last commit of a (group, topic, partition) wins.
//!
//! Each commit carries the id of the topic it was made for. A topic that is deleted and created
//! again under the same name gets a new id, so the old topic's commits no longer match it: a
//! group does not resume the new `seckill` at the old one's offsets (skipping its first orders).
//! This needs nothing written at delete time, so no crash between the delete and a purge can
//! bring the old offsets back; deletes also purge them from memory at once, and a start drops
//! them. Commits from before ids were stored (no id) are bound to the topic of their name at the
//! first start that sees them, durably.
//!
//! Invariants: the in-memory map equals the replay of the log, minus the commits of topics that
//! no longer exist. Appends and map updates happen under one lock, in the same order.
//! Compaction (at open) writes the live entries to a new log and swaps it in by renames; every
//! state a crash can leave between its steps resolves to one whole log at the next open
//! (`finish_interrupted_compaction`), and it never deletes the only copy.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::durable;
use crate::log::batch::{decode_records, BatchHeader};
use crate::log::{BatchBuilder, FlushPolicy, LogConfig, LogError, PartitionLog, SyncOnOpen};

const LOG_DIR: &str = "__consumer_offsets";
/// The log is rewritten at start once it is larger than this and mostly superseded commits.
pub const COMPACT_ABOVE_BYTES: u64 = 64 << 20;

/// Longest metadata string stored with a commit (Kafka's `offset.metadata.max.bytes`).
pub const MAX_METADATA_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: i64,
    /// The topic this was committed for; nil only for commits of a topic that could not be
    /// opened when they were found without an id (see the module docs).
    pub topic_id: Uuid,
}

/// One partition's commit, as a group coordinator hands it to [`OffsetStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetEntry {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// What a topic name stands for now, as the store asks at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicNow {
    Exists(Uuid),
    /// On disk but not opened (see `crate::topics`): its commits are kept as they are.
    Unavailable,
    Absent,
}

/// One commit as stored in the log (short keys: it is written for every committed partition).
#[derive(Debug, Serialize, Deserialize)]
struct CommitRecord {
    g: String,
    t: String,
    /// Topic id; absent in records written before ids were stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<Uuid>,
    p: i32,
    o: i64,
    e: i32,
    m: String,
    ts: i64,
    /// A deletion (DeleteGroups, OffsetDelete): replay drops the partition's commit. Written
    /// with offset -1, so a broker from before deletions existed reads it as "no commit".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    d: bool,
}

impl CommitRecord {
    fn of(group: &str, topic: &str, partition: i32, c: &Committed) -> Self {
        CommitRecord {
            g: group.to_string(),
            t: topic.to_string(),
            i: (!c.topic_id.is_nil()).then_some(c.topic_id),
            p: partition,
            o: c.offset,
            e: c.leader_epoch,
            m: c.metadata.clone(),
            ts: c.commit_ms,
            d: false,
        }
    }
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;
type AllOffsets = HashMap<String, GroupOffsets>;

/// The steps of a compaction, in order. Tests stop it after each one to see what a crash there
/// leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The compacted copy is written and flushed in `<log>.compacting`.
    Rewritten,
    /// The data directory is synced: `<log>.compacting` exists durably before the swap starts,
    /// so no crash can leave the old log moved aside without a complete copy beside it.
    DirSynced,
    /// The live log is renamed to `<log>.old`.
    MovedAside,
    /// The compacted copy is renamed to the live name.
    Swapped,
    /// `<log>.old` is removed.
    OldRemoved,
}

#[derive(Debug)]
pub struct OffsetStore {
    log: Arc<PartitionLog>,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<AllOffsets>>,
}

impl OffsetStore {
    /// Opens the store; `topics` says what each committed topic name stands for now.
    pub fn open(
        data_dir: &Path,
        flush: FlushPolicy,
        clock: Arc<dyn Clock>,
        sync: SyncOnOpen,
        topics: &dyn Fn(&str) -> TopicNow,
    ) -> Result<Self, LogError> {
        Self::open_with(data_dir, flush, clock, COMPACT_ABOVE_BYTES, sync, topics)
    }

    /// Opens the store, rewriting the log with only the latest commit per partition when it has
    /// grown past `compact_above` bytes and is mostly superseded commits.
    pub fn open_with(
        data_dir: &Path,
        flush: FlushPolicy,
        clock: Arc<dyn Clock>,
        compact_above: u64,
        sync: SyncOnOpen,
        topics: &dyn Fn(&str) -> TopicNow,
    ) -> Result<Self, LogError> {
        let opened =
            Self::open_stopping(data_dir, flush, clock, compact_above, sync, topics, None)?;
        opened.ok_or(LogError::Closed)
    }

    /// [`OffsetStore::open_with`]; `None` when a test stopped the compaction after `stop_after`.
    fn open_stopping(
        data_dir: &Path,
        flush: FlushPolicy,
        clock: Arc<dyn Clock>,
        compact_above: u64,
        sync: SyncOnOpen,
        topics: &dyn Fn(&str) -> TopicNow,
        stop_after: Option<Step>,
    ) -> Result<Option<Self>, LogError> {
        let live = data_dir.join(LOG_DIR);
        let compacting = data_dir.join(format!("{LOG_DIR}.compacting"));
        let old = data_dir.join(format!("{LOG_DIR}.old"));
        finish_interrupted_compaction(data_dir, &live, &compacting, &old)?;

        let config = log_config(flush);
        let (log, _) = PartitionLog::open_with(&live, config.clone(), clock.clone(), sync)?;
        let (mut state, replayed) = replay(&log)?;
        let (dropped, unbound) = settle_topics(&mut state, topics);
        let entries: usize = state.values().map(BTreeMap::len).sum();
        let log = if log.size_bytes() > compact_above && replayed > 2 * entries {
            log.close()?;
            let paths = SwapPaths {
                data_dir,
                live: &live,
                compacting: &compacting,
                old: &old,
            };
            if !compact_and_swap(&state, &paths, &config, &clock, stop_after)? {
                return Ok(None);
            }
            tracing::info!(
                commits = replayed,
                kept = entries,
                "compacted the committed-offsets log"
            );
            PartitionLog::open(&live, config, clock.clone())?.0
        } else {
            if !unbound.is_empty() {
                // Commits written before ids were stored, now bound to their topic: make that
                // durable, or a delete and re-create before the next start would match them.
                let mut batch = BatchBuilder::new();
                for (g, t, p, c) in &unbound {
                    let rec = CommitRecord::of(g, t, *p, c);
                    batch.push_value(c.commit_ms, &serde_json::to_vec(&rec).unwrap_or_default());
                }
                log.append(&mut batch.build())?;
                log.flush()?;
            }
            log
        };
        tracing::info!(
            groups = state.len(),
            commits = replayed,
            dropped_for_deleted_topics = dropped,
            "loaded committed offsets"
        );
        Ok(Some(OffsetStore {
            log: Arc::new(log),
            clock,
            state: Arc::new(Mutex::new(state)),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, AllOffsets> {
        lock(&self.state)
    }

    /// Stores the commits; resolves once they are durable.
    pub async fn commit(&self, group: &str, entries: Vec<OffsetEntry>) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let committed = |e: &OffsetEntry| Committed {
            offset: e.offset,
            leader_epoch: e.leader_epoch,
            metadata: e.metadata.clone(),
            commit_ms: now,
            topic_id: e.topic_id,
        };
        let mut batch = BatchBuilder::new();
        for e in &entries {
            let rec = CommitRecord::of(group, &e.topic, e.partition, &committed(e));
            batch.push_value(now, &serde_json::to_vec(&rec).unwrap_or_default());
        }
        let mut bytes = batch.build();
        // Appended in place, like a Produce, unless it starts a new segment (file creation:
        // then on the blocking pool; see `protocol::off_runtime`). The map is updated under the
        // same lock as the append, in the same order.
        let (log, state) = (self.log.clone(), self.state.clone());
        let group = group.to_string();
        let updates: Vec<((String, i32), Committed)> = entries
            .iter()
            .map(|e| ((e.topic.clone(), e.partition), committed(e)))
            .collect();
        let rolls = log.append_rolls(bytes.len());
        let append = move || {
            let mut state = lock(&state);
            let info = log.append(&mut bytes)?;
            state.entry(group).or_default().extend(updates);
            Ok::<_, LogError>(info.last_offset + 1)
        };
        let appended = if rolls {
            tokio::task::spawn_blocking(append)
                .await
                .map_err(|e| LogError::Io {
                    context: "append commits".into(),
                    source: std::io::Error::other(e.to_string()),
                })?
        } else {
            append()
        };
        self.log.wait_durable(appended?).await
    }

    /// Deletes the group's commits, durably: all of them (`only` is `None`, DeleteGroups) or
    /// those of the listed (topic, partition)s (OffsetDelete). A deletion record per commit is
    /// appended, so a restart's replay does not bring them back; compaction at open then
    /// leaves them out. Returns how many commits were deleted.
    pub async fn delete(
        &self,
        group: &str,
        only: Option<&[(String, i32)]>,
    ) -> Result<usize, LogError> {
        let now = self.clock.now_ms();
        let (log, state) = (self.log.clone(), self.state.clone());
        let group = group.to_string();
        let only: Option<Vec<(String, i32)>> = only.map(<[_]>::to_vec);
        let delete = move || {
            let mut state = lock(&state);
            let Some(offsets) = state.get(&group) else {
                return Ok::<_, LogError>((0, None));
            };
            let doomed: Vec<(String, i32)> = offsets
                .keys()
                .filter(|k| only.as_ref().is_none_or(|o| o.contains(k)))
                .cloned()
                .collect();
            if doomed.is_empty() {
                return Ok((0, None));
            }
            let mut batch = BatchBuilder::new();
            for (t, p) in &doomed {
                let rec = CommitRecord {
                    g: group.clone(),
                    t: t.clone(),
                    i: None,
                    p: *p,
                    o: -1,
                    e: -1,
                    m: String::new(),
                    ts: now,
                    d: true,
                };
                batch.push_value(now, &serde_json::to_vec(&rec).unwrap_or_default());
            }
            let mut bytes = batch.build();
            let info = log.append(&mut bytes)?;
            if let Some(offsets) = state.get_mut(&group) {
                for k in &doomed {
                    offsets.remove(k);
                }
                if offsets.is_empty() {
                    state.remove(&group);
                }
            }
            Ok((doomed.len(), Some(info.last_offset + 1)))
        };
        // May roll a segment (file creation): on the blocking pool, like a rolling commit.
        let (n, end) = tokio::task::spawn_blocking(delete)
            .await
            .map_err(|e| LogError::Io {
                context: "append offset deletions".into(),
                source: std::io::Error::other(e.to_string()),
            })??;
        if let Some(end) = end {
            self.log.wait_durable(end).await?;
        }
        Ok(n)
    }

    /// The group's commit for this partition of the topic whose id is `topic_id` now.
    pub fn fetch(
        &self,
        group: &str,
        topic: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<Committed> {
        self.lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
            .filter(|c| c.topic_id == topic_id)
    }

    /// Every committed partition of a group whose topic still exists (`topic_id` gives each
    /// name's current id), sorted by topic and partition.
    pub fn group_offsets(
        &self,
        group: &str,
        topic_id: &dyn Fn(&str) -> Option<Uuid>,
    ) -> Vec<(String, i32, Committed)> {
        self.lock()
            .get(group)
            .map(|g| {
                g.iter()
                    .filter(|((t, _), c)| topic_id(t) == Some(c.topic_id))
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets every group's commits for the topic `name` with id `topic_id` (it was deleted).
    /// Memory only: the stored ids already keep them from matching anything again.
    pub fn forget_topic(&self, name: &str, topic_id: Uuid) {
        let mut state = self.lock();
        for offsets in state.values_mut() {
            offsets.retain(|(t, _), c| !(t == name && c.topic_id == topic_id));
        }
        state.retain(|_, offsets| !offsets.is_empty());
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.lock().contains_key(group)
    }

    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.lock().keys().cloned().collect();
        g.sort();
        g
    }

    pub fn flush(&self) -> Result<(), LogError> {
        self.log.flush()
    }
}

fn lock(state: &Mutex<AllOffsets>) -> MutexGuard<'_, AllOffsets> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn log_config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        flush,
        segment_bytes: 64 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: 16 << 20,
        ..LogConfig::default()
    }
}

/// Drops the commits of topics that are gone or were re-created since, and binds commits
/// without an id to the topic of their name. Returns how many were dropped, and the bound ones
/// (group, topic, partition, commit) to be written again with their id.
fn settle_topics(
    state: &mut AllOffsets,
    topics: &dyn Fn(&str) -> TopicNow,
) -> (usize, Vec<(String, String, i32, Committed)>) {
    let mut dropped = 0;
    let mut bound = Vec::new();
    for (g, offsets) in state.iter_mut() {
        offsets.retain(|(t, p), c| match topics(t) {
            TopicNow::Unavailable => true,
            TopicNow::Absent => {
                dropped += 1;
                false
            }
            TopicNow::Exists(id) if c.topic_id.is_nil() => {
                c.topic_id = id;
                bound.push((g.clone(), t.clone(), *p, c.clone()));
                true
            }
            TopicNow::Exists(id) => {
                let same = c.topic_id == id;
                dropped += usize::from(!same);
                same
            }
        });
    }
    state.retain(|_, offsets| !offsets.is_empty());
    (dropped, bound)
}

/// Reads every commit in the log; returns the latest per partition and how many were read.
fn replay(log: &PartitionLog) -> Result<(AllOffsets, usize), LogError> {
    let mut state: AllOffsets = HashMap::new();
    let (mut offset, end) = (log.log_start_offset(), log.high_watermark());
    let mut replayed = 0usize;
    while offset < end {
        let read = log.read(offset, 1 << 20)?;
        if read.bytes.is_empty() {
            break;
        }
        let mut rest = &read.bytes[..];
        while let Ok(h) = BatchHeader::parse(rest) {
            let batch = &rest[..h.total_len().min(rest.len())];
            for r in decode_records(batch).unwrap_or_default() {
                match r
                    .value
                    .as_deref()
                    .map(serde_json::from_slice::<CommitRecord>)
                {
                    Some(Ok(c)) if c.d => {
                        replayed += 1;
                        if let Some(g) = state.get_mut(&c.g) {
                            g.remove(&(c.t, c.p));
                            if g.is_empty() {
                                state.remove(&c.g);
                            }
                        }
                    }
                    Some(Ok(c)) => {
                        replayed += 1;
                        state.entry(c.g).or_default().insert(
                            (c.t, c.p),
                            Committed {
                                offset: c.o,
                                leader_epoch: c.e,
                                metadata: c.m,
                                commit_ms: c.ts,
                                topic_id: c.i.unwrap_or_else(Uuid::nil),
                            },
                        );
                    }
                    _ => tracing::warn!(
                        offset = h.base_offset,
                        "skipping an unreadable offset commit record"
                    ),
                }
            }
            offset = h.next_offset();
            if h.total_len() >= rest.len() {
                break;
            }
            rest = &rest[h.total_len()..];
        }
    }
    Ok((state, replayed))
}

struct SwapPaths<'a> {
    data_dir: &'a Path,
    live: &'a Path,
    compacting: &'a Path,
    old: &'a Path,
}

/// Writes the latest commits into a fresh log and swaps it in for the live one, step by step
/// (see [`Step`]). Returns false when a test stopped it after `stop_after`.
fn compact_and_swap(
    state: &AllOffsets,
    paths: &SwapPaths<'_>,
    config: &LogConfig,
    clock: &Arc<dyn Clock>,
    stop_after: Option<Step>,
) -> Result<bool, LogError> {
    let io = |what: &'static str| LogError::io(what);
    let stop = |step| stop_after == Some(step);
    compact(state, paths.compacting, config, clock)?;
    if stop(Step::Rewritten) {
        return Ok(false);
    }
    durable::sync_dir(paths.data_dir).map_err(io("sync the data dir before the swap"))?;
    if stop(Step::DirSynced) {
        return Ok(false);
    }
    durable::rename(paths.live, paths.old).map_err(io("swap compacted offsets log"))?;
    if stop(Step::MovedAside) {
        return Ok(false);
    }
    durable::rename(paths.compacting, paths.live).map_err(io("swap compacted offsets log"))?;
    if stop(Step::Swapped) {
        return Ok(false);
    }
    std::fs::remove_dir_all(paths.old).map_err(io("remove old offsets log"))?;
    durable::sync_dir(paths.data_dir).map_err(io("sync the data dir"))?;
    Ok(!stop(Step::OldRemoved))
}

/// Writes the latest commits into a fresh log at `dir`, flushed (files and directory) before it
/// returns.
fn compact(
    state: &AllOffsets,
    dir: &Path,
    config: &LogConfig,
    clock: &Arc<dyn Clock>,
) -> Result<(), LogError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(LogError::io("clear compaction dir"))?;
    }
    let (log, _) = PartitionLog::open(dir, config.clone(), clock.clone())?;
    let mut batch = BatchBuilder::new();
    for (g, offsets) in state {
        for ((t, p), c) in offsets {
            let rec = CommitRecord::of(g, t, *p, c);
            batch.push_value(c.commit_ms, &serde_json::to_vec(&rec).unwrap_or_default());
            if batch.len() == 1000 {
                log.append(&mut batch.build())?;
                batch = BatchBuilder::new();
            }
        }
    }
    if !batch.is_empty() {
        log.append(&mut batch.build())?;
    }
    log.flush()?;
    log.close()
}

/// A crash during a compaction leaves one of these states; each resolves to one whole log:
/// - `compacting` beside the live log, no `old`: the rewrite may be partial; drop it.
/// - `old` and `compacting`, no live log: the rewrite was complete (it is flushed and its entry
///   synced before the live log is moved aside); finish the swap.
/// - `old` beside a live log: the swap finished; drop `old`.
/// - `old` alone: the only copy (a filesystem that lost the rewrite's directory entry); it
///   becomes the live log again. The only copy of the commits is never deleted.
fn finish_interrupted_compaction(
    data_dir: &Path,
    live: &Path,
    compacting: &Path,
    old: &Path,
) -> Result<(), LogError> {
    let io = |what: &'static str| LogError::io(what);
    if !live.exists() && old.exists() {
        if compacting.exists() {
            durable::rename(compacting, live).map_err(io("finish offsets compaction"))?;
        } else {
            tracing::warn!(
                "the committed-offsets log was moved aside without its rewrite; restoring it"
            );
            durable::rename(old, live).map_err(io("restore the offsets log"))?;
        }
    }
    let mut removed = false;
    for leftover in [compacting, old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).map_err(io("drop a leftover offsets log"))?;
            removed = true;
        }
    }
    if removed {
        durable::sync_dir(data_dir).map_err(io("sync the data dir"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    /// Every topic exists, with an id derived from its name.
    fn id(topic: &str) -> Uuid {
        Uuid::new_v5(&Uuid::NAMESPACE_OID, topic.as_bytes())
    }

    fn all_exist(topic: &str) -> TopicNow {
        TopicNow::Exists(id(topic))
    }

    fn store(dir: &Path, compact_above: u64) -> OffsetStore {
        OffsetStore::open_with(
            dir,
            FlushPolicy::Fsync,
            Arc::new(SystemClock),
            compact_above,
            SyncOnOpen::All,
            &all_exist,
        )
        .unwrap()
    }

    fn entry(topic: &str, partition: i32, offset: i64, epoch: i32, meta: &str) -> OffsetEntry {
        OffsetEntry {
            topic: topic.into(),
            topic_id: id(topic),
            partition,
            offset,
            leader_epoch: epoch,
            metadata: meta.into(),
        }
    }

    fn offset(s: &OffsetStore, group: &str, topic: &str, partition: i32) -> Option<i64> {
        s.fetch(group, topic, id(topic), partition)
            .map(|c| c.offset)
    }

    /// 200 rounds of commits to two partitions of `t` by `g`, and one of `u` by `h`: a log that
    /// is mostly superseded commits. Returns its size.
    async fn fill(s: &OffsetStore) -> u64 {
        for round in 0..200i64 {
            s.commit(
                "g",
                vec![
                    entry("t", 0, round, -1, ""),
                    entry("t", 1, round * 2, 0, "m"),
                ],
            )
            .await
            .unwrap();
        }
        s.commit("h", vec![entry("u", 3, 7, -1, "")]).await.unwrap();
        s.log.size_bytes()
    }

    fn assert_latest(s: &OffsetStore) {
        assert_eq!(offset(s, "g", "t", 0), Some(199));
        let p1 = s.fetch("g", "t", id("t"), 1).unwrap();
        assert_eq!(
            (p1.offset, p1.leader_epoch, p1.metadata.as_str()),
            (398, 0, "m")
        );
        assert_eq!(offset(s, "h", "u", 3), Some(7));
        assert_eq!(offset(s, "h", "u", 4), None);
        assert_eq!(s.groups(), vec!["g".to_string(), "h".to_string()]);
    }

    #[tokio::test]
    async fn commits_survive_reopen_and_compaction_keeps_only_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        let before = fill(&s).await;
        drop(s);

        let s = store(dir.path(), 1024);
        assert!(
            s.log.size_bytes() < before / 10,
            "compacted {} -> {}",
            before,
            s.log.size_bytes()
        );
        assert_latest(&s);
        // New commits after compaction land and survive too.
        s.commit("g", vec![entry("t", 0, 500, -1, "")])
            .await
            .unwrap();
        drop(s);
        assert_eq!(offset(&store(dir.path(), 1024), "g", "t", 0), Some(500));
    }

    /// Opens the store in `dir` with a compaction threshold it is over, and stops the compaction
    /// after `step`, as a crash there would.
    fn stop_compaction_after(dir: &std::path::Path, step: Step) {
        let stopped = OffsetStore::open_stopping(
            dir,
            FlushPolicy::Fsync,
            Arc::new(SystemClock),
            1024,
            SyncOnOpen::All,
            &all_exist,
            Some(step),
        )
        .unwrap();
        assert!(stopped.is_none(), "{step:?}: the compaction did not run");
    }

    /// A crash after each step of a compaction (the compaction stopped there, its files left as
    /// they are) loses no committed offset: the next open resolves what it finds to one whole
    /// log holding every latest commit, and compacts again.
    #[tokio::test]
    async fn a_crash_after_any_step_of_a_compaction_loses_no_commit() {
        for step in [
            Step::Rewritten,
            Step::DirSynced,
            Step::MovedAside,
            Step::Swapped,
            Step::OldRemoved,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let s = store(dir.path(), u64::MAX);
            fill(&s).await;
            drop(s);
            stop_compaction_after(dir.path(), step);
            let s = store(dir.path(), 1024);
            assert_latest(&s);
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, vec![LOG_DIR.to_string()], "{step:?}: leftovers");
        }
    }

    /// The state only a lost directory entry can leave (the live log moved aside, its rewrite
    /// gone): the moved-aside log is the only copy and becomes the live one again.
    #[tokio::test]
    async fn a_log_moved_aside_without_its_rewrite_is_restored_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        fill(&s).await;
        drop(s);
        stop_compaction_after(dir.path(), Step::MovedAside);
        std::fs::remove_dir_all(dir.path().join(format!("{LOG_DIR}.compacting"))).unwrap();
        assert_latest(&store(dir.path(), u64::MAX));
    }

    /// Commits carry their topic's id: a topic deleted and created again (new id) matches none
    /// of the old commits, in memory at once and after a restart; records written before ids
    /// were stored are bound to the topic of their name, durably.
    #[tokio::test]
    async fn commits_of_a_deleted_topic_do_not_match_its_successor() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        s.commit(
            "g",
            vec![entry("seckill", 0, 4, -1, ""), entry("t", 0, 9, -1, "")],
        )
        .await
        .unwrap();
        let new_id = Uuid::new_v4();
        assert_eq!(s.fetch("g", "seckill", new_id, 0), None);
        s.forget_topic("seckill", id("seckill"));
        assert_eq!(offset(&s, "g", "seckill", 0), None);
        assert_eq!(offset(&s, "g", "t", 0), Some(9));
        drop(s);
        let recreated = |t: &str| match t {
            "seckill" => TopicNow::Exists(new_id),
            other => all_exist(other),
        };
        let open = |topics: &dyn Fn(&str) -> TopicNow| {
            OffsetStore::open_with(
                dir.path(),
                FlushPolicy::Fsync,
                Arc::new(SystemClock),
                u64::MAX,
                SyncOnOpen::All,
                topics,
            )
            .unwrap()
        };
        let s = open(&recreated);
        assert_eq!(s.fetch("g", "seckill", new_id, 0), None);
        assert_eq!(offset(&s, "g", "t", 0), Some(9));
        assert_eq!(
            s.group_offsets("g", &|t| Some(if t == "seckill" { new_id } else { id(t) }))
                .len(),
            1
        );
        drop(s);

        // A record without an id (written before ids were stored) is bound at open, durably.
        {
            let (log, _) = PartitionLog::open(
                &dir.path().join(LOG_DIR),
                log_config(FlushPolicy::Fsync),
                Arc::new(SystemClock),
            )
            .unwrap();
            let mut b = BatchBuilder::new();
            b.push_value(
                1,
                br#"{"g":"old","t":"t","p":0,"o":33,"e":-1,"m":"","ts":1}"#,
            );
            log.append(&mut b.build()).unwrap();
            log.close().unwrap();
        }
        let s = open(&all_exist);
        assert_eq!(offset(&s, "old", "t", 0), Some(33));
        drop(s);
        // Bound to the id `t` had then: a later `t` with another id does not match it.
        let s = open(&|_| TopicNow::Exists(new_id));
        assert_eq!(s.fetch("old", "t", new_id, 0), None);
        assert!(s.groups().is_empty(), "{:?}", s.groups());
    }

    /// A topic that could not be opened keeps its commits.
    #[tokio::test]
    async fn an_unavailable_topic_keeps_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        s.commit("g", vec![entry("t", 0, 9, -1, "")]).await.unwrap();
        drop(s);
        let s = OffsetStore::open_with(
            dir.path(),
            FlushPolicy::Fsync,
            Arc::new(SystemClock),
            u64::MAX,
            SyncOnOpen::All,
            &|_| TopicNow::Unavailable,
        )
        .unwrap();
        drop(s);
        assert_eq!(offset(&store(dir.path(), u64::MAX), "g", "t", 0), Some(9));
    }
}
