//! The group coordinator's state machine, driven directly with paused time: rebalance rounds,
//! member ids, timeouts and the commit rules. (The same flows against real clients are in
//! wire_groups.rs; these pin the edge cases clients rarely hit on purpose.)

use std::sync::Arc;
use std::time::Duration;

use broker::clock::SystemClock;
use broker::group::{
    CommitRequest, CoordinatorConfig, GroupCoordinator, JoinOutcome, JoinRequest, OffsetStore,
    SyncRequest,
};
use broker::log::FlushPolicy;
use bytes::Bytes;

use broker::group::GroupError;
use shared::shutdown::Tasks;
use tokio_util::sync::CancellationToken;

/// The id of the one topic the commit tests use.
const TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(7);

fn coordinator(dir: &std::path::Path) -> Arc<GroupCoordinator> {
    let offsets = OffsetStore::open(
        dir,
        FlushPolicy::Never,
        Arc::new(SystemClock),
        broker::log::SyncOnOpen::All,
        &|_| broker::group::offset_store::TopicNow::Absent,
    )
    .unwrap();
    GroupCoordinator::new(
        CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(100),
            ..CoordinatorConfig::default()
        },
        offsets,
        (broker::group::Membership::in_memory(), Vec::new()),
        Tasks::new(CancellationToken::new()),
    )
}

fn join_req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

/// The two-round join of a new member (MEMBER_ID_REQUIRED, then with the id).
async fn join_new(c: &Arc<GroupCoordinator>, protocols: &[&str]) -> JoinOutcome {
    let first = c.join(join_req("", protocols)).await;
    assert_eq!(first.error, Some(GroupError::MemberIdRequired));
    assert!(first.member_id.starts_with("c-"));
    c.join(join_req(&first.member_id, protocols)).await
}

fn sync_req(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments,
    }
}

#[tokio::test(start_paused = true)]
async fn two_members_one_generation_leader_assigns_followers_get_their_share() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let (a, b) = tokio::join!(
        join_new(&c, &["range", "roundrobin"]),
        join_new(&c, &["roundrobin", "range"])
    );
    assert_eq!((a.error, b.error), (None, None));
    assert_eq!(a.generation, 1);
    assert_eq!(a.generation, b.generation);
    assert_eq!(a.leader, b.leader);
    // One vote each: the tie goes to the leader's preference.
    assert_eq!(a.protocol_name, b.protocol_name);
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2, "only the leader sees the members");
    assert!(follower.members.is_empty());
    let chosen = leader.protocol_name.clone().unwrap();
    assert!(leader
        .members
        .iter()
        .all(|(_, _, m)| m == &Bytes::from(format!("meta-{chosen}"))));

    let follower_sync = c.sync(sync_req(&follower.member_id, 1, vec![]));
    let leader_sync = c.sync(sync_req(
        &leader.member_id,
        1,
        vec![(follower.member_id.clone(), Bytes::from_static(b"F"))],
    ));
    let (fs, ls) = tokio::join!(follower_sync, leader_sync);
    assert_eq!((fs.error, fs.assignment.as_ref()), (None, &b"F"[..]));
    // The leader left itself out of the assignment: it gets empty bytes, not an error.
    assert_eq!((ls.error, ls.assignment.len()), (None, 0));

    assert_eq!(c.heartbeat("g", 1, &follower.member_id, None), Ok(()));
    assert_eq!(
        c.heartbeat("g", 0, &follower.member_id, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.heartbeat("g", 1, "nobody", None),
        Err(GroupError::UnknownMember)
    );
}

#[tokio::test(start_paused = true)]
async fn bad_joins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let mut r = join_req("", &["range"]);
    r.session_timeout_ms = 10;
    assert_eq!(
        c.join(r).await.error,
        Some(GroupError::InvalidSessionTimeout)
    );
    assert_eq!(
        c.join(join_req("made-up", &["range"])).await.error,
        Some(GroupError::UnknownMember)
    );
    let first = join_new(&c, &["range"]).await;
    assert_eq!(first.error, None);
    // A member that shares no protocol with the group cannot join it.
    let other = c.join(join_req("", &["sticky"])).await;
    assert_eq!(other.error, Some(GroupError::InconsistentProtocol));
}

#[tokio::test(start_paused = true)]
async fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let (a, b) = tokio::join!(join_new(&c, &["range"]), join_new(&c, &["range"]));
    let leader = if a.leader == a.member_id {
        a.clone()
    } else {
        b.clone()
    };
    let (s1, s2) = tokio::join!(
        c.sync(sync_req(&a.member_id, 1, vec![])),
        c.sync(sync_req(&b.member_id, 1, vec![]))
    );
    assert_eq!((s1.error, s2.error), (None, None));
    // A third member joins: the others must re-join; only `a` does.
    let c2 = c.clone();
    let newcomer = tokio::spawn(async move { join_new(&c2, &["range"]).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        c.heartbeat("g", 1, &b.member_id, None),
        Err(GroupError::RebalanceInProgress)
    );
    let a2 = c.join(join_req(&a.member_id, &["range"])).await;
    let n = newcomer.await.unwrap();
    // Completed at the rebalance timeout (20 s of paused time) without `b`.
    assert_eq!((a2.error, n.error), (None, None));
    assert_eq!(a2.generation, 2);
    let members = if a2.leader == a2.member_id {
        a2.members.clone()
    } else {
        n.members.clone()
    };
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|(id, _, _)| *id != b.member_id));
    // The old leader kept leadership when it re-joined.
    if leader.member_id == a.member_id {
        assert_eq!(a2.leader, a.member_id);
    }
    assert_eq!(
        c.heartbeat("g", 2, &b.member_id, None),
        Err(GroupError::UnknownMember)
    );
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_and_the_group_rebalances_or_empties() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let a = join_new(&c, &["range"]).await;
    assert_eq!(
        c.sync(sync_req(
            &a.member_id,
            1,
            vec![(a.member_id.clone(), Bytes::from_static(b"A"))]
        ))
        .await
        .error,
        None
    );
    // Heartbeats keep it alive past the session timeout...
    for _ in 0..4 {
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(c.heartbeat("g", 1, &a.member_id, None), Ok(()));
        c.expire_sessions();
    }
    // ...silence does not.
    tokio::time::advance(Duration::from_secs(11)).await;
    c.expire_sessions();
    assert_eq!(
        c.heartbeat("g", 1, &a.member_id, None),
        Err(GroupError::UnknownMember)
    );
    let g = c.describe_all();
    assert!(g.iter().all(|g| g.members.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn commit_rules_for_members_and_assign_mode_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    // Partitions 0 and 1 of one topic exist.
    let known = |_: &str, p: i32| (p < 2).then_some(TOPIC_ID);
    let commit = |generation: i32, member: &str, partition: i32, offset: i64| CommitRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        group_instance_id: None,
        entries: vec![("t".into(), partition, offset, -1, None)],
    };
    // assign() mode (generation -1, no member) on a group with no members: stored.
    assert_eq!(
        c.commit_offsets(commit(-1, "", 0, 5), known).await,
        vec![Ok(())]
    );
    assert_eq!(c.offsets().fetch("g", "t", TOPIC_ID, 0).unwrap().offset, 5);
    // A generation for a group that has none.
    assert_eq!(
        c.commit_offsets(commit(3, "x", 0, 6), known).await,
        vec![Err(GroupError::IllegalGeneration)]
    );
    // Unknown partition and oversized metadata are per-partition errors.
    assert_eq!(
        c.commit_offsets(commit(-1, "", 7, 1), known).await,
        vec![Err(GroupError::UnknownTopicOrPartition)]
    );
    let mut big = commit(-1, "", 1, 1);
    big.entries[0].4 = Some("x".repeat(5000));
    assert_eq!(
        c.commit_offsets(big, known).await,
        vec![Err(GroupError::OffsetMetadataTooLarge)]
    );

    let a = join_new(&c, &["range"]).await;
    // While the group has members, an assign()-mode committer with the same id is refused.
    assert_eq!(
        c.commit_offsets(commit(-1, "", 0, 9), known).await,
        vec![Err(GroupError::UnknownMember)]
    );
    // Between join and sync the generation is not settled yet.
    assert_eq!(
        c.commit_offsets(commit(1, &a.member_id, 0, 9), known).await,
        vec![Err(GroupError::RebalanceInProgress)]
    );
    assert_eq!(c.sync(sync_req(&a.member_id, 1, vec![])).await.error, None);
    assert_eq!(
        c.commit_offsets(commit(1, &a.member_id, 0, 9), known).await,
        vec![Ok(())]
    );
    assert_eq!(
        c.commit_offsets(commit(0, &a.member_id, 0, 10), known)
            .await,
        vec![Err(GroupError::IllegalGeneration)]
    );
    assert_eq!(c.offsets().fetch("g", "t", TOPIC_ID, 0).unwrap().offset, 9);
}

fn static_join(instance: &str, member: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.into()),
        ..join_req(member, &["range"])
    }
}

/// KIP-345: a static member that restarts (new incarnation, empty member id, same
/// group.instance.id) takes its old place without a rebalance: same generation, the other
/// member undisturbed, its own assignment back from SyncGroup; the old incarnation is fenced.
#[tokio::test(start_paused = true)]
async fn a_restarted_static_member_takes_its_place_back_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    // Static members skip the MEMBER_ID_REQUIRED round.
    let (a, b) = tokio::join!(
        c.join(static_join("worker-a", "")),
        c.join(static_join("worker-b", ""))
    );
    assert_eq!((a.error, b.error), (None, None));
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    let assignments = vec![
        (leader.member_id.clone(), Bytes::from_static(b"L")),
        (follower.member_id.clone(), Bytes::from_static(b"F")),
    ];
    let (ls, fs) = tokio::join!(
        c.sync(sync_req(&leader.member_id, 1, assignments)),
        c.sync(sync_req(&follower.member_id, 1, vec![]))
    );
    assert_eq!((ls.error, fs.error), (None, None));
    // The leader's member list says which instance the follower is.
    let follower_instance = leader
        .members
        .iter()
        .find(|(id, _, _)| *id == follower.member_id)
        .and_then(|(_, instance, _)| instance.clone())
        .unwrap();
    let follower_instance = follower_instance.as_str();

    // The follower's process dies and comes back: it joins with no member id.
    let back = c.join(static_join(follower_instance, "")).await;
    assert_eq!(back.error, None);
    assert_eq!(back.generation, 1, "no rebalance");
    assert_ne!(back.member_id, follower.member_id, "a new incarnation id");
    let mut sync = sync_req(&back.member_id, 1, vec![]);
    sync.group_instance_id = Some(follower_instance.into());
    let s = c.sync(sync).await;
    assert_eq!((s.error, s.assignment.as_ref()), (None, &b"F"[..]));
    // The leader was not disturbed.
    assert_eq!(c.heartbeat("g", 1, &leader.member_id, None), Ok(()));
    // The old incarnation is fenced, by its instance id.
    assert_eq!(
        c.heartbeat("g", 1, &follower.member_id, Some(follower_instance)),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        c.join(static_join(follower_instance, &follower.member_id))
            .await
            .error,
        Some(GroupError::FencedInstanceId)
    );
    // Leaving by instance id removes the current incarnation and rebalances the rest.
    assert_eq!(
        c.leave("g", &[(String::new(), Some(follower_instance.into()))]),
        vec![Ok(())]
    );
    assert_eq!(
        c.heartbeat("g", 1, &leader.member_id, None),
        Err(GroupError::RebalanceInProgress)
    );
}
