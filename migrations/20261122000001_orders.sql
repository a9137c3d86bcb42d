-- Sale items and the orders placed for them.
--
-- Invariants the order worker relies on:
-- * items.stock never goes below zero (CHECK), and only the worker changes it, under a row lock.
-- * orders.request_id is the idempotency key of a buy: a redelivered event inserts nothing new.
-- * at most one confirmed order per (user, item): the partial unique index below.

CREATE TABLE items (
    id            BIGINT PRIMARY KEY CHECK (id > 0),
    name          TEXT NOT NULL,
    initial_stock INTEGER NOT NULL CHECK (initial_stock >= 0),
    stock         INTEGER NOT NULL CHECK (stock >= 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (stock <= initial_stock)
);

CREATE TYPE order_status AS ENUM (
    'confirmed',
    'rejected_sold_out',
    'rejected_duplicate',
    'rejected_invalid'
);

CREATE TABLE orders (
    request_id   UUID PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    item_id      BIGINT NOT NULL,
    qty          INTEGER NOT NULL,
    status       order_status NOT NULL,
    accepted_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Where the event was in the queue, for audits.
    source_partition INTEGER NOT NULL,
    source_offset    BIGINT NOT NULL
);

CREATE UNIQUE INDEX orders_one_confirmed_per_user_item
    ON orders (user_id, item_id) WHERE status = 'confirmed';

CREATE INDEX orders_item_status ON orders (item_id, status);
