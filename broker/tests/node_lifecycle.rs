//! The node's one shutdown path: cancelling its token stops every task it started (connections,
//! admin port, retention, session expiry and the coordinator's rebalance timers), and `run`
//! returns only then.

use std::time::Duration;

use broker::group::{CoordinatorConfig, JoinRequest};
use broker::{Node, NodeConfig};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    ApiKey, GroupId, JoinGroupRequest, JoinGroupResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const JOIN_VERSION: i16 = 5;

/// Sends a JoinGroup v5 for group "wire" on `s`.
async fn send_join(s: &mut TcpStream, member_id: &str) {
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::JoinGroup as i16;
    header.request_api_version = JOIN_VERSION;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("node-test"));
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str("wire"));
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 120_000;
    req.member_id = StrBytes::from_string(member_id.to_string());
    req.protocol_type = StrBytes::from_static_str("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    req.protocols.push(p);
    let mut buf = BytesMut::new();
    header
        .encode(
            &mut buf,
            ApiKey::JoinGroup.request_header_version(JOIN_VERSION),
        )
        .unwrap();
    req.encode(&mut buf, JOIN_VERSION).unwrap();
    s.write_all(&(buf.len() as i32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&buf).await.unwrap();
}

/// Reads a JoinGroup answer; `None` if the broker closed the connection instead.
async fn read_join(s: &mut TcpStream) -> Option<JoinGroupResponse> {
    let len = s.read_i32().await.ok()?;
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.ok()?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(
        &mut body,
        ApiKey::JoinGroup.response_header_version(JOIN_VERSION),
    )
    .unwrap();
    Some(JoinGroupResponse::decode(&mut body, JOIN_VERSION).unwrap())
}

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
    // A client parked in JoinGroup over TCP: its connection task waits on the group.
    let mut joiner = TcpStream::connect(addr).await.unwrap();
    send_join(&mut joiner, "").await;
    let first = read_join(&mut joiner).await.unwrap();
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first");
    send_join(&mut joiner, first.member_id.as_str()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tasks.running() >= 5, "node tasks: {}", tasks.running());

    token.cancel();
    // The parked join is answered (COORDINATOR_NOT_AVAILABLE: retry), not left hanging.
    let answer = tokio::time::timeout(Duration::from_secs(5), read_join(&mut joiner))
        .await
        .expect("the parked JoinGroup is answered at shutdown");
    assert_eq!(answer.map(|a| a.error_code), Some(15));
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
