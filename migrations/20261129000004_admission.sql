-- What each API instance has admitted but the workers have not decided yet, per item: the
-- instances read each other's rows to stop admitting an item once its stock is claimed by the
-- queue. Written by every instance once per refresh (every 250 ms by default), never per
-- request. A row older than a few seconds belongs to an instance that stopped and is ignored.

CREATE TABLE api_admission (
    instance_id UUID NOT NULL,
    item_id     BIGINT NOT NULL,
    units       BIGINT NOT NULL CHECK (units >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, item_id)
);

CREATE INDEX api_admission_item ON api_admission (item_id, updated_at);
