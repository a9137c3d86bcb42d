-- Keys the services share through the database. 'order_events': the API signs every buy event
-- it enqueues with it (HMAC-SHA256, in the event's `seckill-signature` Kafka header) and the
-- order workers verify it, so an item that requires a purchase token is only ever bought
-- through the API, whoever else may write to the queue (services/src/orders/signature.rs).
-- 32 bytes from PostgreSQL's strong random source (gen_random_uuid: 2 x 122 random bits),
-- made once, here; anyone who can read this table can already write orders directly.
CREATE TABLE event_keys (
    name       TEXT PRIMARY KEY,
    key        BYTEA NOT NULL CHECK (length(key) >= 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO event_keys (name, key)
VALUES ('order_events',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
