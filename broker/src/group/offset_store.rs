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
use crate::log::batch::{decode_records, BatchHeader};
use crate::log::{BatchBuilder, FlushPolicy, LogConfig, LogError, PartitionLog};

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
    ) -> Result<Self, LogError> {
        let config = LogConfig {
            flush,
            segment_bytes: 64 << 20,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 16 << 20,
            ..LogConfig::default()
        };
        let (log, _) =
            PartitionLog::open(&data_dir.join("__consumer_offsets"), config, clock.clone())?;
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
