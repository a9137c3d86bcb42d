//! Consumer groups against the real broker binary with real clients: rdkafka StreamConsumers
//! (bundled librdkafka 2.12.1) and kcat (librdkafka 2.0.2) as a member that dies without leaving.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{BrokerProcess, KillOnDrop};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn start_broker(dir: &std::path::Path) -> BrokerProcess {
    BrokerProcess::start(dir, &["--group-initial-rebalance-delay-ms", "500"])
}

async fn create_topic(broker: &BrokerProcess, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{res:?}");
}

/// Produces `per_partition` messages to each partition; values are "p<partition>-<i>".
async fn produce(broker: &BrokerProcess, topic: &str, partitions: i32, per_partition: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut sends = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("p{p}-{i}");
            let producer = producer.clone();
            let topic = topic.to_string();
            sends.push(async move {
                producer
                    .send(
                        FutureRecord::<(), _>::to(&topic)
                            .payload(&value)
                            .partition(p),
                        TIMEOUT,
                    )
                    .await
                    .map_err(|(e, _)| e)
            });
        }
    }
    for r in futures_util::future::join_all(sends).await {
        r.expect("delivered");
    }
}

fn consumer(broker: &BrokerProcess, group: &str, topic: &str) -> StreamConsumer {
    consumer_with(broker, group, topic, &[])
}

/// A group member with extra client settings.
fn consumer_with(
    broker: &BrokerProcess,
    group: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> StreamConsumer {
    let mut config = ClientConfig::new();
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let c: StreamConsumer = config
        .set("bootstrap.servers", broker.addr())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

fn assigned(c: &StreamConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Messages a test has received but not looked at yet: a consumer polled while waiting for a
/// rebalance may get messages then, and dropping them would starve a later `receive`.
#[derive(Default)]
struct Inbox(Vec<(usize, i32, i64, String)>);

/// Identifies a consumer across calls (the index in a slice changes from call to call).
fn id_of(c: &StreamConsumer) -> usize {
    c as *const StreamConsumer as usize
}

/// Polls every consumer (which also drives its rebalances) until `done` holds for their
/// assignments, or fails after the timeout. What the polls receive is kept in `inbox`.
async fn wait_for_assignment(
    inbox: &mut Inbox,
    consumers: &[&StreamConsumer],
    what: &str,
    done: impl Fn(&[BTreeSet<i32>]) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
        if done(&sets) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: assignments stuck at {sets:?}"
        );
        for c in consumers {
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(50), c.recv()).await {
                let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
                inbox.0.push((id_of(c), m.partition(), m.offset(), v));
            }
        }
    }
}

fn disjoint_cover(sets: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty())
        && total == partitions as usize
        && union == (0..partitions).collect()
}

/// Receives from all consumers until `n` messages arrived in total (the inbox's first);
/// returns (consumer index, partition, offset, value) per message.
async fn receive(
    inbox: &mut Inbox,
    consumers: &[&StreamConsumer],
    n: usize,
) -> Vec<(usize, i32, i64, String)> {
    let mut got = Vec::new();
    let ids: Vec<usize> = consumers.iter().map(|c| id_of(c)).collect();
    inbox.0.retain(
        |(owner, p, o, v)| match ids.iter().position(|i| i == owner) {
            Some(i) if got.len() < n => {
                got.push((i, *p, *o, v.clone()));
                false
            }
            _ => true,
        },
    );
    let deadline = Instant::now() + TIMEOUT;
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "received only {} of {n}",
            got.len()
        );
        for (i, c) in consumers.iter().enumerate() {
            if let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(20), async { Some(c.recv().await) })
                    .await
            {
                let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
                got.push((i, m.partition(), m.offset(), v));
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_six_partitions_and_each_message_is_consumed_once() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "six", 6).await;
    let (a, b, c) = (
        consumer(&broker, "g", "six"),
        consumer(&broker, "g", "six"),
        consumer(&broker, "g", "six"),
    );
    wait_for_assignment(&mut inbox, &[&a, &b, &c], "3 members", |s| {
        disjoint_cover(s, 6)
    })
    .await;

    produce(&broker, "six", 6, 50).await;
    let got = receive(&mut inbox, &[&a, &b, &c], 300).await;
    let mut seen = HashSet::new();
    let mut by_member: HashMap<usize, BTreeSet<i32>> = HashMap::new();
    for (member, p, offset, value) in &got {
        assert!(seen.insert((*p, *offset)), "p{p}@{offset} consumed twice");
        assert_eq!(value, &format!("p{p}-{offset}"));
        by_member.entry(*member).or_default().insert(*p);
    }
    assert_eq!(seen.len(), 300);
    // Each member consumed exactly the partitions it was assigned.
    let sets = [assigned(&a), assigned(&b), assigned(&c)];
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(
            by_member.get(&i).cloned().unwrap_or_default(),
            *set,
            "member {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_cleanly_hands_over_at_once() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "two", 2).await;
    let a = consumer(&broker, "g", "two");
    let b = consumer(&broker, "g", "two");
    wait_for_assignment(&mut inbox, &[&a, &b], "2 members", |s| disjoint_cover(s, 2)).await;
    let left = Instant::now();
    drop(b); // close(): LeaveGroup
    wait_for_assignment(&mut inbox, &[&a], "after leave", |s| s[0].len() == 2).await;
    assert!(
        left.elapsed() < Duration::from_secs(5),
        "handover took {:?}",
        left.elapsed()
    );
    produce(&broker, "two", 2, 10).await;
    assert_eq!(receive(&mut inbox, &[&a], 20).await.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_without_leaving_is_replaced_within_its_session_timeout() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "kill", 2).await;
    let a = consumer(&broker, "g", "kill");
    // kcat as the second member: a separate process we can SIGKILL (no LeaveGroup is sent).
    let mut victim = KillOnDrop(
        super::harness::kcat_command()
            .args([
                "-b",
                &broker.addr(),
                "-G",
                "g",
                "kill",
                "-q",
                "-o",
                "beginning",
            ])
            .args([
                "-X",
                "enable.auto.commit=false",
                "-X",
                "session.timeout.ms=6000",
            ])
            .args(["-X", "heartbeat.interval.ms=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kcat"),
    );
    wait_for_assignment(&mut inbox, &[&a], "kcat joined", |s| s[0].len() == 1).await;
    // Messages on the victim's partition that it never commits.
    produce(&broker, "kill", 2, 25).await;
    let mine = assigned(&a);
    let mut first = receive(&mut inbox, &[&a], 25).await;
    assert!(first.iter().all(|(_, p, _, _)| mine.contains(p)));
    // The survivor commits what it processed; the victim commits nothing.
    let mut tpl = TopicPartitionList::new();
    for p in &mine {
        tpl.add_partition_offset("kill", *p, Offset::Offset(25))
            .unwrap();
    }
    a.commit(&tpl, CommitMode::Sync).unwrap();

    victim.kill(); // SIGKILL
    let killed = Instant::now();
    wait_for_assignment(&mut inbox, &[&a], "after kill", |s| s[0].len() == 2).await;
    assert!(
        killed.elapsed() < Duration::from_secs(6 + 5),
        "takeover after {:?}, session timeout is 6 s",
        killed.elapsed()
    );
    // The survivor consumes what the dead member had not committed: its whole partition.
    let rest = receive(&mut inbox, &[&a], 25).await;
    assert!(
        rest.iter().all(|(_, p, _, _)| !mine.contains(p)),
        "{rest:?}"
    );
    first.extend(rest);
    let distinct: HashSet<(i32, i64)> = first.iter().map(|(_, p, o, _)| (*p, *o)).collect();
    assert_eq!(distinct.len(), 50);
}

/// Static membership (KIP-345): a member that restarts with its `group.instance.id` gets its
/// partitions back at once, without waiting out its old session and without taking the other
/// member's partitions away meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_that_restarts_gets_its_partitions_back_at_once() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "static", 4).await;
    let settings = |instance| {
        [
            ("group.instance.id", instance),
            ("session.timeout.ms", "10000"),
        ]
    };
    let a = consumer_with(&broker, "sg", "static", &settings("worker-a"));
    let b = consumer_with(&broker, "sg", "static", &settings("worker-b"));
    wait_for_assignment(&mut inbox, &[&a, &b], "both joined", |s| {
        disjoint_cover(s, 4)
    })
    .await;
    let (a_parts, b_parts) = (assigned(&a), assigned(&b));

    // b's process goes away (a static member sends no LeaveGroup) and comes back.
    drop(b);
    let restarted = Instant::now();
    let b = consumer_with(&broker, "sg", "static", &settings("worker-b"));
    wait_for_assignment(&mut inbox, &[&a, &b], "b is back", |s| s[1] == b_parts).await;
    eprintln!("static member back after {:?}", restarted.elapsed());
    assert!(
        restarted.elapsed() < Duration::from_secs(1),
        "b got its partitions back after {:?}; its session timeout is 10 s",
        restarted.elapsed()
    );
    assert_eq!(assigned(&a), a_parts, "a kept its partitions throughout");
    // And both consume.
    produce(&broker, "static", 4, 5).await;
    let got = receive(&mut inbox, &[&a, &b], 20).await;
    assert!(got.iter().any(|(i, _, _, _)| *i == 1), "b consumes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_get_everything_one_group_gets_each_message_once() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "fan", 2).await;
    let g1a = consumer(&broker, "g1", "fan");
    let g1b = consumer(&broker, "g1", "fan");
    let g2 = consumer(&broker, "g2", "fan");
    wait_for_assignment(&mut inbox, &[&g1a, &g1b, &g2], "two groups", |s| {
        disjoint_cover(&s[..2], 2) && s[2].len() == 2
    })
    .await;
    produce(&broker, "fan", 2, 20).await;
    let unicast = receive(&mut inbox, &[&g1a, &g1b], 40).await;
    let broadcast = receive(&mut inbox, &[&g2], 40).await;
    let set = |v: &[(usize, i32, i64, String)]| {
        v.iter()
            .map(|(_, p, o, _)| (*p, *o))
            .collect::<HashSet<_>>()
    };
    assert_eq!(set(&unicast).len(), 40, "group g1 got each message once");
    assert_eq!(
        set(&broadcast),
        set(&unicast),
        "group g2 got every message too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_broker_restart() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path());
    create_topic(&broker, "resume", 1).await;
    produce(&broker, "resume", 1, 100).await;
    {
        let c = consumer(&broker, "g", "resume");
        let got = receive(&mut inbox, &[&c], 60).await;
        let last = got.last().unwrap();
        assert_eq!(last.2, 59);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("resume", 0, Offset::Offset(60))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
        let committed = c.committed(TIMEOUT).unwrap();
        assert_eq!(
            committed.find_partition("resume", 0).unwrap().offset(),
            Offset::Offset(60)
        );
    }
    broker.restart();
    let c = consumer(&broker, "g", "resume");
    let got = receive(&mut inbox, &[&c], 40).await;
    assert_eq!(
        got.first().unwrap().2,
        60,
        "resumed at the committed offset"
    );
    assert_eq!(got.last().unwrap().2, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_shows_on_metrics_json_and_the_cli() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    create_topic(&broker, "lagged", 2).await;
    produce(&broker, "lagged", 2, 30).await;
    let c = consumer(&broker, "lg", "lagged");
    wait_for_assignment(&mut inbox, &[&c], "one member", |s| s[0].len() == 2).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lagged", 0, Offset::Offset(10))
        .unwrap();
    tpl.add_partition_offset("lagged", 1, Offset::Offset(30))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();

    let (status, metrics) = super::harness::admin_get(&broker, "/metrics");
    assert_eq!(status, 200);
    for (line, want) in [
        (
            "broker_group_lag{group=\"lg\",topic=\"lagged\",partition=\"0\"}",
            "20",
        ),
        (
            "broker_group_lag{group=\"lg\",topic=\"lagged\",partition=\"1\"}",
            "0",
        ),
        (
            "broker_group_committed_offset{group=\"lg\",topic=\"lagged\",partition=\"0\"}",
            "10",
        ),
        ("broker_group_members{group=\"lg\"}", "1"),
    ] {
        let got = metrics
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line}:\n{metrics}"));
        assert_eq!(got.rsplit(' ').next(), Some(want), "{got}");
    }

    let (status, json) = super::harness::admin_get(&broker, "/groups/lg");
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["state"], "Stable");
    assert_eq!(report["partitions"][0]["lag"], 20);
    assert_eq!(
        report["members"][0]["assignment"]["lagged"],
        serde_json::json!([0, 1])
    );
    assert_eq!(super::harness::admin_get(&broker, "/groups/nope").0, 404);

    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args([
            "groups",
            "describe",
            "lg",
            "--admin",
            &format!("127.0.0.1:{}", broker.admin_port),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let row0 = table
        .lines()
        .find(|l| l.starts_with("lagged") && l.split_whitespace().nth(1) == Some("0"))
        .unwrap();
    let cols: Vec<&str> = row0.split_whitespace().collect();
    assert_eq!(&cols[..5], &["lagged", "0", "10", "30", "20"], "{table}");
    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args([
            "groups",
            "list",
            "--admin",
            &format!("127.0.0.1:{}", broker.admin_port),
        ])
        .output()
        .unwrap();
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["lg", "Stable", "1", "1", "20"]),
        "{list}"
    );
}

/// Deleting a topic deletes what groups committed for it: a recreated `seckill` starts from its
/// first order for a group that had consumed part of the old one (it used to resume at the old
/// committed offset and skip the new topic's first orders), also after a broker restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_does_not_resume_at_the_deleted_ones_offsets() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path());
    create_topic(&broker, "seckill", 1).await;
    produce(&broker, "seckill", 1, 10).await;
    {
        let c = consumer(&broker, "workers", "seckill");
        let got = receive(&mut inbox, &[&c], 4).await;
        assert_eq!(got.last().unwrap().2, 3);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("seckill", 0, Offset::Offset(4))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let deleted = admin
        .delete_topics(
            &["seckill"],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    create_topic(&broker, "seckill", 1).await;
    produce(&broker, "seckill", 1, 10).await;

    for round in ["after recreate", "after a restart"] {
        let c = consumer(&broker, "workers", "seckill");
        // 6: what is left past the old commit (4), so a wrong resume shows as a wrong offset.
        let got = receive(&mut inbox, &[&c], 6).await;
        let first = got.first().unwrap();
        assert_eq!(
            (first.2, first.3.as_str()),
            (0, "p0-0"),
            "{round}: the group starts at the new topic's first order"
        );
        // The list must go before its client: librdkafka's destroy waits for every partition
        // handle it gave out (confluentinc/librdkafka#3796), so `drop(c)` would hang otherwise.
        let committed = c
            .committed(TIMEOUT)
            .unwrap()
            .find_partition("seckill", 0)
            .unwrap()
            .offset();
        assert_eq!(
            committed,
            Offset::Invalid,
            "{round}: nothing committed for the new topic"
        );
        drop(c);
        inbox.0.clear();
        if round == "after recreate" {
            broker.restart();
        }
    }
}

/// Issue 28: a broker killed and started again must not cost its consumers a rebalance. The
/// group's last stable generation is kept (`groups.json`), so both members carry on with their
/// next heartbeat: the same generation and member ids after the restart, and the messages
/// produced after it consumed well within the initial rebalance delay (3 s here, Kafka's
/// default) that a group found empty would wait before anyone consumed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_carries_on_after_a_broker_sigkill_without_a_rebalance() {
    let mut inbox = Inbox::default();
    let dir = tempfile::tempdir().unwrap();
    let mut broker =
        BrokerProcess::start(dir.path(), &["--group-initial-rebalance-delay-ms", "3000"]);
    create_topic(&broker, "carry", 2).await;
    produce(&broker, "carry", 2, 10).await;
    let a = consumer(&broker, "carry-on", "carry");
    wait_for_assignment(&mut inbox, &[&a], "the first member", |s| s[0].len() == 2).await;
    let b = consumer(&broker, "carry-on", "carry");
    wait_for_assignment(&mut inbox, &[&a, &b], "two members", |s| {
        s[0].len() == 1 && s[1].len() == 1
    })
    .await;
    receive(&mut inbox, &[&a, &b], 20).await;
    let group = |broker: &BrokerProcess| {
        let (status, json) = super::harness::admin_get(broker, "/groups/carry-on");
        assert_eq!(status, 200, "{json}");
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut members: Vec<String> = report["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["member_id"].as_str().unwrap().to_string())
            .collect();
        members.sort();
        (report["generation"].as_i64().unwrap(), members, report)
    };
    let (generation, members, _) = group(&broker);
    assert_eq!(members.len(), 2);
    // The membership writer has stored the stable group by now (it writes within milliseconds).
    tokio::time::sleep(Duration::from_millis(300)).await;

    broker.crash_and_restart();
    let restarted = Instant::now();
    produce(&broker, "carry", 2, 10).await;
    receive(&mut inbox, &[&a, &b], 20).await;
    let took = restarted.elapsed();
    let (after, members_after, report) = group(&broker);
    assert_eq!(
        (after, &members_after),
        (generation, &members),
        "the members carried on in their generation: {report}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "consuming resumed {took:?} after the restart"
    );
    eprintln!("consumed again {took:?} after the broker restart");
}
