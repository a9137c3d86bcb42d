//! Committed offsets, durable: every commit is appended to an internal partition log
//! (`<data>/__consumer_offsets`, same segments, CRCs, recovery and flush policy as topic data)
//! and acknowledged only once durable under the flush policy. At start the log is replayed into
//! memory; the last commit of a (group, topic, partition) wins.
//!
//! Invariant: the in-memory map equals the replay of the log. Appends and map updates happen
//! under one lock, in the same order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

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
}

/// One commit as stored in the log (short keys: it is written for every committed partition).
#[derive(Debug, Serialize, Deserialize)]
struct CommitRecord {
    g: String,
    t: String,
    p: i32,
    o: i64,
    e: i32,
    m: String,
    ts: i64,
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;

#[derive(Debug)]
pub struct OffsetStore {
    log: PartitionLog,
    clock: Arc<dyn Clock>,
    state: Mutex<HashMap<String, GroupOffsets>>,
}

impl OffsetStore {
    pub fn open(
        data_dir: &Path,
        flush: FlushPolicy,
        clock: Arc<dyn Clock>,
        sync: SyncOnOpen,
    ) -> Result<Self, LogError> {
        Self::open_with(data_dir, flush, clock, COMPACT_ABOVE_BYTES, sync)
    }

    /// Opens the store, rewriting the log with only the latest commit per partition when it has
    /// grown past `compact_above` bytes and is mostly superseded commits.
    pub fn open_with(
        data_dir: &Path,
        flush: FlushPolicy,
        clock: Arc<dyn Clock>,
        compact_above: u64,
        sync: SyncOnOpen,
    ) -> Result<Self, LogError> {
        let live = data_dir.join(LOG_DIR);
        let compacting = data_dir.join(format!("{LOG_DIR}.compacting"));
        let old = data_dir.join(format!("{LOG_DIR}.old"));
        finish_interrupted_compaction(&live, &compacting, &old)?;

        let config = log_config(flush);
        let (log, _) = PartitionLog::open_with(&live, config.clone(), clock.clone(), sync)?;
        let (state, replayed) = replay(&log)?;
        let entries: usize = state.values().map(BTreeMap::len).sum();
        let log = if log.size_bytes() > compact_above && replayed > 2 * entries {
            log.close()?;
            compact(&state, &compacting, &config, &clock)?;
            durable::rename(&live, &old).map_err(LogError::io("swap compacted offsets log"))?;
            durable::rename(&compacting, &live)
                .map_err(LogError::io("swap compacted offsets log"))?;
            std::fs::remove_dir_all(&old).map_err(LogError::io("remove old offsets log"))?;
            tracing::info!(
                commits = replayed,
                kept = entries,
                "compacted the committed-offsets log"
            );
            PartitionLog::open(&live, config, clock.clone())?.0
        } else {
            log
        };
        tracing::info!(
            groups = state.len(),
            commits = replayed,
            "loaded committed offsets"
        );
        Ok(OffsetStore {
            log,
            clock,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, GroupOffsets>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the commits; resolves once they are durable.
    pub async fn commit(
        &self,
        group: &str,
        entries: Vec<(String, i32, i64, i32, String)>,
    ) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let mut batch = BatchBuilder::new();
        for (t, p, o, e, m) in &entries {
            let rec = CommitRecord {
                g: group.to_string(),
                t: t.clone(),
                p: *p,
                o: *o,
                e: *e,
                m: m.clone(),
                ts: now,
            };
            batch.push_value(now, &serde_json::to_vec(&rec).unwrap_or_default());
        }
        let mut bytes = batch.build();
        let end = {
            let mut state = self.lock();
            let info = self.log.append(&mut bytes)?;
            let offsets = state.entry(group.to_string()).or_default();
            for (t, p, o, e, m) in entries {
                offsets.insert(
                    (t, p),
                    Committed {
                        offset: o,
                        leader_epoch: e,
                        metadata: m,
                        commit_ms: now,
                    },
                );
            }
            info.last_offset + 1
        };
        self.log.wait_durable(end).await
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed partition of a group, sorted by topic and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(String, i32, Committed)> {
        self.lock()
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
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

/// Reads every commit in the log; returns the latest per partition and how many were read.
fn replay(log: &PartitionLog) -> Result<(HashMap<String, GroupOffsets>, usize), LogError> {
    let mut state: HashMap<String, GroupOffsets> = HashMap::new();
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
                    Some(Ok(c)) => {
                        replayed += 1;
                        state.entry(c.g).or_default().insert(
                            (c.t, c.p),
                            Committed {
                                offset: c.o,
                                leader_epoch: c.e,
                                metadata: c.m,
                                commit_ms: c.ts,
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

/// Writes the latest commits into a fresh log at `dir`, flushed before it returns.
fn compact(
    state: &HashMap<String, GroupOffsets>,
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
            let rec = CommitRecord {
                g: g.clone(),
                t: t.clone(),
                p: *p,
                o: c.offset,
                e: c.leader_epoch,
                m: c.metadata.clone(),
                ts: c.commit_ms,
            };
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

/// A crash during the swap leaves one of these states; each resolves to a whole log:
/// - `compacting` without `old`: the rewrite may be partial; drop it, the live log is intact.
/// - `old` and `compacting`, no live log: the rewrite was complete; finish the swap.
/// - `old` beside a live log: the swap finished; drop `old`.
fn finish_interrupted_compaction(
    live: &Path,
    compacting: &Path,
    old: &Path,
) -> Result<(), LogError> {
    let io = |what: &'static str| LogError::io(what);
    if !live.exists() && old.exists() && compacting.exists() {
        durable::rename(compacting, live).map_err(io("finish offsets compaction"))?;
    }
    if compacting.exists() {
        std::fs::remove_dir_all(compacting).map_err(io("drop partial offsets compaction"))?;
    }
    if old.exists() {
        std::fs::remove_dir_all(old).map_err(io("drop pre-compaction offsets log"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn store(dir: &Path, compact_above: u64) -> OffsetStore {
        OffsetStore::open_with(
            dir,
            FlushPolicy::Fsync,
            Arc::new(SystemClock),
            compact_above,
            SyncOnOpen::All,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn commits_survive_reopen_and_compaction_keeps_only_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        for round in 0..200i64 {
            s.commit(
                "g",
                vec![
                    ("t".into(), 0, round, -1, String::new()),
                    ("t".into(), 1, round * 2, 0, "m".into()),
                ],
            )
            .await
            .unwrap();
        }
        s.commit("h", vec![("u".into(), 3, 7, -1, String::new())])
            .await
            .unwrap();
        let before = s.log.size_bytes();
        drop(s);

        let s = store(dir.path(), 1024);
        assert!(
            s.log.size_bytes() < before / 10,
            "compacted {} -> {}",
            before,
            s.log.size_bytes()
        );
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 199);
        let p1 = s.fetch("g", "t", 1).unwrap();
        assert_eq!(
            (p1.offset, p1.leader_epoch, p1.metadata.as_str()),
            (398, 0, "m")
        );
        assert_eq!(s.fetch("h", "u", 3).unwrap().offset, 7);
        assert_eq!(s.fetch("h", "u", 4), None);
        assert_eq!(s.groups(), vec!["g".to_string(), "h".to_string()]);
        // New commits after compaction land and survive too.
        s.commit("g", vec![("t".into(), 0, 500, -1, String::new())])
            .await
            .unwrap();
        drop(s);
        assert_eq!(
            store(dir.path(), 1024).fetch("g", "t", 0).unwrap().offset,
            500
        );
    }

    #[test]
    fn an_interrupted_compaction_resolves_to_a_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(LOG_DIR);
        let compacting = dir.path().join(format!("{LOG_DIR}.compacting"));
        let old = dir.path().join(format!("{LOG_DIR}.old"));
        // Crash between the two renames: the complete rewrite is promoted.
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&compacting).unwrap();
        std::fs::write(compacting.join("marker"), b"x").unwrap();
        finish_interrupted_compaction(&live, &compacting, &old).unwrap();
        assert!(live.join("marker").exists() && !old.exists() && !compacting.exists());
        // Crash during the rewrite: the partial rewrite is dropped, the live log kept.
        std::fs::create_dir_all(&compacting).unwrap();
        finish_interrupted_compaction(&live, &compacting, &old).unwrap();
        assert!(live.join("marker").exists() && !compacting.exists());
    }
}
