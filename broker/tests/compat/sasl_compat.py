"""SASL against the broker, with kafka-python 3.0.12 or confluent-kafka 2.16.1 (librdkafka 2.16.0).

    python3 sasl_compat.py HOST:PORT kafka-python|confluent-kafka MECHANISM [CA_FILE]

With CA_FILE the listener is SASL_SSL: the same checks run over TLS, the broker's certificate
checked against CA_FILE (and its name against HOST); without, SASL_PLAINTEXT.

The broker runs with the users of broker/tests/wire/sasl.rs: `admin` (admin role) and `alice`
(user role). Checks, in order:
1. the admin creates a topic; alice (not an admin) produces to it and reads everything back
   (right password works, and a non-admin may produce and consume);
2. a wrong password fails with a clear authentication error naming the mechanism;
3. alice cannot delete the topic (TOPIC_AUTHORIZATION_FAILED), the admin can.
"""

import logging
import sys
import time
import traceback

from common import check

USERS = {'admin': 'admin-secret', 'alice': 'alice-secret'}
N = 5


def kafka_python(addr, mech, ca):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka import errors

    def conf(user, password=None):
        c = dict(bootstrap_servers=addr, security_protocol='SASL_PLAINTEXT',
                 sasl_mechanism=mech, sasl_plain_username=user,
                 sasl_plain_password=password or USERS[user])
        if ca:
            c.update(security_protocol='SASL_SSL', ssl_cafile=ca, ssl_check_hostname=True)
        return c

    topic = 'sasl-kp-' + mech.lower() + ('-tls' if ca else '')
    admin = KafkaAdminClient(**conf('admin'))
    admin.create_topics([NewTopic(topic, 1, 1)])

    producer = KafkaProducer(**conf('alice'))
    for i in range(N):
        producer.send(topic, key=b'k', value=b'v%d' % i).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(**conf('alice'), enable_auto_commit=False,
                             auto_offset_reset='earliest', consumer_timeout_ms=10000)
    consumer.assign([TopicPartition(topic, 0)])
    got = [m.value for m in consumer]
    consumer.close()
    check(got == [b'v%d' % i for i in range(N)], f'alice read back {got}')
    print('PRODUCE_CONSUME ok')

    # kafka-python 3.0 retries a failed bootstrap until its timeout and then raises a timeout;
    # the broker's SASL_AUTHENTICATION_FAILED (58) and message are in what it logs on the way.
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logging.getLogger('kafka').addHandler(handler)
    try:
        KafkaAdminClient(**conf('alice', 'wrong-password'), request_timeout_ms=5000,
                         bootstrap_timeout_ms=5000)
        raise AssertionError('a wrong password was accepted')
    except (errors.SaslAuthenticationFailedError, errors.KafkaTimeoutError):
        pass
    logging.getLogger('kafka').removeHandler(handler)
    clear = [m for m in seen if 'Error 58' in m and 'invalid credentials' in m and mech in m]
    check(clear, f'no clear authentication error, got {seen}')
    print('WRONG_PASSWORD', clear[0])

    alice = KafkaAdminClient(**conf('alice'))
    try:
        alice.delete_topics([topic])
        raise AssertionError('alice (not an admin) deleted a topic')
    except errors.TopicAuthorizationFailedError as e:
        print('NON_ADMIN_DELETE refused:', e)
    alice.close()
    admin.delete_topics([topic])
    check(topic not in admin.list_topics(), 'the admin could not delete the topic')
    admin.close()
    print('ADMIN_DELETE ok')


def confluent(addr, mech, ca):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
    from confluent_kafka.admin import AdminClient, NewTopic

    def conf(user, password=None, **extra):
        c = {'bootstrap.servers': addr, 'security.protocol': 'SASL_PLAINTEXT',
             'sasl.mechanism': mech, 'sasl.username': user,
             'sasl.password': password or USERS[user]}
        if ca:
            c.update({'security.protocol': 'SASL_SSL', 'ssl.ca.location': ca})
        c.update(extra)
        return c

    topic = 'sasl-ck-' + mech.lower() + ('-tls' if ca else '')
    admin = AdminClient(conf('admin'))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    producer = Producer(conf('alice'))
    for i in range(N):
        producer.produce(topic, key=b'k', value=b'v%d' % i)
    check(producer.flush(30) == 0, 'alice could not deliver every message')
    consumer = Consumer(conf('alice', **{'group.id': 'sasl-ck', 'enable.auto.commit': False}))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.time() + 20
    while len(got) < N and time.time() < deadline:
        m = consumer.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value())
    consumer.close()
    check(got == [b'v%d' % i for i in range(N)], f'alice read back {got}')
    print('PRODUCE_CONSUME ok')

    errors = []
    wrong = AdminClient(conf('alice', 'wrong-password', error_cb=errors.append))
    try:
        wrong.list_topics(timeout=10)
        raise AssertionError('a wrong password was accepted')
    except KafkaException as e:
        errors.append(e.args[0])
    wrong.poll(1)  # delivers error_cb events
    msgs = [e.str() for e in errors]
    check(any('invalid credentials' in m and mech in m for m in msgs),
          f'no clear authentication error, got {msgs}')
    print('WRONG_PASSWORD', msgs[0])

    alice = AdminClient(conf('alice'))
    try:
        alice.delete_topics([topic])[topic].result(30)
        raise AssertionError('alice (not an admin) deleted a topic')
    except KafkaException as e:
        check(e.args[0].name() == 'TOPIC_AUTHORIZATION_FAILED', f'wrong refusal: {e}')
        print('NON_ADMIN_DELETE refused:', e)
    admin.delete_topics([topic])[topic].result(30)
    check(topic not in admin.list_topics(timeout=10).topics, 'the admin could not delete the topic')
    print('ADMIN_DELETE ok')


if __name__ == '__main__':
    if len(sys.argv) not in (4, 5):
        sys.exit(f'usage: {sys.argv[0]} HOST:PORT kafka-python|confluent-kafka MECHANISM [CA_FILE]')
    addr, client, mech = sys.argv[1:4]
    ca = sys.argv[4] if len(sys.argv) == 5 else None
    try:
        {'kafka-python': kafka_python, 'confluent-kafka': confluent}[client](addr, mech, ca)
    except Exception as exc:  # any failure: say what, exit non-zero
        traceback.print_exc()
        sys.exit(f'FAILED: {type(exc).__name__}: {exc}')
