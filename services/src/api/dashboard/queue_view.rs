//! The queue as the dashboard shows it: the backlog (what the order workers' consumer group has
//! not committed yet: the high watermarks minus the committed offsets) and the group's live
//! members. Read over the Kafka protocol (Metadata, ListOffsets, OffsetFetch, DescribeGroups),
//! so it works the same against this project's broker, Kafka or Redpanda.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::tick::Workers;

#[derive(Clone)]
pub struct QueueView {
    /// Never joins the group nor commits: it only reads the group's offsets and description.
    consumer: Arc<BaseConsumer>,
    topic: String,
    group: String,
}

impl std::fmt::Debug for QueueView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueView")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish()
    }
}

/// What one look at the queue found; `None` where the broker did not answer in time.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    pub backlog: Option<i64>,
    pub workers: Option<Workers>,
}

impl QueueView {
    pub fn new(bootstrap: &str, topic: &str, group: &str) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = crate::kafka::client_config(bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(QueueView {
            consumer: Arc::new(consumer),
            topic: topic.into(),
            group: group.into(),
        })
    }

    /// Looks at the queue, each request bounded by `timeout` (blocking calls, so off the
    /// runtime's threads).
    pub async fn read(&self, timeout: Duration) -> QueueState {
        let view = self.clone();
        tokio::task::spawn_blocking(move || QueueState {
            backlog: view.backlog(timeout).ok(),
            workers: view.workers(timeout).ok(),
        })
        .await
        .unwrap_or_default()
    }

    fn backlog(&self, timeout: Duration) -> Result<i64, KafkaError> {
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&self.topic, *p);
        }
        let committed = self.consumer.committed_offsets(tpl, timeout)?;
        let mut backlog = 0;
        for p in partitions {
            let (low, high) = self.consumer.fetch_watermarks(&self.topic, p, timeout)?;
            let done = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                // Nothing committed yet: everything still in the log is waiting.
                _ => low,
            };
            backlog += (high - done).max(0);
        }
        Ok(backlog)
    }

    fn workers(&self, timeout: Duration) -> Result<Workers, KafkaError> {
        let groups = self.consumer.fetch_group_list(Some(&self.group), timeout)?;
        let mut members: Vec<String> = groups
            .groups()
            .iter()
            .filter(|g| g.name() == self.group)
            .flat_map(|g| g.members())
            .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
            .collect();
        members.sort();
        Ok(Workers {
            alive: members.len(),
            members,
        })
    }
}
