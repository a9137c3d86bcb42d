//! The topics the broker holds: their partition logs and their metadata, persisted so that a
//! restart brings every topic back with its partition count, id and configs.
//!
//! On-disk layout under the data directory:
//!
//! ```text
//! topics/<name>/topic.json        name, id, partition count, log config
//! topics/<name>/<partition>/      that partition's segments
//! trash/<name>-<uuid>/            a deleted topic, removed in the background and at next start
//! ```
//!
//! Invariant: a topic exists exactly when its `topic.json` exists. It is written last on create
//! (tmp file, fsync, rename, fsync dir) and the directory is moved to `trash/` first on delete, so
//! a crash in between leaves either the whole topic or none of it. A topic directory without
//! `topic.json` is an interrupted create and is moved to `trash/` at open.
//!
//! A topic that exists but cannot be opened (damaged metadata, a log whose recovery failed) is
//! *unavailable*: its files are left untouched, it is reported (`/healthz`, Metadata), and its
//! name cannot be created again until it is deleted, so nothing replaces it by accident.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::clock::Clock;
use crate::durable;
use crate::log::config::InvalidConfig;
use crate::log::{LogConfig, LogError, PartitionLog, SyncOnOpen};

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Upper bound on partitions per topic: each is a directory, a flusher thread and open files.
pub const MAX_PARTITIONS: i32 = 1024;
const META_FILE: &str = "topic.json";
const META_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum TopicError {
    #[error("invalid topic name {0:?}: use 1-249 characters of [a-zA-Z0-9._-], not . or ..")]
    InvalidName(String),
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    #[error("unknown topic {0}")]
    Unknown(String),
    #[error("invalid partition count {0}: must be within 1..={MAX_PARTITIONS}")]
    InvalidPartitions(i32),
    #[error("topic {name} has {current} partitions; a new count must be larger, not {requested}")]
    PartitionsNotIncreased {
        name: String,
        current: i32,
        requested: i32,
    },
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt topic metadata {path}: {reason}")]
    CorruptMetadata { path: PathBuf, reason: String },
    /// The topic is on disk but could not be opened at start; its files are left as they are.
    #[error("topic {name} exists but cannot be opened: {reason}")]
    Unavailable { name: String, reason: String },
    /// Creating it would pass one of the broker's [`TopicLimits`].
    #[error("{0}")]
    LimitReached(String),
}

/// How many topics and partitions one broker holds at most. Every partition is a directory,
/// open files, a memory-mapped index and a share of the flush pool, and every topic is read at
/// start: without caps a client creating topics in a loop exhausts file descriptors, memory
/// maps and start-up time for everyone. Topics found on disk at start are always opened, even
/// past the caps (lowering a cap never hides data); the caps apply to creations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    pub max_topics: usize,
    /// Partitions of all topics together (a topic alone is capped at [`MAX_PARTITIONS`]).
    pub max_partitions: usize,
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits {
            max_topics: 1000,
            max_partitions: 10_000,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TopicError {
    let context = context.into();
    move |source| TopicError::Io { context, source }
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let legal = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal {
        Ok(())
    } else {
        Err(TopicError::InvalidName(name.to_string()))
    }
}

/// What `topic.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicMeta {
    version: u32,
    name: String,
    id: Uuid,
    partitions: i32,
    config: LogConfig,
}

/// A topic and its open partition logs.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub config: LogConfig,
    partitions: Vec<Arc<PartitionLog>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<PartitionLog>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub fn partitions(&self) -> &[Arc<PartitionLog>] {
        &self.partitions
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }
}

/// All topics of the broker.
#[derive(Debug)]
pub struct TopicRegistry {
    data_dir: PathBuf,
    defaults: LogConfig,
    clock: Arc<dyn Clock>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Topics found on disk that could not be opened, with the reason.
    unavailable: std::sync::Mutex<BTreeMap<String, String>>,
    /// Names being created (with their partitions) or deleted (0) right now (see
    /// [`TopicRegistry::create`]). Creations in progress count against the limits.
    pending: std::sync::Mutex<BTreeMap<String, usize>>,
    limits: TopicLimits,
    /// Serialises changes to existing topics (configs, partition count), so two of them never
    /// write `topic.json` from the same old state and lose one another's change.
    changing: std::sync::Mutex<()>,
}

/// A name reserved for a create or delete in progress; released on drop.
struct Reservation<'a> {
    registry: &'a TopicRegistry,
    name: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.registry.pending_names().remove(&self.name);
    }
}

impl TopicRegistry {
    /// Opens every topic found under `data_dir`, syncing everything recovery finds. A topic that
    /// cannot be opened is logged, left untouched on disk (never deleted) and reported as
    /// unavailable; the others still open.
    pub fn open(
        data_dir: &Path,
        defaults: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TopicError> {
        Self::open_with(data_dir, defaults, clock, SyncOnOpen::All)
    }

    /// [`TopicRegistry::open`], with the partition logs opened by `sync` (see [`SyncOnOpen`]).
    pub fn open_with(
        data_dir: &Path,
        defaults: LogConfig,
        clock: Arc<dyn Clock>,
        sync: SyncOnOpen,
    ) -> Result<Self, TopicError> {
        defaults.validate()?;
        let topics_dir = data_dir.join("topics");
        fs::create_dir_all(&topics_dir)
            .map_err(io_err(format!("create {}", topics_dir.display())))?;
        let trash = data_dir.join("trash");
        if trash.exists() {
            fs::remove_dir_all(&trash).map_err(io_err(format!("empty {}", trash.display())))?;
        }
        let registry = TopicRegistry {
            data_dir: data_dir.to_path_buf(),
            defaults,
            clock,
            topics: RwLock::new(BTreeMap::new()),
            unavailable: std::sync::Mutex::new(BTreeMap::new()),
            pending: std::sync::Mutex::new(BTreeMap::new()),
            limits: TopicLimits::default(),
            changing: std::sync::Mutex::new(()),
        };
        let entries =
            fs::read_dir(&topics_dir).map_err(io_err(format!("list {}", topics_dir.display())))?;
        let mut loaded = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err(format!("list {}", topics_dir.display())))?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            if !dir.join(META_FILE).exists() {
                tracing::warn!(dir = %dir.display(), "topic directory without metadata (interrupted create); moving it to trash");
                registry.move_to_trash(&dir)?;
                continue;
            }
            match registry.load_topic(&dir, sync) {
                Ok(topic) => {
                    loaded.insert(topic.name.clone(), Arc::new(topic));
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot open topic; leaving its files untouched");
                    let name = entry.file_name().to_string_lossy().into_owned();
                    unavailable.insert(name, e.to_string());
                }
            }
        }
        tracing::info!(topics = loaded.len(), unavailable = unavailable.len(), dir = %data_dir.display(), "opened topics");
        *registry.topics.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        *registry.unavailable_map() = unavailable;
        Ok(registry)
    }

    fn unavailable_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.unavailable.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Topics on disk that could not be opened at start, with the reason.
    pub fn unavailable(&self) -> Vec<(String, String)> {
        self.unavailable_map()
            .iter()
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect()
    }

    /// Why the topic `name` is on disk but could not be opened, if it is.
    pub fn unavailable_reason(&self, name: &str) -> Option<String> {
        self.unavailable_map().get(name).cloned()
    }

    fn load_topic(&self, dir: &Path, sync: SyncOnOpen) -> Result<Topic, TopicError> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(io_err(format!("read {}", path.display())))?;
        let corrupt = |reason: String| TopicError::CorruptMetadata {
            path: path.clone(),
            reason,
        };
        let meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if meta.version != META_VERSION {
            return Err(corrupt(format!("unsupported version {}", meta.version)));
        }
        validate_topic_name(&meta.name)?;
        if dir.file_name().and_then(|n| n.to_str()) != Some(meta.name.as_str()) {
            return Err(corrupt(format!("names topic {:?}", meta.name)));
        }
        if !(1..=MAX_PARTITIONS).contains(&meta.partitions) {
            return Err(corrupt(format!("partition count {}", meta.partitions)));
        }
        meta.config.validate()?;
        self.open_partitions(dir, meta, sync)
    }

    fn open_partitions(
        &self,
        dir: &Path,
        meta: TopicMeta,
        sync: SyncOnOpen,
    ) -> Result<Topic, TopicError> {
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let (log, _) = PartitionLog::open_with(
                &dir.join(p.to_string()),
                meta.config.clone(),
                self.clock.clone(),
                sync,
            )?;
            partitions.push(Arc::new(log));
        }
        Ok(Topic {
            name: meta.name,
            id: meta.id,
            config: meta.config,
            partitions,
        })
    }

    /// The broker-wide default log config that topics start from.
    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_map().get(name).cloned()
    }

    /// All topics, by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.read_map().values().cloned().collect()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a topic with `partitions` partitions and `config` (usually the defaults with the
    /// request's overrides applied). Durable when it returns.
    ///
    /// Creating is file work (a directory, segment files and an fsync or two per partition: a
    /// few hundred milliseconds for 100 partitions here), so it runs without the registry's
    /// lock: the name is reserved first (a concurrent create of it fails as already existing,
    /// a delete as unknown), the topic is made on disk, and only the finished topic is inserted
    /// under the lock. Lookups of other topics never wait for it. Call it off the async runtime.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        config: LogConfig,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_topic_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        config.validate()?;
        let _reserved = self.reserve(name, partitions as usize)?;
        let dir = self.data_dir.join("topics").join(name);
        if dir.exists() {
            // Left over from a create that failed and could not clean up.
            self.move_to_trash(&dir)?;
        }
        let topic = match self.make_on_disk(&dir, name, partitions, config) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                // Nothing of a failed create may stay: without topic.json it would be moved to
                // the trash at the next start anyway.
                if dir.exists() {
                    if let Err(e2) = self.move_to_trash(&dir) {
                        tracing::warn!(dir = %dir.display(), error = %e2, "cannot clear a failed create");
                    }
                }
                return Err(e);
            }
        };
        self.write_map().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Makes a new topic's directory, partition logs and metadata, durably.
    fn make_on_disk(
        &self,
        dir: &Path,
        name: &str,
        partitions: i32,
        config: LogConfig,
    ) -> Result<Topic, TopicError> {
        fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
        let meta = TopicMeta {
            version: META_VERSION,
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            config,
        };
        // A new log has nothing to recover; its files and directory are synced as it is made.
        let topic = self.open_partitions(dir, meta.clone(), SyncOnOpen::Repaired)?;
        let meta_path = dir.join(META_FILE);
        durable::write_atomically(
            &meta_path,
            &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
        )
        .map_err(io_err(format!("write {}", meta_path.display())))?;
        // The topic's own directory entry, so the new topic survives a power loss.
        let topics_dir = self.data_dir.join("topics");
        durable::sync_dir(&topics_dir).map_err(io_err(format!("sync {}", topics_dir.display())))?;
        Ok(topic)
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `name` for a create of `partitions`: refused if it exists, is being created or
    /// deleted, is an unavailable topic's, or would pass the [`TopicLimits`] (counting the
    /// creations in progress). The reservation ends when the guard drops.
    fn reserve(&self, name: &str, partitions: usize) -> Result<Reservation<'_>, TopicError> {
        let mut pending = self.pending_names();
        let (topics, existing_partitions) = {
            let map = self.read_map();
            if pending.contains_key(name) || map.contains_key(name) {
                return Err(TopicError::AlreadyExists(name.to_string()));
            }
            let parts: usize = map.values().map(|t| t.partitions().len()).sum();
            (map.len(), parts)
        };
        if let Some(reason) = self.unavailable_reason(name) {
            return Err(TopicError::Unavailable {
                name: name.to_string(),
                reason,
            });
        }
        let creating = pending.values().filter(|p| **p > 0).count();
        if topics + creating >= self.limits.max_topics {
            return Err(TopicError::LimitReached(format!(
                "the broker holds at most {} topics (it has {topics})",
                self.limits.max_topics
            )));
        }
        let total = existing_partitions + pending.values().sum::<usize>() + partitions;
        if total > self.limits.max_partitions {
            return Err(TopicError::LimitReached(format!(
                "{partitions} more partitions would make {total}, over the broker's limit of {}",
                self.limits.max_partitions
            )));
        }
        pending.insert(name.to_string(), partitions);
        Ok(Reservation {
            registry: self,
            name: name.to_string(),
        })
    }

    /// The caps on creations (see [`TopicLimits`]); set once, before serving.
    pub fn with_limits(mut self, limits: TopicLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> TopicLimits {
        self.limits
    }

    fn pending_names(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes a topic: it disappears at once, its files are removed in the background. An
    /// unavailable topic's files are moved to the trash the same way. The rename to the trash
    /// (and its directory syncs) runs with the name reserved, not under the registry's lock.
    pub fn delete(&self, name: &str) -> Result<(), TopicError> {
        let _reserved = {
            let mut pending = self.pending_names();
            if pending.contains_key(name) {
                // Being created or deleted right now: not a topic to delete (yet).
                return Err(TopicError::Unknown(name.to_string()));
            }
            pending.insert(name.to_string(), 0);
            Reservation {
                registry: self,
                name: name.to_string(),
            }
        };
        let dir = self.data_dir.join("topics").join(name);
        if self.unavailable_map().contains_key(name) {
            self.move_to_trash(&dir)?;
            self.unavailable_map().remove(name);
            tracing::info!(topic = name, "deleted a topic that could not be opened");
            return Ok(());
        }
        let topic = self
            .write_map()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        if let Err(e) = self.move_to_trash(&dir) {
            self.write_map().insert(name.to_string(), topic);
            return Err(e);
        }
        tracing::info!(topic = name, "deleted topic");
        let trash = self.data_dir.join("trash");
        let spawned = std::thread::Builder::new()
            .name("topic-delete".into())
            .spawn(move || {
                // Close the logs (a final flush) before the files go.
                drop(topic);
                if let Ok(entries) = fs::read_dir(&trash) {
                    for e in entries.flatten() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            });
        if let Err(e) = spawned {
            // The files are in the trash, which the next start empties.
            tracing::warn!(error = %e, "cannot start the trash removal; it waits for the next start");
        }
        Ok(())
    }

    /// Puts a new log config in force for every partition of `name`, without a restart, and
    /// persists it in `topic.json` first (IncrementalAlterConfigs / AlterConfigs). Checked by
    /// [`LogConfig::validate`], the rule creation uses. File work: call it off the runtime.
    pub fn alter_config(&self, name: &str, config: LogConfig) -> Result<Arc<Topic>, TopicError> {
        config.validate()?;
        self.change(name, 0, |topic| {
            if config.flush != topic.config.flush {
                return Err(InvalidConfig(format!(
                    "flush.policy cannot change at run time (it is {})",
                    topic.config.flush
                ))
                .into());
            }
            Ok((config.clone(), Vec::new()))
        })
        .inspect(|t| {
            tracing::info!(topic = name, config = ?t.config, "topic config altered");
        })
    }

    /// Raises the partition count of `name` to `count` (CreatePartitions). The new partitions
    /// are made on disk before `topic.json` names them, so a crash in between leaves the old
    /// count (and empty directories the next increase reuses). File work: call it off the
    /// runtime.
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<Arc<Topic>, TopicError> {
        // Counted against the partition limit from the start, like a create's.
        let adding = self
            .get(name)
            .map(|t| (count - t.partition_count()).max(0) as usize)
            .unwrap_or(0);
        let topic = self.change(name, adding, |topic| {
            let current = topic.partition_count();
            if count <= current {
                return Err(TopicError::PartitionsNotIncreased {
                    name: name.to_string(),
                    current,
                    requested: count,
                });
            }
            if count > MAX_PARTITIONS {
                return Err(TopicError::InvalidPartitions(count));
            }
            let dir = self.data_dir.join("topics").join(name);
            let mut added = Vec::new();
            for p in current..count {
                // New and empty: nothing to recover; the log syncs its files as it makes them.
                let (log, _) = PartitionLog::open_with(
                    &dir.join(p.to_string()),
                    topic.config.clone(),
                    self.clock.clone(),
                    SyncOnOpen::Repaired,
                )?;
                added.push(Arc::new(log));
            }
            // The new partition directories' entries.
            durable::sync_dir(&dir).map_err(io_err(format!("sync {}", dir.display())))?;
            Ok((topic.config.clone(), added))
        })?;
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(topic)
    }

    /// Changes an existing topic: `f` gets the current topic and returns its new config and
    /// the partitions to add; the result is written to `topic.json` (atomically, durably), then
    /// put in force and published as a new [`Topic`] sharing the old partition logs.
    /// `adding`: partitions the change may add, reserved against the [`TopicLimits`].
    fn change(
        &self,
        name: &str,
        adding: usize,
        f: impl FnOnce(&Topic) -> Result<(LogConfig, Vec<Arc<PartitionLog>>), TopicError>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _serial = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        // Held while the files change, so a delete (or a create of the name) cannot run
        // between reading the topic and writing its metadata.
        let _reserved = {
            let mut pending = self.pending_names();
            if pending.contains_key(name) {
                return Err(TopicError::Unknown(name.to_string()));
            }
            if adding > 0 {
                let existing: usize = self.read_map().values().map(|t| t.partitions().len()).sum();
                let total = existing + pending.values().sum::<usize>() + adding;
                if total > self.limits.max_partitions {
                    return Err(TopicError::LimitReached(format!(
                        "{adding} more partitions would make {total}, over the broker's limit of {}",
                        self.limits.max_partitions
                    )));
                }
            }
            pending.insert(name.to_string(), adding);
            Reservation {
                registry: self,
                name: name.to_string(),
            }
        };
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let (config, added) = f(&old)?;
        let mut partitions = old.partitions.clone();
        partitions.extend(added);
        let meta = TopicMeta {
            version: META_VERSION,
            name: old.name.clone(),
            id: old.id,
            partitions: partitions.len() as i32,
            config: config.clone(),
        };
        let meta_path = self.data_dir.join("topics").join(name).join(META_FILE);
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| TopicError::CorruptMetadata {
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
        durable::write_atomically(&meta_path, &json)
            .map_err(io_err(format!("write {}", meta_path.display())))?;
        if config != old.config {
            for log in &partitions {
                log.set_config(config.clone())?;
            }
        }
        let topic = Arc::new(Topic {
            name: old.name.clone(),
            id: old.id,
            config,
            partitions,
        });
        self.write_map().insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    fn move_to_trash(&self, dir: &Path) -> Result<(), TopicError> {
        let trash = self.data_dir.join("trash");
        fs::create_dir_all(&trash).map_err(io_err(format!("create {}", trash.display())))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = trash.join(format!("{name}-{}", Uuid::new_v4()));
        durable::rename(dir, &target).map_err(io_err(format!("move {} to trash", dir.display())))
    }

    /// Applies retention to every partition of every topic; returns the segments deleted.
    pub fn enforce_retention(&self) -> usize {
        let mut deleted = 0;
        for topic in self.list() {
            for (p, log) in topic.partitions().iter().enumerate() {
                match log.enforce_retention() {
                    Ok(r) => deleted += r.deleted_segments,
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = p, error = %e, "retention failed")
                    }
                }
            }
        }
        deleted
    }

    /// Flushes every partition (clean shutdown).
    pub fn flush_all(&self) -> Result<(), TopicError> {
        for topic in self.list() {
            for log in topic.partitions() {
                log.flush()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["seckill", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
