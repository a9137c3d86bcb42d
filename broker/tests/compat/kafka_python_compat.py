"""kafka-python 3.0.12 against the broker at argv[1] (host:port), with no consumer group.

Checks, with assertions on the values that come back:
  * KafkaAdminClient.create_topics makes a 3-partition topic that describe_topics and list_topics
    then show (leader 1 on every partition), and creating it again fails with
    TopicAlreadyExistsError (error 36);
  * a default producer (idempotent since 3.0) with a JSON value_serializer (JsonSerializer),
    string keys and headers: each future.get() names the right topic and partition, and
    offsets run 0, 1, 2, ... in send order on every partition;
  * a gzip producer (topic "kp-gzip-*", 1 partition): its batches are stored as sent, and the
    consumer decompresses them intact;
  * consumers with group_id=None: beginning_offsets/end_offsets (ListOffsets) give 0 and the
    count produced; assign() + seek_to_beginning() on the JSON topic, and
    auto_offset_reset='earliest' on the gzip topic; every message comes back exactly once, in
    order per partition, with its key, value, headers and offset.

Prints "GZIP_TOPIC <name> <uncompressed value bytes>" so the Rust test can check the stored log is
really compressed. Exits non-zero with a message on the first failure.
"""
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAlreadyExistsError
from kafka.serializer import DefaultSerializer, JsonSerializer

from common import check, compare, run_main

TIMEOUT_S = 10
PARTITIONS = 3


def create_topics(bootstrap, json_topic, gzip_topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        result = admin.create_topics({
            json_topic: {'num_partitions': PARTITIONS, 'replication_factor': 1},
            gzip_topic: {'num_partitions': 1, 'replication_factor': 1},
        })
        codes = {t['name']: t['error_code'] for t in result['topics']}
        check(codes == {json_topic: 0, gzip_topic: 0}, f'create_topics answered {result}')

        described = {t['name']: t for t in admin.describe_topics([json_topic, gzip_topic])}
        for name, count in ((json_topic, PARTITIONS), (gzip_topic, 1)):
            topic = described.get(name)
            check(topic is not None and topic['error_code'] == 0, f'describe {name}: {topic}')
            parts = sorted((p['partition_index'], p['leader_id'], p['error_code'])
                           for p in topic['partitions'])
            check(parts == [(i, 1, 0) for i in range(count)], f'partitions of {name}: {parts}')
        listed = admin.list_topics()
        check({json_topic, gzip_topic} <= set(listed), f'list_topics: {listed}')

        try:
            admin.create_topics({json_topic: {'num_partitions': PARTITIONS}})
        except TopicAlreadyExistsError:
            pass
        else:
            raise AssertionError(f'creating {json_topic} twice did not raise '
                                 'TopicAlreadyExistsError')
        again = admin.create_topics({json_topic: {'num_partitions': 1}}, raise_errors=False)
        check([t['error_code'] for t in again['topics']] == [36], f'second create: {again}')
    finally:
        admin.close()


def produce(producer, topic, messages):
    """Sends (partition, key, value, headers) tuples; checks each future's metadata."""
    futures = [producer.send(topic, key=k, value=v, headers=h, partition=p)
               for p, k, v, h in messages]
    next_offset = {}
    for (p, _, _, _), future in zip(messages, futures):
        md = future.get(timeout=TIMEOUT_S)
        want = next_offset.get(p, 0)
        check((md.topic, md.partition, md.offset) == (topic, p, want),
              f'send to {topic}[{p}] returned {md}, expected offset {want}')
        next_offset[p] = want + 1


def consume(consumer, expected_count):
    """Polls until expected_count records arrived (or TIMEOUT_S), then checks nothing more comes."""
    got = {}
    deadline = time.monotonic() + TIMEOUT_S
    while sum(map(len, got.values())) < expected_count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                got.setdefault(r.partition, []).append((r.offset, r.key, r.value, list(r.headers)))
    extra = consumer.poll(timeout_ms=500)
    check(not extra, f'records past the {expected_count} expected: {extra}')
    return got


def expected_by_partition(messages):
    want = {}
    for p, k, v, h in messages:
        rows = want.setdefault(p, [])
        rows.append((len(rows), k, v, list(h)))
    return want


def main(bootstrap):
    run = uuid.uuid4().hex[:10]
    json_topic, gzip_topic = f'kp-json-{run}', f'kp-gzip-{run}'
    create_topics(bootstrap, json_topic, gzip_topic)

    # JSON values, str keys, headers; default settings (idempotent, acks=all).
    json_msgs = [(i % PARTITIONS, f'key-{i}', {'n': i, 'text': f'order {i}'},
                  [('n', str(i).encode()), ('source', b'kafka-python')]) for i in range(30)]
    producer = KafkaProducer(bootstrap_servers=bootstrap,
                             key_serializer=DefaultSerializer(),
                             value_serializer=JsonSerializer())
    check(producer.config['enable_idempotence'], 'kafka-python default producer is not idempotent')
    produce(producer, json_topic, json_msgs)
    producer.close(timeout=TIMEOUT_S)

    # gzip: highly compressible values, sent in a few multi-record batches.
    gzip_msgs = [(0, f'g{i}'.encode(), (f'payload {i} ' + 'x' * 1000).encode(),
                  [('i', str(i).encode())]) for i in range(200)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type='gzip', linger_ms=50)
    produce(producer, gzip_topic, gzip_msgs)
    producer.close(timeout=TIMEOUT_S)
    print(f'GZIP_TOPIC {gzip_topic} {sum(len(v) for _, _, v, _ in gzip_msgs)}')

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset='earliest',
                             key_deserializer=DefaultSerializer(),
                             value_deserializer=JsonSerializer())
    tps = [TopicPartition(json_topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    check(consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}, 'beginning_offsets')
    check(consumer.end_offsets(tps) == {tp: len(json_msgs) // PARTITIONS for tp in tps},
          'end_offsets')
    consumer.seek_to_beginning()
    got = consume(consumer, len(json_msgs))
    consumer.close()
    compare(json_topic, got, expected_by_partition(json_msgs))

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset='earliest')
    consumer.assign([TopicPartition(gzip_topic, 0)])
    got = consume(consumer, len(gzip_msgs))
    consumer.close()
    compare(gzip_topic, got, expected_by_partition(gzip_msgs))
    print(f'kafka-python {json_topic} {gzip_topic}: all checks passed')


if __name__ == '__main__':
    run_main(main)
