//! The broker's Prometheus metrics: traffic per topic, request latency per API, connections, and
//! per-partition log offsets and sizes (read from the logs at scrape time, so they are never
//! stale and cost nothing on the hot path).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::group::GroupCoordinator;
use crate::log::BatchHeader;
use crate::topics::TopicRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPartitionLabel {
    group: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why the broker closed a client's connection itself.
#[derive(Clone, Copy, Debug)]
pub enum ClosedBecause {
    /// The address already had `max_connections_per_address` open.
    PerAddressLimit,
    /// No request within `idle_timeout`.
    Idle,
    /// The address already had `max_unauthenticated_connections_per_address` connections that
    /// had not logged in yet.
    UnauthenticatedLimit,
    /// The TLS handshake failed (wrong CA, expired certificate, a plaintext client on a TLS
    /// listener, ...) or did not finish in time.
    TlsHandshake,
}

impl ClosedBecause {
    const ALL: [ClosedBecause; 4] = [
        ClosedBecause::PerAddressLimit,
        ClosedBecause::Idle,
        ClosedBecause::TlsHandshake,
        ClosedBecause::UnauthenticatedLimit,
    ];

    fn label(self) -> &'static str {
        match self {
            ClosedBecause::PerAddressLimit => "per_address_limit",
            ClosedBecause::Idle => "idle",
            ClosedBecause::TlsHandshake => "tls_handshake",
            ClosedBecause::UnauthenticatedLimit => "unauthenticated_limit",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabel {
    api: String,
}

/// A SASL outcome: the mechanism (one of the three, or `unsupported` for a handshake naming
/// another: the client's string is not a label, so it cannot grow the series) and, for failures,
/// why (`invalid_credentials`, `malformed`, `unsupported_mechanism`, `illegal_state`,
/// `unauthenticated_request`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SaslLabel {
    mechanism: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MechanismLabel {
    mechanism: String,
}

#[derive(Debug)]
pub struct Metrics {
    sasl_failures: Family<SaslLabel, Counter>,
    sasl_successes: Family<MechanismLabel, Counter>,
    registry: Registry,
    bytes_in: Family<TopicLabel, Counter>,
    messages_in: Family<TopicLabel, Counter>,
    bytes_out: Family<TopicLabel, Counter>,
    messages_out: Family<TopicLabel, Counter>,
    request_seconds: Family<ApiLabel, Histogram>,
    connections: Gauge,
    connections_accepted: Counter,
    connections_closed: Family<ReasonLabel, Counter>,
    log_end_offset: Family<PartitionLabel, Gauge>,
    high_watermark: Family<PartitionLabel, Gauge>,
    log_start_offset: Family<PartitionLabel, Gauge>,
    log_size_bytes: Family<PartitionLabel, Gauge>,
    log_segments: Family<PartitionLabel, Gauge>,
    log_flushes: Family<PartitionLabel, Gauge>,
    partition_unwritable: Family<PartitionLabel, Gauge>,
    group_members: Family<GroupLabel, Gauge>,
    group_generation: Family<GroupLabel, Gauge>,
    group_committed_offset: Family<GroupPartitionLabel, Gauge>,
    group_lag: Family<GroupPartitionLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("broker");
        let m = Metrics {
            bytes_in: Family::default(),
            messages_in: Family::default(),
            bytes_out: Family::default(),
            messages_out: Family::default(),
            // 50 µs .. ~27 s: from a page-cache append to a long-poll Fetch.
            request_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.00005, 2.0, 20))
            }),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_closed: Family::default(),
            sasl_failures: Family::default(),
            sasl_successes: Family::default(),
            log_end_offset: Family::default(),
            high_watermark: Family::default(),
            log_start_offset: Family::default(),
            log_size_bytes: Family::default(),
            log_segments: Family::default(),
            log_flushes: Family::default(),
            partition_unwritable: Family::default(),
            group_members: Family::default(),
            group_generation: Family::default(),
            group_committed_offset: Family::default(),
            group_lag: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "bytes_in",
            "Record batch bytes appended",
            m.bytes_in.clone(),
        );
        r.register("messages_in", "Records appended", m.messages_in.clone());
        r.register(
            "bytes_out",
            "Record batch bytes served by Fetch",
            m.bytes_out.clone(),
        );
        r.register(
            "messages_out",
            "Records served by Fetch",
            m.messages_out.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, per API",
            m.request_seconds.clone(),
        );
        r.register(
            "connections",
            "Open client connections",
            m.connections.clone(),
        );
        r.register(
            "connections_accepted",
            "Client connections accepted",
            m.connections_accepted.clone(),
        );
        for because in ClosedBecause::ALL {
            // Present at 0 from the start, so a dashboard or alert sees the series.
            let _ = m.connections_closed.get_or_create(&ReasonLabel {
                reason: because.label(),
            });
        }
        r.register(
            "connections_closed_by_broker",
            "Client connections the broker closed itself, by reason",
            m.connections_closed.clone(),
        );
        r.register(
            "sasl_authentication_failures",
            "Failed SASL authentications (each closes its connection), by mechanism and reason",
            m.sasl_failures.clone(),
        );
        r.register(
            "sasl_authentications",
            "Successful SASL authentications, by mechanism",
            m.sasl_successes.clone(),
        );
        r.register(
            "log_end_offset",
            "Next offset to be written",
            m.log_end_offset.clone(),
        );
        r.register(
            "high_watermark",
            "Offset below which records are visible to consumers",
            m.high_watermark.clone(),
        );
        r.register(
            "log_start_offset",
            "First retained offset",
            m.log_start_offset.clone(),
        );
        r.register(
            "log_size_bytes",
            "Bytes in all segments of the partition",
            m.log_size_bytes.clone(),
        );
        r.register(
            "log_segments",
            "Segments of the partition",
            m.log_segments.clone(),
        );
        r.register(
            "log_flushes",
            "Completed fdatasync rounds of the partition since start",
            m.log_flushes.clone(),
        );
        r.register(
            "partition_unwritable",
            "1 while the partition refuses writes (disk full, a failed roll, stopped after a failed fsync), else 0",
            m.partition_unwritable.clone(),
        );
        r.register(
            "group_members",
            "Members of the consumer group",
            m.group_members.clone(),
        );
        r.register(
            "group_generation",
            "Generation of the consumer group",
            m.group_generation.clone(),
        );
        r.register(
            "group_committed_offset",
            "Offset committed by the group (-1: none yet)",
            m.group_committed_offset.clone(),
        );
        r.register(
            "group_lag",
            "High watermark minus the group's committed offset",
            m.group_lag.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn record_append(&self, topic: &str, bytes: usize, messages: i64) {
        let l = TopicLabel {
            topic: topic.to_string(),
        };
        self.bytes_in.get_or_create(&l).inc_by(bytes as u64);
        self.messages_in
            .get_or_create(&l)
            .inc_by(messages.max(0) as u64);
    }

    /// Counts the batches served from `records` (headers only; no decoding).
    pub fn record_fetch(&self, topic: &str, records: &[u8]) {
        if records.is_empty() {
            return;
        }
        let mut messages = 0u64;
        let mut rest = records;
        while let Ok(h) = BatchHeader::parse(rest) {
            messages += h.records_count.max(0) as u64;
            if h.total_len() >= rest.len() {
                break;
            }
            rest = &rest[h.total_len()..];
        }
        let l = TopicLabel {
            topic: topic.to_string(),
        };
        self.bytes_out
            .get_or_create(&l)
            .inc_by(records.len() as u64);
        self.messages_out.get_or_create(&l).inc_by(messages);
    }

    pub fn record_request(&self, api: &str, took: Duration) {
        self.request_seconds
            .get_or_create(&ApiLabel {
                api: api.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_accepted.inc();
    }

    /// A failed SASL step, handshake or pre-authentication request.
    pub fn sasl_failure(&self, mechanism: &str, reason: &str) {
        self.sasl_failures
            .get_or_create(&SaslLabel {
                mechanism: mechanism.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn sasl_success(&self, mechanism: &str) {
        self.sasl_successes
            .get_or_create(&MechanismLabel {
                mechanism: mechanism.to_string(),
            })
            .inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn closed_by_broker(&self, because: ClosedBecause) {
        self.connections_closed
            .get_or_create(&ReasonLabel {
                reason: because.label(),
            })
            .inc();
    }

    /// The exposition text, with the log and group gauges refreshed first.
    pub fn render(&self, topics: &TopicRegistry, groups: &GroupCoordinator) -> String {
        for family in [
            &self.log_end_offset,
            &self.high_watermark,
            &self.log_start_offset,
            &self.log_size_bytes,
            &self.log_segments,
            &self.log_flushes,
            &self.partition_unwritable,
        ] {
            family.clear(); // deleted topics disappear
        }
        for topic in topics.list() {
            for (p, log) in topic.partitions().iter().enumerate() {
                let l = PartitionLabel {
                    topic: topic.name.clone(),
                    partition: p.to_string(),
                };
                self.log_end_offset
                    .get_or_create(&l)
                    .set(log.log_end_offset());
                self.high_watermark
                    .get_or_create(&l)
                    .set(log.high_watermark());
                self.log_start_offset
                    .get_or_create(&l)
                    .set(log.log_start_offset());
                self.log_size_bytes
                    .get_or_create(&l)
                    .set(log.size_bytes() as i64);
                self.log_segments
                    .get_or_create(&l)
                    .set(log.segment_count() as i64);
                self.log_flushes
                    .get_or_create(&l)
                    .set(log.flush_count() as i64);
                self.partition_unwritable
                    .get_or_create(&l)
                    .set(i64::from(!log.write_status().is_writable()));
            }
        }
        self.group_members.clear();
        self.group_generation.clear();
        self.group_committed_offset.clear();
        self.group_lag.clear();
        for g in groups.reports(topics) {
            let l = GroupLabel {
                group: g.group.clone(),
            };
            self.group_members
                .get_or_create(&l)
                .set(g.members.len() as i64);
            self.group_generation
                .get_or_create(&l)
                .set(g.generation as i64);
            for p in g.partitions {
                let l = GroupPartitionLabel {
                    group: g.group.clone(),
                    topic: p.topic,
                    partition: p.partition.to_string(),
                };
                self.group_committed_offset
                    .get_or_create(&l)
                    .set(p.committed);
                self.group_lag.get_or_create(&l).set(p.lag);
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
