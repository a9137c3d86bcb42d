"""TLS (the SSL security protocol) against the broker, with kafka-python 3.0.12 or
confluent-kafka 2.16.1 (librdkafka 2.16.0).

    python3 tls_compat.py HOST:PORT kafka-python|confluent-kafka CA_FILE OTHER_CA_FILE

Checks, in order:
1. over SSL, with the broker's certificate checked against CA_FILE and its name against HOST,
   five records are produced and all read back;
2. a client trusting only OTHER_CA_FILE (a CA that did not sign the broker's certificate) gets
   no metadata, and says why: certificate verification failed.
"""

import logging
import sys
import time
import traceback

from common import check

N = 5


def kafka_python(addr, ca, other_ca):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import errors

    def conf(cafile):
        return dict(bootstrap_servers=addr, security_protocol='SSL', ssl_cafile=cafile,
                    ssl_check_hostname=True)

    topic = 'tls-kp'
    producer = KafkaProducer(**conf(ca))
    for i in range(N):
        producer.send(topic, key=b'k', value=b'v%d' % i).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(**conf(ca), enable_auto_commit=False,
                             auto_offset_reset='earliest', consumer_timeout_ms=10000)
    consumer.assign([TopicPartition(topic, 0)])
    got = [m.value for m in consumer]
    consumer.close()
    check(got == [b'v%d' % i for i in range(N)], f'read back {got}')
    print('PRODUCE_CONSUME ok')

    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    logging.getLogger('kafka').addHandler(handler)
    logging.getLogger('kafka').setLevel(logging.DEBUG)
    served = False
    try:
        # kafka-python 3.0 retries a failed bootstrap until its timeout, then raises; why it
        # failed is in what it logs on the way.
        KafkaAdminClient(**conf(other_ca), request_timeout_ms=5000, bootstrap_timeout_ms=5000)
        served = True
    except errors.KafkaError as e:
        seen.append(repr(e))
    check(not served, 'a client trusting another CA was served')
    logging.getLogger('kafka').removeHandler(handler)
    clear = [m for m in seen if 'CERTIFICATE_VERIFY_FAILED' in m or 'certificate verify failed' in m]
    check(clear, f'no clear certificate error, got {seen[-10:]}')
    print('WRONG_CA', clear[0])


def confluent(addr, ca, other_ca):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
    from confluent_kafka.admin import AdminClient

    def conf(cafile, **extra):
        c = {'bootstrap.servers': addr, 'security.protocol': 'SSL', 'ssl.ca.location': cafile}
        c.update(extra)
        return c

    topic = 'tls-ck'
    producer = Producer(conf(ca))
    for i in range(N):
        producer.produce(topic, key=b'k', value=b'v%d' % i)
    check(producer.flush(30) == 0, 'could not deliver every message')
    consumer = Consumer(conf(ca, **{'group.id': 'tls-ck', 'enable.auto.commit': False}))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.time() + 20
    while len(got) < N and time.time() < deadline:
        m = consumer.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value())
    consumer.close()
    check(got == [b'v%d' % i for i in range(N)], f'read back {got}')
    print('PRODUCE_CONSUME ok')

    errors = []
    wrong = AdminClient(conf(other_ca, error_cb=errors.append))
    try:
        wrong.list_topics(timeout=5)
        raise AssertionError('a client trusting another CA was served')
    except KafkaException as e:
        errors.append(e.args[0])
    wrong.poll(1)  # delivers error_cb events
    msgs = [e.str() for e in errors]
    check(any('certificate verify failed' in m for m in msgs),
          f'no clear certificate error, got {msgs}')
    print('WRONG_CA', next(m for m in msgs if 'certificate verify failed' in m))


if __name__ == '__main__':
    if len(sys.argv) != 5:
        sys.exit(f'usage: {sys.argv[0]} HOST:PORT kafka-python|confluent-kafka CA_FILE OTHER_CA_FILE')
    addr, client, ca, other_ca = sys.argv[1:]
    try:
        {'kafka-python': kafka_python, 'confluent-kafka': confluent}[client](addr, ca, other_ca)
    except Exception as exc:  # any failure: say what, exit non-zero
        traceback.print_exc()
        sys.exit(f'FAILED: {type(exc).__name__}: {exc}')
