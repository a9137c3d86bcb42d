//! A topic of one run's own on an external Kafka cluster (Apache Kafka, Redpanda, or this
//! project's broker started on its own), for the tools that can run there instead of on the
//! embedded broker (`demo --bootstrap`, `order-bench ingest --bootstrap`): named for the run,
//! so an earlier run's events are never read into this one, created with the cluster's
//! replication factor, and deleted at the end.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use services::kafka::TopicSpec;
use uuid::Uuid;

/// Partitions of a run's topic: the order topic's default.
pub const PARTITIONS: i32 = 6;

#[derive(Debug)]
pub struct RunTopic {
    pub bootstrap: String,
    pub name: String,
}

impl RunTopic {
    /// Creates `seckill.<label>-<run>` on `bootstrap` with the topic settings `config`, waiting
    /// up to 30 s for a cluster that is still starting.
    pub async fn create(
        bootstrap: &str,
        label: &str,
        config: Vec<(String, String)>,
    ) -> anyhow::Result<RunTopic> {
        let bootstrap = bootstrap.trim();
        anyhow::ensure!(
            !bootstrap.is_empty(),
            "--bootstrap must name at least one HOST:PORT"
        );
        let run = Uuid::new_v4().simple().to_string();
        let spec = TopicSpec {
            config,
            ..TopicSpec::new(
                &format!("{}.{label}-{}", shared::topics::SECKILL_ORDERS, &run[..8]),
                PARTITIONS,
            )
        };
        services::kafka::ensure_topics_patiently(
            bootstrap,
            std::slice::from_ref(&spec),
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("create the topic {} on {bootstrap}", spec.name))?;
        Ok(RunTopic {
            bootstrap: bootstrap.to_string(),
            name: spec.name,
        })
    }

    /// Messages in the topic: the sum of its partitions' high watermarks.
    pub async fn queued(&self) -> anyhow::Result<i64> {
        let consumer: BaseConsumer = services::kafka::client_config(&self.bootstrap).create()?;
        let topic = self.name.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
            let mut total = 0;
            for p in 0..PARTITIONS {
                let (_, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                total += high;
            }
            Ok(total)
        })
        .await?
    }

    /// Deletes the topic; a failure is reported, not fatal (the run's result stands).
    pub async fn delete(self) {
        if let Err(e) = services::kafka::delete_topics(&self.bootstrap, &[&self.name]).await {
            eprintln!(
                "could not delete the run's topic {} on {}: {e}",
                self.name, self.bootstrap
            );
        }
    }
}
