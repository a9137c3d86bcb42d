//! Apache Kafka itself as a test peer: a KRaft cluster of real Kafka nodes, started, killed and
//! stopped through `scripts/apache-kafka.sh` (the one harness a developer, the tests and CI
//! share), so "the services run on a real Kafka cluster" is checked rather than promised.
//!
//! The nodes are JVMs started in their own sessions; [`ApacheKafka`]'s `Drop` stops them, so a
//! failing test leaves none behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

/// The harness script, found from this crate's directory.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/apache-kafka.sh")
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .with_context(|| format!("run scripts/apache-kafka.sh {args:?}"))?;
    if !out.status.success() {
        bail!(
            "scripts/apache-kafka.sh {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// A running Apache Kafka cluster of combined broker+controller nodes on loopback.
#[derive(Debug)]
pub struct ApacheKafka {
    dir: PathBuf,
    /// `HOST:PORT,...` of every node.
    pub bootstrap: String,
}

impl ApacheKafka {
    /// Formats and starts `nodes` nodes under `dir` (fetching Kafka's jars on first use) and
    /// returns once every node serves. With three nodes, topics get three replicas and need two
    /// in sync for acks=all.
    pub fn start(nodes: usize, dir: &Path) -> anyhow::Result<ApacheKafka> {
        let dir_s = dir.to_string_lossy().into_owned();
        let n = nodes.to_string();
        let out = run(&["start", "--nodes", &n, "--dir", &dir_s])?;
        let bootstrap = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if bootstrap.is_empty() {
            bail!("scripts/apache-kafka.sh start printed no bootstrap list");
        }
        Ok(ApacheKafka {
            dir: dir.to_path_buf(),
            bootstrap,
        })
    }

    fn dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// SIGKILL of node `node` (1-based): no shutdown, no controlled leadership hand-over.
    pub fn kill(&self, node: usize) -> anyhow::Result<()> {
        run(&["kill", &node.to_string(), "--dir", &self.dir()])?;
        Ok(())
    }

    /// The node id leading `topic`'s `partition`, as Kafka's own `kafka-topics.sh` reports it.
    pub fn leader(&self, topic: &str, partition: i32) -> anyhow::Result<usize> {
        let out = run(&[
            "leader",
            topic,
            &partition.to_string(),
            "--dir",
            &self.dir(),
        ])?;
        let s = String::from_utf8_lossy(&out.stdout);
        s.trim()
            .parse()
            .with_context(|| format!("leader of {topic}-{partition}: {s:?}"))
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        let _ = run(&["stop", "--dir", &self.dir()]);
    }
}
