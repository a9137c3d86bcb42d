#!/usr/bin/env python3
"""A backend that talks Kafka directly to the inference workers (kafka-python).

It produces its own message to the request topic, keyed by a UUID it made, with the reply
address in the headers (the convention of Spring Kafka's request/reply template):

    key     = the UUID
    value   = {"uuid": "<UUID>", "nature": "Can you tell me how much this is?", "database": "cinema"}
    headers = kafka_replyTopic: <topic it reads>, kafka_correlationId: <bytes it chose>

and reads the reply on that topic: the message whose kafka_correlationId header is its own,
value {"uuid": "<UUID>", "status": "done" | "failed" | "expired", "output"?: ..., "error"?: ...}.
Without the headers the worker only stores the result; it is then in PostgreSQL under the UUID
(table inference_requests) and at GET /infer/<UUID> on the API.

    python3 kafka_backend.py --bootstrap 127.0.0.1:9092 "Can you tell me how much this is?"

Prints the reply as one JSON line. Needs kafka-python (pip install kafka-python==3.0.12).
"""

import argparse
import json
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("question")
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--database", default="cinema")
    p.add_argument("--requests-topic", default="inference.requests")
    p.add_argument("--reply-topic", default="backend.replies")
    p.add_argument("--uuid", default=None, help="the request's UUID (default: a new one)")
    p.add_argument("--no-reply", action="store_true", help="send no reply headers; only store")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()

    request_id = args.uuid or str(uuid.uuid4())
    correlation = uuid.uuid4().bytes  # any bytes: the worker echoes them

    # The reply topic must exist before we read it from its end.
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        admin.create_topics([NewTopic(args.reply_topic, num_partitions=1, replication_factor=-1)])
    except TopicAlreadyExistsError:
        pass
    admin.close()

    consumer = None
    if not args.no_reply:
        consumer = KafkaConsumer(
            args.reply_topic,
            bootstrap_servers=args.bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            consumer_timeout_ms=int(args.timeout * 1000),
        )
        # Position at the end before sending, so the reply cannot be missed.
        deadline = time.time() + 10
        while not consumer.assignment() and time.time() < deadline:
            consumer.poll(timeout_ms=100)
        consumer.seek_to_end()
        for tp in consumer.assignment():
            consumer.position(tp)

    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    message = {"uuid": request_id, "nature": args.question, "database": args.database}
    headers = [] if args.no_reply else [
        ("kafka_replyTopic", args.reply_topic.encode()),
        ("kafka_correlationId", correlation),
    ]
    producer.send(
        args.requests_topic,
        key=request_id.encode(),
        value=json.dumps(message).encode(),
        headers=headers,
    ).get(timeout=30)
    producer.close()

    if consumer is None:
        print(json.dumps({"uuid": request_id, "sent": True}))
        return 0
    for record in consumer:
        if dict(record.headers).get("kafka_correlationId") == correlation:
            reply = json.loads(record.value)
            print(json.dumps(reply))
            return 0 if reply.get("uuid") == request_id else 1
    print(json.dumps({"uuid": request_id, "error": "no reply within the timeout"}))
    return 2


if __name__ == "__main__":
    sys.exit(main())
