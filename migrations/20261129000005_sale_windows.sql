-- Sale windows and purchase tokens.
--
-- * A buy is accepted only between sale_start and sale_end (either may be NULL: no bound). Before
--   the start the API answers 425 with the opening time, after the end 410.
-- * require_token: /buy needs a purchase token, signed by the API for this user and item, which
--   GET /items/{id}/token hands out once the sale is open (so a buyer must have loaded the sale).

ALTER TABLE items
    ADD COLUMN sale_start TIMESTAMPTZ,
    ADD COLUMN sale_end TIMESTAMPTZ,
    ADD COLUMN require_token BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT items_sale_window CHECK (sale_start IS NULL OR sale_end IS NULL OR sale_end > sale_start);
