-- What the live dashboard reads every tick, kept cheap to read however large `orders` grows.
--
-- * order_counts: orders per (item, status), maintained by the order worker in the same
--   transaction that inserts the orders (so it always equals a count over `orders`; the
--   verifier checks it). No foreign key: an order rejected as invalid may name an unknown item.
-- * A BRIN index on orders.processed_at: the latest orders are found by scanning only the most
--   recent block ranges. Rows are appended in processing order, so the index stays tiny and
--   costs the inserts next to nothing (a btree would add a tree insert per order).

CREATE TABLE order_counts (
    item_id BIGINT NOT NULL,
    status  order_status NOT NULL,
    n       BIGINT NOT NULL CHECK (n >= 0),
    PRIMARY KEY (item_id, status)
);

INSERT INTO order_counts (item_id, status, n)
SELECT item_id, status, count(*) FROM orders GROUP BY item_id, status;

CREATE INDEX orders_processed_at_brin ON orders USING brin (processed_at);
