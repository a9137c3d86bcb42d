-- Inference requests and their results, so a reply is not lost when its caller stopped waiting
-- or the API restarted, and so a request that keeps crashing workers is recognised.
--
-- Invariants:
-- * a row exists from the moment the API accepted the request (status 'pending');
-- * only a worker moves it out of 'pending', once (later redeliveries find it finished);
-- * attempts counts model runs started on it, incremented durably before the run.

CREATE TYPE inference_status AS ENUM ('pending', 'done', 'failed', 'expired');

CREATE TABLE inference_requests (
    id          UUID PRIMARY KEY,
    model       TEXT,
    input       JSONB NOT NULL,
    status      inference_status NOT NULL DEFAULT 'pending',
    output      JSONB,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deadline    TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    CHECK ((status = 'pending') = (finished_at IS NULL))
);
