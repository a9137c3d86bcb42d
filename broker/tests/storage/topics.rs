//! The topic registry persists topics (id, partition count, configs) so a restart brings them back.

use std::sync::Arc;

use super::common::*;
use broker::clock::SystemClock;
use broker::log::{FlushPolicy, LogConfig};
use broker::topics::{TopicError, TopicRegistry};

fn registry(dir: &std::path::Path) -> TopicRegistry {
    let defaults = LogConfig {
        flush: FlushPolicy::Never,
        ..LogConfig::default()
    };
    TopicRegistry::open(dir, defaults, Arc::new(SystemClock)).unwrap()
}

#[test]
fn topics_and_their_data_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let mut config = reg.defaults().clone();
    config.set("retention.ms", "60000").unwrap();
    let orders = reg.create("seckill", 3, config.clone()).unwrap();
    reg.create("other", 1, reg.defaults().clone()).unwrap();
    let mut b = batch(4, 20, 1, 1);
    orders.partition(2).unwrap().append(&mut b).unwrap();
    let id = orders.id;
    drop(orders);
    drop(reg);

    let reg = registry(dir.path());
    let names: Vec<String> = reg.list().iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, vec!["other", "seckill"]);
    let orders = reg.get("seckill").unwrap();
    assert_eq!(orders.id, id);
    assert_eq!(orders.partition_count(), 3);
    assert_eq!(orders.config, config);
    assert_eq!(orders.config.retention_ms, 60000);
    assert_eq!(read_all(orders.partition(2).unwrap(), 0), vec![b]);
    assert!(orders.partition(3).is_none());
    assert!(orders.partition(-1).is_none());
}

#[test]
fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let d = reg.defaults().clone();
    assert!(matches!(
        reg.create("a/b", 1, d.clone()),
        Err(TopicError::InvalidName(_))
    ));
    assert!(matches!(
        reg.create("t", 0, d.clone()),
        Err(TopicError::InvalidPartitions(0))
    ));
    assert!(matches!(
        reg.create("t", 100_000, d.clone()),
        Err(TopicError::InvalidPartitions(_))
    ));
    let bad = LogConfig {
        segment_bytes: 1,
        ..d.clone()
    };
    assert!(matches!(
        reg.create("t", 1, bad),
        Err(TopicError::Config(_))
    ));
    reg.create("t", 1, d.clone()).unwrap();
    assert!(matches!(
        reg.create("t", 1, d),
        Err(TopicError::AlreadyExists(_))
    ));
    assert!(matches!(reg.delete("nope"), Err(TopicError::Unknown(_))));
}

#[test]
fn deleted_topics_stay_deleted_and_can_be_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let t = reg.create("gone", 2, reg.defaults().clone()).unwrap();
    t.partition(0)
        .unwrap()
        .append(&mut batch(1, 1, 1, 1))
        .unwrap();
    drop(t);
    reg.delete("gone").unwrap();
    assert!(reg.get("gone").is_none());
    let again = reg.create("gone", 1, reg.defaults().clone()).unwrap();
    assert_eq!(again.partition(0).unwrap().log_end_offset(), 0);
    drop(again);
    reg.delete("gone").unwrap();
    drop(reg);
    assert!(registry(dir.path()).get("gone").is_none());
}

#[test]
fn corrupt_metadata_skips_that_topic_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    reg.create("good", 1, reg.defaults().clone()).unwrap();
    reg.create("bad", 1, reg.defaults().clone()).unwrap();
    drop(reg);
    let meta = dir.path().join("topics/bad/topic.json");
    std::fs::write(&meta, b"{ this is not json").unwrap();
    let reg = registry(dir.path());
    assert!(reg.get("good").is_some());
    assert!(reg.get("bad").is_none());
    assert!(
        meta.exists(),
        "files of an unreadable topic are left for the operator"
    );
}

#[test]
fn an_interrupted_create_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    drop(registry(dir.path()));
    std::fs::create_dir_all(dir.path().join("topics/half/0")).unwrap();
    let reg = registry(dir.path());
    assert!(reg.get("half").is_none());
    assert!(!dir.path().join("topics/half").exists());
    reg.create("half", 1, reg.defaults().clone()).unwrap();
}
