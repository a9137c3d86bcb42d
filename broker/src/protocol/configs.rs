//! What DescribeConfigs, IncrementalAlterConfigs and AlterConfigs share: which resources have
//! configs here (topics, and this broker read-only), how a topic's settings are described
//! (value, source, read-only flag, type) and how an alteration is applied to a copy of them.
//! The three handlers only walk their requests; the rules live here once.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;
use thiserror::Error;

use crate::log::config::InvalidConfig;
use crate::log::LogConfig;
use crate::state::Broker;
use crate::topics::TopicError;

/// Kafka's `ConfigResource.Type` codes.
pub(crate) const TOPIC: i8 = 2;
pub(crate) const BROKER: i8 = 4;

/// Kafka's `ConfigSource` codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
const STRING: i8 = 2;
const INT: i8 = 3;
const SHORT: i8 = 4;
const LONG: i8 = 5;
const LIST: i8 = 7;

/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Why a config resource cannot be described or altered.
#[derive(Debug, Error)]
pub(crate) enum ConfigError {
    #[error("resource type {0} has no configs on this broker (topics: 2, broker: 4)")]
    UnsupportedResource(i8),
    #[error("broker {0:?} is not this broker (node {1})")]
    OtherBroker(String, i32),
    #[error("broker configs are read-only here: they are set by the broker's flags at start")]
    BrokerReadOnly,
    #[error("unknown config operation {0} for {1}")]
    UnknownOperation(i8, String),
    #[error("{0} is not a list config; APPEND and SUBTRACT apply only to list configs")]
    NotAList(String),
    #[error("{0} is set to null; use DELETE to return it to the default")]
    NullValue(String),
    #[error("unknown topic config {0}")]
    UnknownName(String),
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
    #[error(transparent)]
    Topic(#[from] TopicError),
}

/// A resource a request names, checked.
#[derive(Debug)]
pub(crate) enum Resource {
    Topic(String),
    Broker,
}

impl Resource {
    pub(crate) fn parse(broker: &Broker, kind: i8, name: &str) -> Result<Self, ConfigError> {
        match kind {
            TOPIC => Ok(Resource::Topic(name.to_string())),
            // An empty name is the cluster-wide default, which here is this broker's own.
            BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                Ok(Resource::Broker)
            }
            BROKER => Err(ConfigError::OtherBroker(
                name.to_string(),
                broker.config.node_id,
            )),
            other => Err(ConfigError::UnsupportedResource(other)),
        }
    }
}

/// One described setting, before it becomes the wire struct.
pub(crate) struct Entry {
    name: &'static str,
    value: String,
    source: i8,
    read_only: bool,
    kind: i8,
    doc: &'static str,
}

/// Type and documentation of a topic config, by its Kafka name.
fn topic_config_info(name: &str) -> (i8, &'static str) {
    match name {
        "segment.bytes" => (INT, "Segment file size; a segment is rolled before it would grow past it."),
        "segment.ms" => (LONG, "A segment is rolled once its first append is this old."),
        "retention.ms" => (LONG, "Sealed segments whose newest record is older than this are deleted; -1 keeps them."),
        "retention.bytes" => (LONG, "Oldest sealed segments are deleted while a partition is larger than this; -1 means no limit."),
        "index.interval.bytes" => (INT, "Log bytes between two offset-index entries (applies to new segments)."),
        "max.message.bytes" => (INT, "Largest record batch a producer may append."),
        "message.timestamp.type" => (STRING, "CreateTime or LogAppendTime."),
        "cleanup.policy" => (LIST, "Only delete is supported (no compaction)."),
        "flush.policy" => (STRING, "This broker's own: fsync, interval:<ms> or never. Fixed when the topic is created."),
        _ => (STRING, ""),
    }
}

/// Settings that cannot be changed at run time: the flush policy decides what the high
/// watermark means, and `cleanup.policy` has only one possible value.
fn topic_config_read_only(name: &str) -> bool {
    name == "flush.policy"
}

/// A topic's settings. Source: DYNAMIC_TOPIC_CONFIG where the topic's value differs from the
/// broker default it would get now, else DEFAULT_CONFIG. (Topics keep their whole config, not
/// a list of overrides, so a value set explicitly to the default is reported as a default.)
pub(crate) fn describe_topic(config: &LogConfig, defaults: &LogConfig) -> Vec<Entry> {
    let default_pairs = defaults.to_pairs();
    config
        .to_pairs()
        .into_iter()
        .map(|(name, value)| {
            let is_default = default_pairs.iter().any(|(n, v)| *n == name && *v == value);
            let (kind, doc) = topic_config_info(name);
            Entry {
                name,
                value,
                source: if is_default {
                    DEFAULT_CONFIG
                } else {
                    DYNAMIC_TOPIC_CONFIG
                },
                read_only: topic_config_read_only(name),
                kind,
                doc,
            }
        })
        .collect()
}

/// This broker's settings under Kafka's broker config names, all read-only (they come from the
/// command line). STATIC_BROKER_CONFIG where a flag changed the built-in default.
pub(crate) fn describe_broker(broker: &Broker) -> Vec<Entry> {
    let defaults = broker.topics.defaults();
    let builtin = LogConfig::default().to_pairs();
    let broker_name = |topic_name: &str| -> Option<&'static str> {
        Some(match topic_name {
            "segment.bytes" => "log.segment.bytes",
            "segment.ms" => "log.roll.ms",
            "retention.ms" => "log.retention.ms",
            "retention.bytes" => "log.retention.bytes",
            "index.interval.bytes" => "log.index.interval.bytes",
            "max.message.bytes" => "message.max.bytes",
            "message.timestamp.type" => "log.message.timestamp.type",
            "cleanup.policy" => "log.cleanup.policy",
            "flush.policy" => "log.flush.policy",
            _ => return None,
        })
    };
    let mut out: Vec<Entry> = defaults
        .to_pairs()
        .into_iter()
        .filter_map(|(name, value)| {
            let is_builtin = builtin.iter().any(|(n, v)| *n == name && *v == value);
            let (kind, doc) = topic_config_info(name);
            Some(Entry {
                name: broker_name(name)?,
                value,
                source: if is_builtin {
                    DEFAULT_CONFIG
                } else {
                    STATIC_BROKER_CONFIG
                },
                read_only: true,
                kind,
                doc,
            })
        })
        .collect();
    out.push(Entry {
        name: "broker.id",
        value: broker.config.node_id.to_string(),
        source: STATIC_BROKER_CONFIG,
        read_only: true,
        kind: INT,
        doc: "This broker's node id.",
    });
    out.push(Entry {
        name: "num.partitions",
        value: broker.config.default_partitions.to_string(),
        source: STATIC_BROKER_CONFIG,
        read_only: true,
        kind: INT,
        doc: "Partitions of an auto-created topic or of a CreateTopics request for -1.",
    });
    out.push(Entry {
        name: "auto.create.topics.enable",
        value: broker.config.auto_create_topics.to_string(),
        source: STATIC_BROKER_CONFIG,
        read_only: true,
        kind: 1, // BOOLEAN
        doc: "Whether Metadata creates unknown topics.",
    });
    out.push(Entry {
        name: "default.replication.factor",
        value: "1".into(),
        source: DEFAULT_CONFIG,
        read_only: true,
        kind: SHORT,
        doc: "A single node: always 1.",
    });
    out
}

/// The wire form of `entries`, keeping only `keys` when given (unknown keys are left out, as
/// Kafka does).
pub(crate) fn to_wire(
    entries: Vec<Entry>,
    keys: Option<&[StrBytes]>,
    version: i16,
    synonyms: bool,
    documentation: bool,
) -> Vec<DescribeConfigsResourceResult> {
    entries
        .into_iter()
        .filter(|e| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name)))
        .map(|e| {
            let mut r = DescribeConfigsResourceResult::default();
            r.name = StrBytes::from_static_str(e.name);
            r.value = Some(StrBytes::from_string(e.value.clone()));
            r.read_only = e.read_only;
            r.config_source = e.source;
            r.is_sensitive = false;
            if synonyms {
                let mut s = DescribeConfigsSynonym::default();
                s.name = StrBytes::from_static_str(e.name);
                s.value = Some(StrBytes::from_string(e.value));
                s.source = e.source;
                r.synonyms = vec![s];
            }
            if version >= 3 {
                r.config_type = e.kind;
                if documentation {
                    r.documentation = Some(StrBytes::from_static_str(e.doc));
                }
            }
            r
        })
        .collect()
}

/// The broker default of one topic config, by name.
fn default_value(defaults: &LogConfig, name: &str) -> Result<String, ConfigError> {
    defaults
        .to_pairs()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| ConfigError::UnknownName(name.to_string()))
}

/// Applies one IncrementalAlterConfigs operation to `config`. The result is checked as a whole
/// by [`LogConfig::validate`] afterwards.
pub(crate) fn apply_incremental(
    config: &mut LogConfig,
    defaults: &LogConfig,
    name: &str,
    op: i8,
    value: Option<&str>,
) -> Result<(), ConfigError> {
    match op {
        SET => {
            let value = value.ok_or_else(|| ConfigError::NullValue(name.to_string()))?;
            config.set(name, value)?;
        }
        DELETE => {
            let value = default_value(defaults, name)?;
            config.set(name, &value)?;
        }
        APPEND | SUBTRACT => {
            // The only list config, cleanup.policy, has one possible value here.
            default_value(defaults, name)?;
            return Err(ConfigError::NotAList(name.to_string()));
        }
        other => return Err(ConfigError::UnknownOperation(other, name.to_string())),
    }
    Ok(())
}

/// AlterConfigs (legacy): the request is the topic's whole set of overrides; every setting it
/// leaves out returns to the broker default (Kafka's semantics). The flush policy stays, as it
/// cannot change at run time.
pub(crate) fn apply_legacy<'a>(
    current: &LogConfig,
    defaults: &LogConfig,
    pairs: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<LogConfig, ConfigError> {
    let mut config = defaults.clone();
    config.flush = current.flush;
    for (name, value) in pairs {
        let value = value.ok_or_else(|| ConfigError::NullValue(name.to_string()))?;
        config.set(name, value)?;
    }
    Ok(config)
}

/// A resource's error code and message in an (Incremental)AlterConfigs answer.
pub(crate) fn answer(outcome: Result<(), ConfigError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (super::error::NONE, None),
        Err(e) => (
            super::error::config_error_code(&e),
            Some(StrBytes::from_string(e.to_string())),
        ),
    }
}

/// What a caller the ACLs refuse gets for a config resource: Kafka's authorizer codes.
pub(crate) fn denied(resource_type: i8) -> (i16, &'static str) {
    if resource_type == BROKER {
        (
            kafka_protocol::ResponseError::ClusterAuthorizationFailed.code(),
            "Authorization failed: no ACL allows this on the cluster",
        )
    } else {
        (
            kafka_protocol::ResponseError::TopicAuthorizationFailed.code(),
            "Authorization failed: no ACL allows this on the topic",
        )
    }
}

/// What reading or altering the configs of a resource needs: `op` on the cluster for a broker
/// resource, on the topic for a topic.
pub(crate) fn need(op: crate::acl::Operation, resource_type: i8, name: &str) -> super::Need {
    use crate::acl::{ResourceType, CLUSTER};
    if resource_type == BROKER {
        vec![(op, ResourceType::Cluster, CLUSTER.to_string())]
    } else {
        vec![(op, ResourceType::Topic, name.to_string())]
    }
}

/// One resource of an (Incremental)AlterConfigs request: broker configs are read-only; a
/// topic's new config is what `change` makes of its current one, held to the bounds of what a
/// client may set (`keys` are the names the request sets) and, unless `validate_only`, persisted
/// and put in force. File work: call it off the runtime.
pub(crate) fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    resource_name: &str,
    keys: &[&str],
    validate_only: bool,
    change: impl FnOnce(&LogConfig, &LogConfig) -> Result<LogConfig, ConfigError>,
) -> Result<(), ConfigError> {
    match Resource::parse(broker, resource_type, resource_name)? {
        Resource::Broker => Err(ConfigError::BrokerReadOnly),
        Resource::Topic(name) => {
            let topic = broker
                .topics
                .get(&name)
                .ok_or_else(|| TopicError::Unknown(name.clone()))?;
            let config = change(&topic.config, broker.topics.defaults())?;
            config.validate_client_set(keys)?;
            if !validate_only {
                broker.topics.alter_config(&name, config)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::FlushPolicy;

    fn sources(config: &LogConfig, defaults: &LogConfig) -> Vec<(&'static str, i8)> {
        describe_topic(config, defaults)
            .into_iter()
            .map(|e| (e.name, e.source))
            .filter(|(_, s)| *s != DEFAULT_CONFIG)
            .collect()
    }

    #[test]
    fn set_and_delete_change_one_setting_and_report_it_as_the_topics_own() {
        let defaults = LogConfig::default();
        let mut c = defaults.clone();
        apply_incremental(&mut c, &defaults, "retention.bytes", SET, Some("2048")).unwrap();
        assert_eq!(c.retention_bytes, 2048);
        assert_eq!(
            sources(&c, &defaults),
            vec![("retention.bytes", DYNAMIC_TOPIC_CONFIG)]
        );
        apply_incremental(&mut c, &defaults, "retention.bytes", DELETE, None).unwrap();
        assert_eq!(c, defaults);
        assert!(sources(&c, &defaults).is_empty());
    }

    #[test]
    fn bad_operations_say_what_is_wrong() {
        let defaults = LogConfig::default();
        let mut c = defaults.clone();
        let err = |r: Result<(), ConfigError>| r.unwrap_err().to_string();
        assert!(err(apply_incremental(&mut c, &defaults, "nope", SET, Some("1"))).contains("nope"));
        assert!(err(apply_incremental(&mut c, &defaults, "nope", DELETE, None)).contains("nope"));
        assert!(err(apply_incremental(
            &mut c,
            &defaults,
            "retention.ms",
            SET,
            None
        ))
        .contains("null"));
        assert!(matches!(
            apply_incremental(&mut c, &defaults, "cleanup.policy", APPEND, Some("delete")),
            Err(ConfigError::NotAList(_))
        ));
        assert!(matches!(
            apply_incremental(&mut c, &defaults, "retention.ms", 7, Some("1")),
            Err(ConfigError::UnknownOperation(7, _))
        ));
        assert_eq!(c, defaults, "nothing applied");
    }

    #[test]
    fn legacy_alter_resets_what_it_leaves_out_but_keeps_the_flush_policy() {
        let defaults = LogConfig::default();
        let current = LogConfig {
            retention_bytes: 4096,
            flush: FlushPolicy::Never,
            ..defaults.clone()
        };
        let c = apply_legacy(
            &current,
            &defaults,
            [("retention.ms", Some("1000"))].into_iter(),
        )
        .unwrap();
        assert_eq!(
            (c.retention_ms, c.retention_bytes, c.flush),
            (1000, -1, FlushPolicy::Never)
        );
        assert!(apply_legacy(&current, &defaults, [("retention.ms", None)].into_iter()).is_err());
    }
}
