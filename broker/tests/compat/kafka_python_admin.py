"""kafka-python 3.0.12 KafkaAdminClient's admin APIs against the broker at argv[1] (host:port).

The broker runs with --retention-check-ms 200, so retention acts within a second. Checks, with
assertions on the effects, not only on the answers:
  * describe_configs (DescribeConfigs v4) of a new topic: every setting the broker has, with
    retention.ms at the broker default (source DEFAULT_CONFIG), flush.policy read-only; of the
    broker: read-only log.retention.ms and broker.id; of an unknown topic: nothing (the client
    drops the per-resource error code).
  * alter_configs, which picks IncrementalAlterConfigs v1 when advertised: segment.bytes=1048576 (the smallest a client may set)
    and retention.bytes=2097152 show up as DYNAMIC_TOPIC_CONFIG and take effect without a
    restart: after producing ~5 MB, the log start offset (beginning_offsets) moves past 0
    because retention deleted old segments. A bad value (retention.ms=-5) and an unknown name
    are refused with INVALID_CONFIG and a message; nothing changed. alter_configs with
    incremental=False (AlterConfigs v2) sets retention.ms and returns retention.bytes to its
    default (legacy semantics: the request is the whole set of overrides).
  * create_partitions (CreatePartitions v3): 1 -> 3 partitions, seen by a new Metadata and
    written to by a producer; 3 -> 2 is refused with INVALID_PARTITIONS.
  * delete_records (DeleteRecords v2): before offset 4 of 10 -> low watermark 4; a consumer
    reading from the beginning gets offsets 4..9 only.
  * describe_cluster (DescribeCluster v2): broker 1, controller 1, the cluster id.
  * describe_log_dirs (DescribeLogDirs v4): one log dir with every partition of the topics,
    sizes > 0 where data was written.
  * alter_group_offsets (OffsetCommit) gives an empty group commits, list_group_offsets reads
    them back; delete_groups (DeleteGroups v2): an empty group with commits is deleted (list_groups no
    longer has it, its committed offset is gone); a group with a live member gets
    NON_EMPTY_GROUP; delete_group_offsets (OffsetDelete v0) removes one partition's commit of
    an empty group and leaves the other's.

Prints "DELETED_RECORDS <topic> <offset>" so the Rust test can check the start survives a
restart. Exits non-zero with a message on the first failure.
"""
import uuid

import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions
from kafka.structs import OffsetAndMetadata

from common import check, run_main, wait_for

TIMEOUT_S = 15


def topic_configs(admin, topic, config_filter='all'):
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                 config_filter=config_filter)
    return res['topic'][topic]


def produce(bootstrap, topic, values, partition=0):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [producer.send(topic, value=v, partition=partition) for v in values]
        return [f.get(timeout=TIMEOUT_S).offset for f in futures]
    finally:
        producer.close(timeout=TIMEOUT_S)


def check_configs(bootstrap, admin, consumer):
    topic = f'kp-cfg-{uuid.uuid4().hex[:8]}'
    admin.create_topics({topic: {'num_partitions': 1, 'replication_factor': 1}})
    configs = topic_configs(admin, topic)
    for name in ('retention.ms', 'retention.bytes', 'segment.bytes', 'segment.ms',
                 'max.message.bytes', 'cleanup.policy'):
        check(name in configs, f'{name} missing from describe_configs: {sorted(configs)}')
    check(configs['retention.ms']['value'] == str(7 * 24 * 3600 * 1000)
          and configs['retention.ms']['config_source'] == 'DEFAULT_CONFIG'
          and not configs['retention.ms']['read_only'], f"retention.ms: {configs['retention.ms']}")
    check(configs['flush.policy']['read_only'], f"flush.policy: {configs['flush.policy']}")
    check(topic_configs(admin, topic, 'modified') == {}, 'a new topic reports modified configs')

    broker = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, '1')],
                                    config_filter='all')['broker']['1']
    check(broker['broker.id']['value'] == '1' and broker['log.retention.ms']['read_only'],
          f'broker configs: {broker}')

    # kafka-python drops per-resource errors of DescribeConfigs: an unknown topic shows as no
    # configs (the error code itself is checked in wire/admin_requests.rs).
    unknown = topic_configs(admin, 'kp-no-such-topic')
    check(unknown == {}, f'configs of an unknown topic: {unknown}')

    # IncrementalAlterConfigs: small segments and a small size limit, in force at once.
    result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={'segment.bytes': '1048576',
                                                          'retention.bytes': '2097152'})])
    check(result == {'topic': {topic: 'OK'}}, f'alter_configs: {result}')
    modified = topic_configs(admin, topic, 'modified')
    check({k: (v['value'], v['config_source']) for k, v in modified.items()} ==
          {'segment.bytes': ('1048576', 'DYNAMIC_TOPIC_CONFIG'),
           'retention.bytes': ('2097152', 'DYNAMIC_TOPIC_CONFIG')},
          f'modified configs after alter: {modified}')

    offsets = produce(bootstrap, topic, [b'x' * 50000 for _ in range(100)])
    check(offsets == list(range(100)), f'offsets {offsets[:3]}...')
    tp = TopicPartition(topic, 0)
    start = wait_for('retention to delete old segments',
                     lambda: consumer.beginning_offsets([tp])[tp])
    check(0 < start < 100, f'log start after retention: {start}')
    print(f'RETENTION_TOPIC {topic} {start}', flush=True)

    for bad, what in (({'retention.ms': '-5'}, 'retention_ms'),
                      ({'no.such.config': '1'}, 'no.such.config')):
        result = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=bad)],
            raise_on_unknown=False)
        got = result['topic'][topic]
        check(isinstance(got, str) and 'InvalidConfig' in got and what in got,
              f'alter_configs {bad}: {got!r}, expected INVALID_CONFIG naming {what}')
    check(topic_configs(admin, topic)['retention.ms']['value'] == str(7 * 24 * 3600 * 1000),
          'a refused alter changed retention.ms')

    # Legacy AlterConfigs: the request is the topic's whole set of overrides. kafka-python
    # first reads the modified ones (DescribeConfigs) and sends them along, so the earlier
    # settings stay; that a left-out one returns to its default is checked in
    # wire/admin_requests.rs.
    result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={'retention.ms': '3600000'})],
                                 incremental=False)
    check(result == {'topic': {topic: 'OK'}}, f'legacy alter_configs: {result}')
    modified = topic_configs(admin, topic, 'modified')
    check({k: v['value'] for k, v in modified.items()} ==
          {'retention.ms': '3600000', 'segment.bytes': '1048576', 'retention.bytes': '2097152'},
          f'modified configs after the legacy alter: {modified}')


def check_partitions(bootstrap, admin):
    topic = f'kp-parts-{uuid.uuid4().hex[:8]}'
    admin.create_topics({topic: {'num_partitions': 1, 'replication_factor': 1}})
    admin.create_partitions({topic: NewPartitions(total_count=3)})
    md = admin.describe_topics([topic])
    check(sorted(p['partition_index'] for p in md[0]['partitions']) == [0, 1, 2],
          f'partitions after create_partitions: {md}')
    check(produce(bootstrap, topic, [b'a', b'b'], partition=2) == [0, 1],
          'producing to the new partition 2')
    try:
        admin.create_partitions({topic: NewPartitions(total_count=2)})
    except Errors.InvalidPartitionsError:
        pass
    else:
        raise AssertionError('create_partitions 3 -> 2 succeeded')
    return topic


def check_delete_records(bootstrap, admin):
    topic = f'kp-del-{uuid.uuid4().hex[:8]}'
    admin.create_topics({topic: {'num_partitions': 1, 'replication_factor': 1}})
    produce(bootstrap, topic, [str(i).encode() for i in range(10)])
    tp = TopicPartition(topic, 0)
    result = admin.delete_records({tp: 4})
    check(result[tp]['low_watermark'] == 4, f'delete_records: {result}')
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset='earliest',
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = [m.offset for m in consumer]
        check(got == list(range(4, 10)), f'consumed from the beginning: {got}')
    finally:
        consumer.close()
    print(f'DELETED_RECORDS {topic} 4', flush=True)


def check_cluster(admin, parts_topic):
    cluster = admin.describe_cluster()
    check(cluster['controller_id'] == 1 and [b['broker_id'] for b in cluster['brokers']] == [1]
          and cluster['cluster_id'], f'describe_cluster: {cluster}')
    dirs = admin.describe_log_dirs()
    check(len(dirs) == 1 and len(dirs[0]['log_dirs']) == 1, f'describe_log_dirs: {dirs}')
    log_dir = dirs[0]['log_dirs'][0]
    sizes = {(t['name'], p['partition_index']): p['partition_size']
             for t in log_dir['topics'] for p in t['partitions']}
    kp = {p: v for (t, p), v in sizes.items() if t == parts_topic}
    check(sorted(kp) == [0, 1, 2] and kp[0] == 0 and kp[2] > 0,
          f'log dir sizes of {parts_topic}: {kp}')


def check_groups(bootstrap, admin):
    topic = f'kp-grp-{uuid.uuid4().hex[:8]}'
    admin.create_topics({topic: {'num_partitions': 2, 'replication_factor': 1}})
    produce(bootstrap, topic, [b'1', b'2'], partition=0)
    produce(bootstrap, topic, [b'3'], partition=1)
    empty, live = f'kp-empty-{uuid.uuid4().hex[:6]}', f'kp-live-{uuid.uuid4().hex[:6]}'
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    # alter_group_offsets (OffsetCommit v8 from the admin client) makes the group.
    result = admin.alter_group_offsets(empty, {tp0: OffsetAndMetadata(2, '', -1),
                                               tp1: OffsetAndMetadata(1, '', -1)})
    check(result == {tp0: Errors.NoError, tp1: Errors.NoError}, f'alter_group_offsets: {result}')
    offsets = admin.list_group_offsets(empty)[empty]
    check({tp: o.offset for tp, o in offsets.items()} == {tp0: 2, tp1: 1},
          f'committed offsets: {offsets}')

    # OffsetDelete: one partition's commit goes, the other's stays.
    result = admin.delete_group_offsets(empty, [tp0])
    check(result == {tp0: Errors.NoError}, f'delete_group_offsets: {result}')
    offsets = admin.list_group_offsets(empty)[empty]
    check({tp: o.offset for tp, o in offsets.items()} == {tp1: 1},
          f'committed offsets after delete_group_offsets: {offsets}')

    member = KafkaConsumer(topic, group_id=live, bootstrap_servers=bootstrap,
                           session_timeout_ms=6000, heartbeat_interval_ms=1000)
    try:
        wait_for('the live member to be assigned', lambda: member.poll(200) is not None
                 and member.assignment())
        result = admin.delete_groups([empty, live])
        check(result == {empty: 'OK', live: 'NonEmptyGroupError'},
              f'delete_groups: {result}')
    finally:
        member.close()
    groups = [g['group_id'] for g in admin.list_groups()]
    check(empty not in groups and live in groups, f'groups after delete: {groups}')
    left = admin.list_group_offsets(empty)[empty]
    check(all(o.offset == -1 for o in left.values()), f'the deleted group has offsets: {left}')


def main(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        check_configs(bootstrap, admin, consumer)
        parts_topic = check_partitions(bootstrap, admin)
        check_delete_records(bootstrap, admin)
        check_cluster(admin, parts_topic)
        check_groups(bootstrap, admin)
    finally:
        consumer.close()
        admin.close()


if __name__ == '__main__':
    run_main(main)
