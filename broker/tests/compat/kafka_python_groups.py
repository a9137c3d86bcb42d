"""kafka-python 3.0.12 consumer groups against the broker at argv[1] (host:port).

Checks, with assertions on the values that come back:
  * the assign() pattern from the issue, exactly: KafkaConsumer(group_id='test',
    auto_offset_reset='earliest', enable_auto_commit=False), assign([tp]), position(tp), then
    poll(timeout_ms=1000, max_records=5) in a loop with commit_async() after each poll, then
    commit() and close(). Every message comes back once, in order, at most 5 per poll; once
    commit() returns, every commit_async the client sent has been answered with success;
    committed(tp) is the count. A NEW consumer in the same group, same pattern, starts at the
    committed position (nothing redelivered) and gets only messages produced after; a consumer
    in another group starts at 0.
    (FindCoordinator v4, OffsetFetch v8, OffsetCommit v8 with generation -1 and member "".)
  * subscribe(): two consumers of one group on a 4-partition topic, each polling in its own
    thread. The first, alone, is assigned all 4, consumes a first batch and commit()s it. Then
    the second joins: the first learns of the rebalance from its heartbeat and re-joins; after
    it their assignments are disjoint and cover all 4, KafkaAdminClient.describe_groups shows
    the group Stable with both members holding exactly those, and list_groups lists it. A
    second batch is consumed exactly once across the two (the second member starts at the
    first's commits). Each commit()s, then both close() (LeaveGroup). The committed offsets
    equal the per-partition counts in KafkaAdminClient.list_group_offsets (3.0's name for
    list_consumer_group_offsets) and in a fresh consumer's committed().
    (JoinGroup v7 twice per new member, SyncGroup v5, Heartbeat v4, LeaveGroup v5,
    ListGroups v4, DescribeGroups v5.)

Session timeouts are 6 s (not 45) and heartbeats 1 s; describe_groups right after close() checks
that the members left by LeaveGroup, not by session expiry. Exits non-zero with a message on
the first failure.
"""
import threading
import time
import uuid

import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from common import check, run_main

TIMEOUT_S = 15
GROUP_TIMEOUTS = {'session_timeout_ms': 6000, 'heartbeat_interval_ms': 1000}


def create_topic(bootstrap, topic, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        result = admin.create_topics({topic: {'num_partitions': partitions,
                                              'replication_factor': 1}})
        check([t['error_code'] for t in result['topics']] == [0], f'create {topic}: {result}')
    finally:
        admin.close()


def produce(bootstrap, topic, messages, before=None):
    """Sends (partition, value) pairs to a topic holding `before` ({partition: [values]});
    returns {partition: [values in offset order]}, `before` included."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [(p, v, producer.send(topic, value=v, partition=p)) for p, v in messages]
        sent = {p: list(vs) for p, vs in (before or {}).items()}
        for p, v, future in futures:
            md = future.get(timeout=TIMEOUT_S)
            check(md.partition == p and md.offset == len(sent.get(p, [])),
                  f'{v!r} sent to {topic}[{p}] landed at [{md.partition}]@{md.offset}')
            sent.setdefault(p, []).append(v)
        return sent
    finally:
        producer.close(timeout=TIMEOUT_S)


# -- the assign() pattern -------------------------------------------------------------------------

def assign_consumer(bootstrap, group, tp):
    """The issue's consumer, exactly: assign() + position() in a group, no auto-commit."""
    consumer = KafkaConsumer(group_id=group, auto_offset_reset='earliest',
                             enable_auto_commit=False, bootstrap_servers=[bootstrap])
    consumer.assign([tp])
    return consumer, consumer.position(tp)


def poll_commit_async(consumer, tp, expected_count):
    """poll(timeout_ms=1000, max_records=5) + commit_async() until expected_count records came,
    then two more rounds that must bring nothing; commit(). Returns (offset, value) pairs."""
    got, futures, callbacks = [], [], []
    deadline = time.monotonic() + TIMEOUT_S
    idle_rounds = 0
    while idle_rounds < 2:
        check(time.monotonic() < deadline,
              f'{len(got)} of {expected_count} records after {TIMEOUT_S} s')
        batch = consumer.poll(timeout_ms=1000, max_records=5)
        records = [r for rs in batch.values() for r in rs]
        check(set(batch) <= {tp}, f'records from partitions not assigned: {set(batch)}')
        check(len(records) <= 5, f'poll(max_records=5) returned {len(records)} records')
        got.extend((r.offset, r.value) for r in records)
        futures.append(consumer.commit_async(
            callback=lambda offsets, res: callbacks.append((offsets, res))))
        if len(got) >= expected_count:
            idle_rounds += 1
    consumer.commit()
    # Answers come back in request order on the coordinator connection: by the time the
    # synchronous commit returned, every asynchronous one before it has been answered.
    # kafka-python refuses to send one while max_in_flight_requests_per_connection (5) commits
    # await their answers (NodeNotReadyError, "Node paused"): polls served from buffered records
    # come faster than durable commits. That is the client's backpressure, never the broker's
    # answer; every commit the broker did answer must have succeeded.
    sent = 0
    for i, f in enumerate(futures):
        check(f.is_done, f'commit_async #{i} still pending after commit() returned')
        if f.failed() and isinstance(f.exception, Errors.NodeNotReadyError):
            continue
        check(f.succeeded(), f'commit_async #{i} failed: {f.exception!r}')
        sent += 1
    check(sent > 0, f'none of {len(futures)} commit_async calls reached the broker')
    for offsets, res in callbacks:
        check(not isinstance(res, Exception) or isinstance(res, Errors.NodeNotReadyError),
              f'commit_async callback for {offsets}: {res!r}')
    return got


def check_assign_pattern(bootstrap, run):
    topic, group = f'kp-assign-{run}', 'test'
    tp = TopicPartition(topic, 0)
    create_topic(bootstrap, topic, 1)
    first = produce(bootstrap, topic, [(0, f'm{i}'.encode()) for i in range(23)])[0]
    n = len(first)

    consumer, position = assign_consumer(bootstrap, group, tp)
    check(position == 0, f'first consumer of {group!r}: position {position}, expected 0')
    got = poll_commit_async(consumer, tp, n)
    check(got == list(enumerate(first)),
          f'first consumer got {got}, expected offsets 0..{n - 1} once each, in order')
    committed = consumer.committed(tp)
    check(committed == n, f'committed({tp}) = {committed} after consuming {n}, expected {n}')
    consumer.close()

    # A new consumer in the same group resumes at the committed position.
    consumer, position = assign_consumer(bootstrap, group, tp)
    committed = consumer.committed(tp)
    check(committed == n, f'new consumer of {group!r}: committed {committed}, expected {n}')
    check(position == n, f'new consumer of {group!r}: position {position}, expected {n}')
    stale = consumer.poll(timeout_ms=1000, max_records=5)
    check(not stale, f'new consumer of {group!r} got already-committed records: {stale}')
    more = produce(bootstrap, topic, [(0, f'late{i}'.encode()) for i in range(7)],
                   before={0: first})[0][n:]
    got = poll_commit_async(consumer, tp, len(more))
    check(got == [(n + i, v) for i, v in enumerate(more)],
          f'new consumer of {group!r} got {got}, expected only the {len(more)} new records')
    check(consumer.committed(tp) == n + len(more), 'commit after the new records')
    consumer.close()

    # Another group has committed nothing: it starts from the beginning.
    other = f'test-other-{run}'
    consumer, position = assign_consumer(bootstrap, other, tp)
    check(consumer.committed(tp) is None, f'group {other!r} has a commit before committing')
    check(position == 0, f'consumer of {other!r}: position {position}, expected 0')
    got = poll_commit_async(consumer, tp, n + len(more))
    check(got == list(enumerate(first + more)), f'consumer of {other!r} got {got}')
    consumer.close()
    print(f'assign(): group {group!r} resumed at {n}, group {other!r} read {len(got)} from 0')


# -- subscribe() with two consumers ---------------------------------------------------------------

class Member(threading.Thread):
    """One subscribed consumer polling in its own thread (a KafkaConsumer is not thread-safe:
    once built, only this thread touches it). The main thread asks for a commit() through
    `commit_asked` and for the end through `stop`; on stop the member commits, waits for
    `close_now`, then closes."""

    def __init__(self, name, bootstrap, group, topic):
        super().__init__(name=name, daemon=True)
        self.consumer = KafkaConsumer(topic, group_id=group, bootstrap_servers=bootstrap,
                                      auto_offset_reset='earliest', enable_auto_commit=False,
                                      client_id=name, **GROUP_TIMEOUTS)
        self.lock = threading.Lock()
        self.assignment = set()  # partitions held after the last poll
        self.records = []  # (partition, offset, value) in consumption order
        self.commit_asked, self.committed = threading.Event(), threading.Event()
        self.stop, self.close_now, self.closed = (threading.Event(), threading.Event(),
                                                  threading.Event())
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                batch = self.consumer.poll(timeout_ms=200)
                with self.lock:
                    self.assignment = {tp.partition for tp in self.consumer.assignment()}
                    for rs in batch.values():
                        self.records.extend((r.partition, r.offset, r.value) for r in rs)
                if self.commit_asked.is_set():
                    self.commit_asked.clear()
                    self.consumer.commit()
                    self.committed.set()
            self.consumer.commit()
            self.committed.set()
            self.close_now.wait(TIMEOUT_S)
            self.consumer.close()
        except Exception as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.committed.set()
            self.closed.set()

    def snapshot(self):
        check(self.error is None, f'{self.name} failed: {self.error!r}')
        with self.lock:
            return set(self.assignment), list(self.records)

    def commit_and_wait(self):
        self.committed.clear()
        self.commit_asked.set()
        check(self.committed.wait(TIMEOUT_S) and self.error is None,
              f'{self.name}: commit() failed or hung: {self.error!r}')


def wait_for(what, cond):
    """Polls cond() (which returns (done, state)) until done; fails naming `what` and state."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        done, state = cond()
        if done:
            return state
        check(time.monotonic() < deadline, f'{what}: not after {TIMEOUT_S} s ({state})')
        time.sleep(0.05)


def check_subscribe(bootstrap, run):
    topic, group, partitions = f'kp-sub-{run}', f'kp-sub-{run}', 4
    everything = set(range(partitions))
    create_topic(bootstrap, topic, partitions)
    first = Member('kp-member-0', bootstrap, group, topic)
    second = Member('kp-member-1', bootstrap, group, topic)
    try:
        # One member alone gets every partition, consumes the first batch, commits it.
        first.start()
        wait_for('first member holds all partitions',
                 lambda: (first.snapshot()[0] == everything, first.snapshot()[0]))
        sent = produce(bootstrap, topic, [(i % partitions, f'a{i}'.encode()) for i in range(20)])
        wait_for('first member consumed the first batch',
                 lambda: (len(first.snapshot()[1]) >= 20, len(first.snapshot()[1])))
        first.commit_and_wait()

        # A second member joins the stable group: the first learns of the rebalance from its
        # heartbeat (REBALANCE_IN_PROGRESS), re-joins, and the leader splits the partitions.
        second.start()
        a, b = wait_for('both members hold partitions after the rebalance', lambda: (
            (lambda a, b: (bool(a and b) and len(a) + len(b) == partitions, (a, b)))(
                first.snapshot()[0], second.snapshot()[0])))
        check(not (a & b), f'assignments overlap: {sorted(a)} and {sorted(b)}')
        check(a | b == everything, f'assignments {sorted(a)} + {sorted(b)} do not cover '
              f'partitions 0..{partitions - 1}')

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
        try:
            listed = {g['group_id']: g for g in admin.list_groups()}
            check(group in listed and listed[group]['protocol_type'] == 'consumer',
                  f'list_groups: {listed}')
            desc = admin.describe_groups([group])[group]
            check(desc['error'] is None and desc['group_state'] == 'Stable'
                  and desc['protocol_type'] == 'consumer'
                  and desc['protocol_data'] in ('range', 'roundrobin'),
                  f'describe_groups: {desc}')
            described = {}
            for dm in desc['members']:
                # to_dict() of the decoded ConsumerProtocolAssignment
                assigned = dm['member_assignment']['assigned_partitions']
                described[dm['client_id']] = {p for t in assigned if t['topic'] == topic
                                              for p in t['partitions']}
            check(described == {'kp-member-0': a, 'kp-member-1': b},
                  f'describe_groups members {described}, consumers hold {a} and {b}')
        finally:
            admin.close()

        # The second batch is split between the two; the second member starts its partitions
        # at the offsets the first committed, so it sees none of the first batch.
        sent = produce(bootstrap, topic, [(i % partitions, f'b{i}'.encode()) for i in range(20)],
                       before=sent)
        total = sum(map(len, sent.values()))
        wait_for('both batches consumed', lambda: (
            (lambda n: (n >= total, n))(len(first.snapshot()[1]) + len(second.snapshot()[1]))))
        time.sleep(1)  # room for a duplicate to show up
        for m in (first, second):
            m.stop.set()
        for m in (first, second):
            check(m.committed.wait(TIMEOUT_S), f'{m.name} did not commit')
            m.snapshot()
        for m in (first, second):
            m.close_now.set()
        for m in (first, second):
            check(m.closed.wait(TIMEOUT_S), f'{m.name} did not close within {TIMEOUT_S} s')
            m.snapshot()
    finally:
        for m in (first, second):
            m.stop.set()
            m.close_now.set()

    for m, owned in ((first, a), (second, b)):
        foreign = {p for p, o, _ in m.records if o >= 5} - owned
        check(not foreign, f'{m.name} got second-batch records of partitions {foreign}, '
              f'assigned {owned}')
    check(all(o >= 5 for _, o, _ in second.records),
          f'{second.name} got records the first member had committed: {second.records}')
    got = {}
    for m in (first, second):
        for p, offset, value in m.records:
            got.setdefault(p, []).append((offset, value))
    want = {p: list(enumerate(vs)) for p, vs in sent.items()}
    check({p: sorted(rs) for p, rs in got.items()} == want,
          f'records consumed across both members {got}, expected each of {want} once')
    check(got == want, f'records out of order within a partition: {got}')

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    want_offsets = {tp: len(sent[tp.partition]) for tp in tps}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        stored = admin.list_group_offsets(group)[group]
        check({tp: om.offset for tp, om in stored.items()} == want_offsets,
              f'list_group_offsets({group!r}): {stored}, expected {want_offsets}')
        desc = admin.describe_groups([group])[group]
        check(desc['group_state'] == 'Empty' and not desc['members'],
              f'after both closed, describe_groups: {desc}')
    finally:
        admin.close()
    fresh = KafkaConsumer(group_id=group, bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        seen = {tp: fresh.committed(tp) for tp in tps}
        check(seen == want_offsets, f'fresh consumer committed(): {seen}, expected {want_offsets}')
    finally:
        fresh.close()
    print(f'subscribe(): {total} records; after the rebalance {sorted(a)} + {sorted(b)}; '
          f'committed {sorted((tp.partition, o) for tp, o in want_offsets.items())}')


def main(bootstrap):
    run = uuid.uuid4().hex[:10]
    check_assign_pattern(bootstrap, run)
    check_subscribe(bootstrap, run)
    print('kafka-python groups: all checks passed')


if __name__ == '__main__':
    run_main(main)
