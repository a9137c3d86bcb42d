"""confluent-kafka 2.16.1 (librdkafka 2.16.0) against the broker at argv[1] (host:port), no group.

Checks, with assertions on the values that come back:
  * AdminClient.create_topics makes a 3-partition topic that list_topics then shows (leader 1 on
    every partition), and creating it again fails with TOPIC_ALREADY_EXISTS;
  * an idempotent producer ('enable.idempotence': True) with keys and headers: every delivery
    callback reports no error, the right topic and partition, and offsets 0, 1, 2, ... in
    produce order on every partition;
  * a gzip producer ('compression.type': 'gzip', topic "ck-gzip-*", 1 partition): its batches are
    stored as sent, and the consumer decompresses them intact;
  * a Consumer with 'group.id' set but no subscribe and no commits: get_watermark_offsets
    (ListOffsets) gives 0 and the count produced; then assign() + poll() from OFFSET_BEGINNING:
    every message comes back exactly once, in order per partition, with its key, value, headers
    and offset.

Prints "GZIP_TOPIC <name> <uncompressed value bytes>" so the Rust test can check the stored log is
really compressed. Exits non-zero with a message on the first failure.
"""
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from common import check, compare, run_main

TIMEOUT_S = 10
PARTITIONS = 3


def create_topics(bootstrap, idem_topic, gzip_topic):
    admin = AdminClient({'bootstrap.servers': bootstrap})
    new_topics = [NewTopic(idem_topic, num_partitions=PARTITIONS, replication_factor=1),
                  NewTopic(gzip_topic, num_partitions=1, replication_factor=1)]
    futures = admin.create_topics(new_topics, operation_timeout=TIMEOUT_S)
    for name, future in futures.items():
        check(future.result(timeout=TIMEOUT_S) is None, f'create {name}')

    metadata = admin.list_topics(timeout=TIMEOUT_S)
    check([b.id for b in metadata.brokers.values()] == [1], f'brokers: {metadata.brokers}')
    for name, count in ((idem_topic, PARTITIONS), (gzip_topic, 1)):
        topic = metadata.topics.get(name)
        check(topic is not None and topic.error is None, f'metadata of {name}: {topic}')
        parts = sorted((p.id, p.leader, p.error) for p in topic.partitions.values())
        check(parts == [(i, 1, None) for i in range(count)],
              f'partitions of {name}: {parts}')

    again = admin.create_topics(new_topics[:1])
    try:
        again[idem_topic].result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        check(exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS,
              f'second create failed with {exc}, not TOPIC_ALREADY_EXISTS')
    else:
        raise AssertionError(f'creating {idem_topic} twice succeeded')


def produce(config, topic, messages):
    """Produces (partition, key, value, headers) tuples; checks each delivery report."""
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg.topic(), msg.partition(), msg.offset(), msg.key()))

    producer = Producer(config)
    for p, k, v, h in messages:
        producer.produce(topic, value=v, key=k, headers=h, partition=p, on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    check(left == 0, f'{left} messages to {topic} still undelivered after {TIMEOUT_S} s')
    check(len(reports) == len(messages),
          f'{len(reports)} delivery reports for {len(messages)} messages')

    by_key = {r[4]: r for r in reports}
    next_offset = {}
    for p, k, _, _ in messages:  # produce order; keys are unique
        err, t, rp, offset, _ = by_key[k]
        want = next_offset.get(p, 0)
        check(err is None, f'delivery of {k!r} to {topic}[{p}] failed: {err}')
        check((t, rp, offset) == (topic, p, want),
              f'{k!r} delivered to {t}[{rp}]@{offset}, expected {topic}[{p}]@{want}')
        next_offset[p] = want + 1


def consume(bootstrap, topic, partitions, expected_count):
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': f'unused-{topic}',
                         'enable.auto.commit': False, 'enable.auto.offset.store': False})
    got = {}
    try:
        for p in range(partitions):  # ListOffsets earliest/latest
            marks = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            check(marks == (0, expected_count // partitions),
                  f'watermarks of {topic}[{p}]: {marks}')
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + TIMEOUT_S
        while sum(map(len, got.values())) < expected_count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            check(msg.error() is None, f'consumer error on {topic}: {msg.error()}')
            got.setdefault(msg.partition(), []).append(
                (msg.offset(), msg.key(), msg.value(), msg.headers() or []))
        # Anything past the expected count would be a duplicate: give it a moment to show up.
        extra = consumer.poll(0.5)
        check(extra is None or extra.error() is not None,
              f'message past the {expected_count} expected: '
              f'{topic}[{extra and extra.partition()}]@{extra and extra.offset()}')
    finally:
        consumer.close()
    return got


def expected_by_partition(messages):
    want = {}
    for p, k, v, h in messages:
        rows = want.setdefault(p, [])
        rows.append((len(rows), k, v, h))
    return want


def main(bootstrap):
    run = uuid.uuid4().hex[:10]
    idem_topic, gzip_topic = f'ck-idem-{run}', f'ck-gzip-{run}'
    create_topics(bootstrap, idem_topic, gzip_topic)

    idem_msgs = [(i % PARTITIONS, f'key-{i}'.encode(), f'order {i}'.encode(),
                  [('n', str(i).encode()), ('source', b'confluent-kafka')]) for i in range(30)]
    produce({'bootstrap.servers': bootstrap, 'enable.idempotence': True}, idem_topic, idem_msgs)

    gzip_msgs = [(0, f'g{i}'.encode(), (f'payload {i} ' + 'x' * 1000).encode(),
                  [('i', str(i).encode())]) for i in range(200)]
    produce({'bootstrap.servers': bootstrap, 'compression.type': 'gzip', 'linger.ms': 50},
            gzip_topic, gzip_msgs)
    print(f'GZIP_TOPIC {gzip_topic} {sum(len(v) for _, _, v, _ in gzip_msgs)}')

    compare(idem_topic, consume(bootstrap, idem_topic, PARTITIONS, len(idem_msgs)),
            expected_by_partition(idem_msgs))
    compare(gzip_topic, consume(bootstrap, gzip_topic, 1, len(gzip_msgs)),
            expected_by_partition(gzip_msgs))
    print(f'confluent-kafka {idem_topic} {gzip_topic}: all checks passed')


if __name__ == '__main__':
    run_main(main)
