"""confluent-kafka 2.16.1 (librdkafka 2.16.0) AdminClient's admin APIs against the broker at
argv[1] (host:port). The broker runs with --retention-check-ms 200.

Checks, with assertions on the effects, not only on the answers:
  * describe_configs (DescribeConfigs v1) of a new topic: retention.ms at the broker default
    (source DEFAULT_CONFIG), flush.policy read-only; of broker 1: read-only broker.id; of an
    unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
  * incremental_alter_configs (IncrementalAlterConfigs v1): segment.bytes=1048576 (the smallest a client may set) and
    retention.bytes=2097152 are reported as DYNAMIC_TOPIC_CONFIG and take effect without a
    restart: after producing ~5 MB the low watermark moves past 0 (retention deleted old
    segments). A bad value (segment.bytes=10, below the 1 MiB a client may set) and an
    unknown name are refused with INVALID_CONFIG; a DELETE puts retention.bytes back to its
    default.
  * alter_configs (AlterConfigs, legacy): the request is the whole set of overrides, so
    segment.bytes, left out, returns to its default while retention.ms is set.
  * create_partitions (CreatePartitions): a keyed producer with a short metadata refresh
    produces to a 1-partition topic, the topic grows to 4, and the same producer keeps
    delivering without errors, now also to the new partitions; list_topics shows 4; asking for
    2 fails with INVALID_PARTITIONS.
  * delete_records (DeleteRecords): before offset 6 of 10 -> low watermark 6; a consumer
    assigned at OFFSET_BEGINNING gets offsets 6..9 only; get_watermark_offsets says (6, 10).
  * describe_cluster (DescribeCluster): one node, id 1, controller 1, the cluster id.
  * alter_consumer_group_offsets (OffsetCommit) gives an empty group a commit that
    list_consumer_group_offsets reads back; delete_consumer_groups (DeleteGroups): a group with
    only commits is deleted (it leaves
    list_consumer_groups, its offsets are gone); a group with a live member fails with
    NON_EMPTY_GROUP. (confluent-kafka has no delete_consumer_group_offsets: OffsetDelete is
    tested with kafka-python.)

Exits non-zero with a message on the first failure.
"""
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions,
                             KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, ResourceType)

from common import check, run_main, wait_for

TIMEOUT_S = 15
WEEK_MS = str(7 * 24 * 3600 * 1000)


def create(admin, topic, partitions=1):
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                           replication_factor=1)]).values():
        f.result(timeout=TIMEOUT_S)


def error_code(future):
    try:
        future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


def describe(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=TIMEOUT_S)


def produce(bootstrap, topic, values):
    # One record per batch: segments roll between batches, so retention has whole sealed
    # segments to delete.
    producer = Producer({'bootstrap.servers': bootstrap, 'batch.num.messages': 1})
    errors = []
    for v in values:
        producer.produce(topic, value=v, partition=0,
                         on_delivery=lambda err, msg: err and errors.append(err))
        producer.poll(0)
    check(producer.flush(TIMEOUT_S) == 0 and not errors, f'produce to {topic}: {errors}')


def check_configs(bootstrap, admin):
    topic = f'ck-cfg-{uuid.uuid4().hex[:8]}'
    create(admin, topic)
    configs = describe(admin, topic)
    ret = configs['retention.ms']
    check(ret.value == WEEK_MS and ret.source == ConfigSource.DEFAULT_CONFIG.value
          and not ret.is_read_only, f'retention.ms: {ret!r} {ret.source}')
    check(configs['flush.policy'].is_read_only, 'flush.policy is not read-only')
    broker_res = ConfigResource(ResourceType.BROKER, '1')
    broker = admin.describe_configs([broker_res])[broker_res].result(timeout=TIMEOUT_S)
    check(broker['broker.id'].value == '1' and broker['broker.id'].is_read_only,
          f"broker.id: {broker.get('broker.id')!r}")
    unknown = ConfigResource(ResourceType.TOPIC, 'ck-no-such-topic')
    code = error_code(admin.describe_configs([unknown])[unknown])
    check(code == KafkaError.UNKNOWN_TOPIC_OR_PART, f'describe unknown topic: {code}')

    def alter(entries):
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
        return admin.incremental_alter_configs([res])[res]

    set_ = AlterConfigOpType.SET
    check(error_code(alter([ConfigEntry('segment.bytes', '1048576', incremental_operation=set_),
                            ConfigEntry('retention.bytes', '2097152',
                                        incremental_operation=set_)])) is None,
          'incremental_alter_configs failed')
    configs = describe(admin, topic)
    for name, value in (('segment.bytes', '1048576'), ('retention.bytes', '2097152')):
        c = configs[name]
        check(c.value == value and c.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              f'{name} after alter: {c!r} source {c.source}')

    produce(bootstrap, topic, [b'x' * 50000] * 100)
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'ck-watermarks'})
    try:
        low = wait_for('retention to delete old segments', lambda: consumer.get_watermark_offsets(
            TopicPartition(topic, 0), timeout=TIMEOUT_S)[0])
        check(0 < low < 100, f'low watermark after retention: {low}')
    finally:
        consumer.close()

    for bad in (ConfigEntry('segment.bytes', '10', incremental_operation=set_),
                ConfigEntry('no.such.config', '1', incremental_operation=set_)):
        code = error_code(alter([bad]))
        check(code == KafkaError.INVALID_CONFIG, f'altering {bad.name}={bad.value}: {code}')
    check(describe(admin, topic)['segment.bytes'].value == '1048576', 'a refused alter changed it')

    check(error_code(alter([ConfigEntry('retention.bytes', None,
                                        incremental_operation=AlterConfigOpType.DELETE)]))
          is None, 'DELETE of retention.bytes failed')
    c = describe(admin, topic)['retention.bytes']
    check(c.value == '-1' and c.source == ConfigSource.DEFAULT_CONFIG.value,
          f'retention.bytes after DELETE: {c!r}')

    # Legacy AlterConfigs: whatever the request leaves out returns to the default.
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={'retention.ms': '3600000'})
    admin.alter_configs([res])[res].result(timeout=TIMEOUT_S)
    configs = describe(admin, topic)
    check(configs['retention.ms'].value == '3600000'
          and configs['segment.bytes'].value == str(1 << 30),
          f"after alter_configs: {configs['retention.ms']!r}, {configs['segment.bytes']!r}")


def check_partitions(bootstrap, admin):
    topic = f'ck-parts-{uuid.uuid4().hex[:8]}'
    create(admin, topic)
    reports = []
    producer = Producer({'bootstrap.servers': bootstrap, 'topic.metadata.refresh.interval.ms': 500})

    def send(n, tag):
        for i in range(n):
            producer.produce(topic, key=f'{tag}-{i}'.encode(), value=b'v',
                             on_delivery=lambda err, msg: reports.append((err, msg.partition())))
            producer.poll(0)
        check(producer.flush(TIMEOUT_S) == 0, 'undelivered messages')

    send(20, 'before')
    check({p for _, p in reports} == {0}, f'before: {reports}')
    for f in admin.create_partitions([NewPartitions(topic, 4)]).values():
        f.result(timeout=TIMEOUT_S)
    md = admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
    check(sorted(md.partitions) == [0, 1, 2, 3], f'partitions after the increase: {md.partitions}')

    def spread():
        send(20, f'after-{time.time()}')
        return {p for _, p in reports} > {0}
    wait_for('the producer to use the new partitions', spread)
    check(all(err is None for err, _ in reports), f'delivery errors: {reports}')

    code = error_code(admin.create_partitions([NewPartitions(topic, 2)])[topic])
    check(code == KafkaError.INVALID_PARTITIONS, f'4 -> 2 partitions: {code}')


def check_delete_records(bootstrap, admin):
    topic = f'ck-del-{uuid.uuid4().hex[:8]}'
    create(admin, topic)
    produce(bootstrap, topic, [str(i).encode() for i in range(10)])
    tp = TopicPartition(topic, 0, 6)
    result = admin.delete_records([tp])[tp].result(timeout=TIMEOUT_S)
    check(result.low_watermark == 6, f'delete_records: {result}')
    consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'ck-del',
                         'enable.auto.commit': False})
    try:
        check(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)
              == (6, 10), 'watermarks after delete_records')
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.time() + TIMEOUT_S
        while len(got) < 4 and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.offset())
        check(got == [6, 7, 8, 9], f'consumed from the beginning: {got}')
    finally:
        consumer.close()


def check_cluster(admin):
    cluster = admin.describe_cluster().result(timeout=TIMEOUT_S)
    check([n.id for n in cluster.nodes] == [1] and cluster.controller.id == 1
          and cluster.cluster_id, f'describe_cluster: {cluster}')


def check_groups(bootstrap, admin):
    topic = f'ck-grp-{uuid.uuid4().hex[:8]}'
    create(admin, topic)
    produce(bootstrap, topic, [b'1', b'2'])
    empty, live = f'ck-empty-{uuid.uuid4().hex[:6]}', f'ck-live-{uuid.uuid4().hex[:6]}'
    # alter_consumer_group_offsets (OffsetCommit from the admin client) makes the group.
    altered = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(empty, [TopicPartition(topic, 0, 2)])])[empty]
    parts = altered.result(timeout=TIMEOUT_S).topic_partitions
    check([(p.offset, p.error) for p in parts] == [(2, None)], f'alter offsets: {parts}')
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(empty, [TopicPartition(topic, 0)])])[empty]
    parts = listed.result(timeout=TIMEOUT_S).topic_partitions
    check([p.offset for p in parts] == [2], f'offsets of {empty}: {parts}')

    member = Consumer({'bootstrap.servers': bootstrap, 'group.id': live,
                       'session.timeout.ms': 6000, 'heartbeat.interval.ms': 1000})
    member.subscribe([topic])
    try:
        wait_for('the live member to be assigned',
                 lambda: member.poll(0.2) is not None or member.assignment())
        futures = admin.delete_consumer_groups([empty, live])
        check(error_code(futures[empty]) is None, f'deleting {empty}')
        code = error_code(futures[live])
        check(code == KafkaError.NON_EMPTY_GROUP, f'deleting a live group: {code}')
    finally:
        member.close()
    listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
    ids = {g.group_id for g in listed.valid}
    check(empty not in ids and live in ids, f'groups after delete: {ids}')
    left = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(empty, [TopicPartition(topic, 0)])])[empty]
    parts = left.result(timeout=TIMEOUT_S).topic_partitions
    check([p.offset for p in parts] == [-1001], f'offsets of the deleted group: {parts}')


def main(bootstrap):
    admin = AdminClient({'bootstrap.servers': bootstrap})
    check_configs(bootstrap, admin)
    check_partitions(bootstrap, admin)
    check_delete_records(bootstrap, admin)
    check_cluster(admin)
    check_groups(bootstrap, admin)


if __name__ == '__main__':
    run_main(main)
