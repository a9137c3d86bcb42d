//! Per-partition log settings: segment size and age, retention, index density, message size limit,
//! timestamp type and the flush policy that decides when an append counts as durable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Kafka's default `max.message.bytes` (1 MiB + record batch overhead).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// Kafka's default `log.segment.bytes`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Kafka's default `log.roll.ms` (7 days).
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's default `retention.ms` (7 days).
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// One offset-index entry per this many log bytes (Kafka's `index.interval.bytes`).
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
/// Positions in the offset index are u32 and a segment must stay addressable by them.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;
/// Largest offset index a segment may need (Kafka's `segment.index.bytes` is 10 MiB): the index
/// is preallocated and memory-mapped per segment, so `segment.bytes / index.interval.bytes`
/// decides the address space every partition takes.
pub const MAX_INDEX_BYTES: usize = 16 << 20;
/// Bounds on what a client may set on a topic it creates (see
/// [`LogConfig::validate_client_set`]); the operator's own flags are checked by `validate` only.
pub const CLIENT_MIN_SEGMENT_BYTES: u64 = 1 << 20;
pub const CLIENT_MIN_SEGMENT_MS: i64 = 1000;
pub const CLIENT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// When an appended batch is forced to stable storage, and so when it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FlushPolicy {
    /// An append is acknowledged only after an `fdatasync` that covers it has returned.
    /// Appends that arrive while a sync runs share the next one (group commit).
    /// Consumers see only synced data, so nothing they read can vanish in a crash.
    Fsync,
    /// Acknowledged at once; a background flush runs every `ms`. A power loss can lose the
    /// last `ms` of acknowledged appends (a process crash loses nothing: the page cache survives).
    Interval(u64),
    /// Acknowledged at once; the kernel writes back when it likes (flushed on clean shutdown).
    Never,
}

impl FlushPolicy {
    pub fn interval(&self) -> Option<Duration> {
        match self {
            FlushPolicy::Interval(ms) => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::Fsync => f.write_str("fsync"),
            FlushPolicy::Interval(ms) => write!(f, "interval:{ms}"),
            FlushPolicy::Never => f.write_str("never"),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid flush policy {0:?}: expected `fsync`, `interval:<ms>` (ms >= 1) or `never`")]
pub struct ParseFlushPolicyError(String);

impl FromStr for FlushPolicy {
    type Err = ParseFlushPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseFlushPolicyError(s.to_string());
        match s.trim() {
            "fsync" => Ok(FlushPolicy::Fsync),
            "never" => Ok(FlushPolicy::Never),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .or_else(|| other.strip_prefix("interval="))
                    .ok_or_else(err)?;
                let ms = ms.trim().trim_end_matches("ms");
                match ms.parse::<u64>() {
                    Ok(ms) if ms >= 1 => Ok(FlushPolicy::Interval(ms)),
                    _ => Err(err()),
                }
            }
        }
    }
}

impl TryFrom<String> for FlushPolicy {
    type Error = ParseFlushPolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FlushPolicy> for String {
    fn from(p: FlushPolicy) -> String {
        p.to_string()
    }
}

/// Which timestamp the log keeps for each batch (Kafka's `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// Settings of one partition log. Persisted with the topic so a restart restores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Roll to a new segment before the active one would exceed this size.
    pub segment_bytes: u64,
    /// Roll to a new segment once the active one's first append is this old.
    pub segment_ms: i64,
    /// Delete sealed segments whose newest timestamp is older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// Delete oldest sealed segments while the log is larger than this; -1 means no size limit.
    pub retention_bytes: i64,
    /// Log bytes between two offset-index entries.
    pub index_interval_bytes: u32,
    /// Largest record batch accepted.
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: -1,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            flush: FlushPolicy::Fsync,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid log config: {0}")]
pub struct InvalidConfig(pub String);

impl LogConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bad = |m: String| Err(InvalidConfig(m));
        if self.segment_bytes < 1024 || self.segment_bytes > MAX_SEGMENT_BYTES {
            return bad(format!(
                "segment_bytes {} must be within 1024..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if self.segment_ms < 1 {
            return bad(format!("segment_ms {} must be >= 1", self.segment_ms));
        }
        if self.retention_ms < -1 || self.retention_ms == 0 {
            return bad(format!(
                "retention_ms {} must be -1 or >= 1",
                self.retention_ms
            ));
        }
        if self.retention_bytes < -1 || self.retention_bytes == 0 {
            return bad(format!(
                "retention_bytes {} must be -1 or >= 1",
                self.retention_bytes
            ));
        }
        if self.index_interval_bytes < 1 {
            return bad("index_interval_bytes must be >= 1".into());
        }
        if self.max_message_bytes < crate::log::batch::HEADER_LEN
            || self.max_message_bytes as u64 > MAX_SEGMENT_BYTES
        {
            return bad(format!(
                "max_message_bytes {} must be within {}..={MAX_SEGMENT_BYTES}",
                self.max_message_bytes,
                crate::log::batch::HEADER_LEN,
            ));
        }
        let index_bytes = self.max_index_entries() * 8;
        if index_bytes > MAX_INDEX_BYTES {
            return bad(format!(
                "segment_bytes {} / index_interval_bytes {} needs a {index_bytes}-byte offset index per segment, over {MAX_INDEX_BYTES}",
                self.segment_bytes, self.index_interval_bytes
            ));
        }
        Ok(())
    }

    /// [`LogConfig::validate`], plus the tighter bounds on what a client may set when it creates
    /// a topic: a client choosing `segment.ms=1` or `segment.bytes=1024` would make the broker
    /// create files (and fsync them) on nearly every append, for every partition it asks for,
    /// which is a denial of service, not a setting. Kafka 4.0 likewise raised the minimum
    /// `segment.bytes` to 1 MiB. Only the keys in `set_by_client` are held to them: the rest
    /// are the operator's defaults.
    pub fn validate_client_set(&self, set_by_client: &[&str]) -> Result<(), InvalidConfig> {
        self.validate()?;
        let bad = |m: String| Err(InvalidConfig(m));
        let set = |key: &str| set_by_client.contains(&key);
        if set("segment.bytes") && self.segment_bytes < CLIENT_MIN_SEGMENT_BYTES {
            return bad(format!(
                "segment.bytes {} is below the minimum of {CLIENT_MIN_SEGMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if set("segment.ms") && self.segment_ms < CLIENT_MIN_SEGMENT_MS {
            return bad(format!(
                "segment.ms {} is below the minimum of {CLIENT_MIN_SEGMENT_MS}",
                self.segment_ms
            ));
        }
        if set("max.message.bytes") && self.max_message_bytes > CLIENT_MAX_MESSAGE_BYTES {
            return bad(format!(
                "max.message.bytes {} is over the maximum of {CLIENT_MAX_MESSAGE_BYTES}",
                self.max_message_bytes
            ));
        }
        Ok(())
    }

    /// Applies one topic config given by name, as Kafka clients send them in CreateTopics
    /// (`retention.ms`, `segment.bytes`, ...). `flush.policy` is this broker's own key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), InvalidConfig> {
        fn num<T: FromStr>(key: &str, value: &str) -> Result<T, InvalidConfig> {
            value
                .trim()
                .parse()
                .map_err(|_| InvalidConfig(format!("{key}: {value:?} is not a valid number")))
        }
        match key {
            "segment.bytes" => self.segment_bytes = num(key, value)?,
            "segment.ms" => self.segment_ms = num(key, value)?,
            "retention.ms" => self.retention_ms = num(key, value)?,
            "retention.bytes" => self.retention_bytes = num(key, value)?,
            "index.interval.bytes" => self.index_interval_bytes = num(key, value)?,
            "max.message.bytes" => self.max_message_bytes = num(key, value)?,
            "message.timestamp.type" => {
                self.timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(InvalidConfig(format!(
                            "{key}: {value:?} is not CreateTime or LogAppendTime"
                        )))
                    }
                }
            }
            "flush.policy" => {
                self.flush = value
                    .parse()
                    .map_err(|e: ParseFlushPolicyError| InvalidConfig(e.to_string()))?
            }
            "cleanup.policy" if value == "delete" => {}
            _ => {
                return Err(InvalidConfig(format!(
                    "unsupported topic config {key}={value}"
                )))
            }
        }
        Ok(())
    }

    /// The settings as Kafka topic config pairs (for DescribeConfigs and CreateTopics replies).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                match self.timestamp_type {
                    TimestampType::CreateTime => "CreateTime".into(),
                    TimestampType::LogAppendTime => "LogAppendTime".into(),
                },
            ),
            ("cleanup.policy", "delete".into()),
            ("flush.policy", self.flush.to_string()),
        ]
    }

    /// Most offset-index entries one segment can need: one per full interval, plus the entry a
    /// batch larger than the interval can add on its own, plus the final one written at seal.
    pub(crate) fn max_index_entries(&self) -> usize {
        (self.segment_bytes / self.index_interval_bytes.max(1) as u64) as usize + 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policy_round_trips_and_rejects_garbage() {
        for p in [
            FlushPolicy::Fsync,
            FlushPolicy::Interval(25),
            FlushPolicy::Never,
        ] {
            assert_eq!(p.to_string().parse::<FlushPolicy>().unwrap(), p);
        }
        assert_eq!(
            "interval=5ms".parse::<FlushPolicy>().unwrap(),
            FlushPolicy::Interval(5)
        );
        for bad in [
            "",
            "sometimes",
            "interval:",
            "interval:0",
            "interval:-3",
            "interval:x",
        ] {
            assert!(bad.parse::<FlushPolicy>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(LogConfig::default().validate().is_ok());
        let c = LogConfig {
            segment_bytes: 10,
            ..LogConfig::default()
        };
        assert!(c.validate().unwrap_err().0.contains("segment_bytes"));
        let c = LogConfig {
            retention_ms: 0,
            ..LogConfig::default()
        };
        assert!(c.validate().unwrap_err().0.contains("retention_ms"));
        let json = r#"{"segment_bytes": 4096, "flush": "interval:10"}"#;
        let c: LogConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.flush, FlushPolicy::Interval(10));
        assert!(serde_json::from_str::<LogConfig>(r#"{"flush": "bogus"}"#).is_err());
        assert!(serde_json::from_str::<LogConfig>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn kafka_style_keys_apply_and_round_trip() {
        let mut c = LogConfig::default();
        c.set("retention.ms", "1000").unwrap();
        c.set("message.timestamp.type", "LogAppendTime").unwrap();
        c.set("flush.policy", "never").unwrap();
        let mut d = LogConfig::default();
        for (k, v) in c.to_pairs() {
            d.set(k, &v).unwrap();
        }
        assert_eq!(c, d);
        assert!(c
            .set("retention.ms", "soon")
            .unwrap_err()
            .0
            .contains("retention.ms"));
        assert!(c.set("cleanup.policy", "compact").is_err());
        assert!(c.set("no.such.key", "1").is_err());
    }
}
