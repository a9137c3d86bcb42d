//! The node's one shutdown path: cancelling its token stops every task it started (connections,
//! admin port, retention, session expiry and the coordinator's rebalance timers), and `run`
//! returns only then.

use std::time::Duration;

use broker::group::{CoordinatorConfig, JoinRequest};
use broker::{Node, NodeConfig};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test]
async fn cancelling_the_token_ends_every_task_of_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let before = alive_tasks();
    let token = CancellationToken::new();
    let config = NodeConfig {
        groups: CoordinatorConfig {
            // A rebalance timer that would otherwise fire a minute from now.
            initial_rebalance_delay: Duration::from_secs(60),
            ..CoordinatorConfig::default()
        },
        ..NodeConfig::local(dir.path())
    };
    let node = Node::bind(config, token.clone()).await.unwrap();
    let tasks = node.tasks().clone();
    let (addr, admin) = (node.addr(), node.admin_addr());
    let broker = node.broker().clone();
    let running = tokio::spawn(node.run());

    // An idle client connection, a half-sent request, and an admin-port connection.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
    partial.write_all(&[0, 0, 0, 40, 0, 18]).await.unwrap();
    let _admin = tokio::net::TcpStream::connect(admin).await.unwrap();
    // A member parked in JoinGroup: the coordinator has a rebalance timer running.
    let groups = broker.groups.clone();
    let parked = tokio::spawn(async move {
        groups
            .join(JoinRequest {
                group_id: "g".into(),
                member_id: String::new(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 120_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::new())],
                require_known_member_id: false,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tasks.running() >= 4, "node tasks: {}", tasks.running());

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run returns soon after the token is cancelled")
        .unwrap();
    assert_eq!(tasks.running(), 0, "a task of the node outlived run()");
    parked.abort();
    let _ = parked.await;
    let _ = idle.shutdown().await;
    // Nothing the node spawned is left on the runtime (the rebalance timer included).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while alive_tasks() > before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alive_tasks(), before, "tasks outlived the node");
    // The logs were closed cleanly: the data dir opens again.
    drop(broker);
    let again = Node::bind(NodeConfig::local(dir.path()), CancellationToken::new()).await;
    assert!(again.is_ok());
}
