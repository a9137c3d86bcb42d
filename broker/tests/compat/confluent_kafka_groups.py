"""confluent-kafka 2.16.1 (librdkafka 2.16.0) consumer groups against the broker at argv[1].

Checks, with assertions on the values that come back:
  * a subscribe() consumer ('group.id', 'auto.offset.reset': 'earliest',
    'enable.auto.commit': False) on a 3-partition topic is assigned every partition (on_assign)
    and consumes every message exactly once, in order per partition;
  * while it is in the group, AdminClient.list_consumer_groups() lists the group (ListGroups)
    and describe_consumer_groups() shows it STABLE with that one member, the 'range' assignor
    and the member's assignment holding all 3 partitions (DescribeGroups);
  * consumer.commit(asynchronous=False) returns every partition at the count consumed, with no
    error; after close() (LeaveGroup) the group is EMPTY and
    AdminClient.list_consumer_group_offsets() gives the same offsets (OffsetFetch);
  * a second consumer in the group (same settings) sees committed() at those offsets, gets
    none of the old messages, then exactly the messages produced after it joined;
  * two members of another group on a 4-partition topic: the second's join splits the
    partitions (disjoint, covering all 4, as DescribeGroups also shows); when the first closes,
    the second is given all 4.
    (FindCoordinator v2, JoinGroup v5 twice, SyncGroup v3, OffsetFetch v9, Heartbeat v3,
    OffsetCommit v9, LeaveGroup v1, ListGroups v4, DescribeGroups v5.)

Session timeouts are 6 s and heartbeats 1 s. Exits non-zero with a message on the first failure.
"""
import time
import uuid

from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from common import check, run_main

TIMEOUT_S = 15
PARTITIONS = 3


def produce(bootstrap, topic, messages, before=None):
    """Produces (partition, value) pairs to a topic holding `before` ({partition: [values]});
    checks every delivery report; returns {partition: [values in offset order]}."""
    reports = []
    producer = Producer({'bootstrap.servers': bootstrap})
    for p, v in messages:
        producer.produce(topic, value=v, partition=p,
                         on_delivery=lambda err, msg: reports.append(
                             (err, msg.partition(), msg.offset(), msg.value())))
        producer.poll(0)
    check(producer.flush(TIMEOUT_S) == 0, f'messages to {topic} undelivered after {TIMEOUT_S} s')
    sent = {p: list(vs) for p, vs in (before or {}).items()}
    for p, v in messages:
        sent.setdefault(p, []).append(v)
    for err, p, offset, v in reports:
        check(err is None and sent[p][offset] == v,
              f'delivery of {v!r}: error {err}, {topic}[{p}]@{offset}')
    check(len(reports) == len(messages), f'{len(reports)} reports for {len(messages)} messages')
    return sent


def group_consumer(bootstrap, group, topic, assigned):
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': group,
                         'auto.offset.reset': 'earliest', 'enable.auto.commit': False,
                         'session.timeout.ms': 6000, 'heartbeat.interval.ms': 1000})
    consumer.subscribe([topic], on_assign=lambda c, tps: assigned.extend(tps))
    return consumer


def consume(consumer, expected_count, assigned):
    """Polls until assigned and expected_count messages came, then 1 s more for duplicates."""
    got = {}
    deadline = time.monotonic() + TIMEOUT_S
    quiet_until = None
    while quiet_until is None or time.monotonic() < quiet_until:
        check(time.monotonic() < deadline,
              f'{sum(map(len, got.values()))} of {expected_count} messages after {TIMEOUT_S} s '
              f'(assigned {assigned})')
        msg = consumer.poll(0.2)
        if msg is not None:
            check(msg.error() is None, f'consumer error: {msg.error()}')
            got.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))
        if quiet_until is None and assigned and sum(map(len, got.values())) >= expected_count:
            quiet_until = time.monotonic() + 1
    return got


def check_committed(committed, topic, want, what):
    offsets = {tp.partition: tp.offset for tp in committed if tp.topic == topic}
    errors = [tp for tp in committed if tp.error is not None]
    check(not errors and offsets == want, f'{what}: {committed}, expected {want}')


def main(bootstrap):
    run = uuid.uuid4().hex[:10]
    topic, group = f'ck-grp-{run}', f'ck-grp-{run}'
    admin = AdminClient({'bootstrap.servers': bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS,
                                            replication_factor=1)])
    check(futures[topic].result(timeout=TIMEOUT_S) is None, f'create {topic}')
    sent = produce(bootstrap, topic, [(i % PARTITIONS, f'old{i}'.encode()) for i in range(30)])
    counts = {p: len(vs) for p, vs in sent.items()}

    assigned = []
    consumer = group_consumer(bootstrap, group, topic, assigned)
    try:
        got = consume(consumer, 30, assigned)
        check(sorted(tp.partition for tp in assigned) == list(range(PARTITIONS)),
              f'the only member was assigned {assigned}')
        want = {p: list(enumerate(vs)) for p, vs in sent.items()}
        check(got == want, f'consumed {got}, expected each of {want} once, in order')
        committed = consumer.commit(asynchronous=False)
        check_committed(committed, topic, counts, 'commit(asynchronous=False) returned')

        listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
        check(not listed.errors, f'list_consumer_groups errors: {listed.errors}')
        mine = [g for g in listed.valid if g.group_id == group]
        check(len(mine) == 1 and mine[0].state == ConsumerGroupState.STABLE
              and not mine[0].is_simple_consumer_group,
              f'list_consumer_groups: {[(g.group_id, g.state) for g in listed.valid]}')
        desc = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        check(desc.group_id == group and desc.state == ConsumerGroupState.STABLE
              and desc.partition_assignor == 'range' and len(desc.members) == 1,
              f'describe_consumer_groups: {desc}')
        held = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions
                      if tp.topic == topic)
        check(held == list(range(PARTITIONS)), f'described assignment {held}')
        check(desc.members[0].member_id == consumer.memberid(),
              f'described member {desc.members[0].member_id}, consumer is {consumer.memberid()}')
    finally:
        consumer.close()

    desc = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
    check(desc.state == ConsumerGroupState.EMPTY and not desc.members,
          f'after close, describe_consumer_groups: {desc}')
    stored = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)])[group].result(timeout=TIMEOUT_S)
    check_committed(stored.topic_partitions, topic, counts, 'list_consumer_group_offsets')

    # A second consumer of the group resumes after the commits: nothing old, only what is new.
    assigned = []
    consumer = group_consumer(bootstrap, group, topic, assigned)
    try:
        stale = consume(consumer, 0, assigned)
        check(not stale, f'second consumer got already-committed messages: {stale}')
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        check_committed(consumer.committed(tps, timeout=TIMEOUT_S), topic, counts,
                        'second consumer committed()')
        sent = produce(bootstrap, topic, [(i % PARTITIONS, f'new{i}'.encode()) for i in range(6)],
                       before=sent)
        got = consume(consumer, 6, assigned)
        want = {p: [(o, sent[p][o]) for o in range(counts[p], len(sent[p]))] for p in sent}
        check(got == want, f'second consumer got {got}, expected only the new {want}')
        check_committed(consumer.commit(asynchronous=False), topic,
                        {p: len(vs) for p, vs in sent.items()}, 'second commit')
    finally:
        consumer.close()
    print(f'confluent-kafka {topic}: group {group} resumed at {counts}, then read 6 new')
    check_rebalances(bootstrap, admin, run)


def check_rebalances(bootstrap, admin, run):
    """Two members of a group on a 4-partition topic: the second's join splits the partitions
    between them (disjoint, covering all 4; DescribeGroups agrees); when the first closes
    (LeaveGroup v1) the second is given all 4."""
    topic = group = f'ck-split-{run}'
    futures = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    check(futures[topic].result(timeout=TIMEOUT_S) is None, f'create {topic}')
    held = {'a': set(), 'b': set()}

    def member(name):
        consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': group,
                             'client.id': name, 'enable.auto.commit': False,
                             'session.timeout.ms': 6000, 'heartbeat.interval.ms': 1000})
        consumer.subscribe(
            [topic],
            on_assign=lambda c, tps: held.__setitem__(name, {tp.partition for tp in tps}),
            on_revoke=lambda c, tps: held.__setitem__(name, set()))
        return consumer

    def poll_until(what, consumers, done):
        deadline = time.monotonic() + TIMEOUT_S
        while not done():
            check(time.monotonic() < deadline, f'{what}: not after {TIMEOUT_S} s ({held})')
            for c in consumers:
                msg = c.poll(0.1)
                check(msg is None or msg.error() is None, f'consumer error: {msg and msg.error()}')

    a, b = member('a'), None
    try:
        poll_until('the first member holds all 4 partitions', [a],
                   lambda: held['a'] == {0, 1, 2, 3})
        b = member('b')
        poll_until('both members hold partitions', [a, b],
                   lambda: held['a'] and held['b'] and len(held['a']) + len(held['b']) == 4)
        check(not (held['a'] & held['b']) and held['a'] | held['b'] == {0, 1, 2, 3},
              f'assignments after the second joined: {held}')
        desc = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
        described = {m.client_id: {tp.partition for tp in m.assignment.topic_partitions}
                     for m in desc.members}
        check(desc.state == ConsumerGroupState.STABLE and described == held,
              f'describe_consumer_groups: {desc.state}, {described}; members hold {held}')
        a.close()
        a = None
        poll_until('the second member holds all 4 after the first left', [b],
                   lambda: held['b'] == {0, 1, 2, 3})
    finally:
        for c in (a, b):
            if c is not None:
                c.close()
    print(f'confluent-kafka {topic}: split between two members, then all to the one left')


if __name__ == '__main__':
    run_main(main)
