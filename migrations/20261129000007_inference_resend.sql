-- When a retry last sent a still-pending inference request to the queue again.
--
-- The API writes a request's row before it sends the request, so a row can be pending for a
-- request that never reached the queue: its API instance died between the two, or the send's
-- outcome was unknown. A retry of the same request (same UUID and body) sends it again once the
-- last send, the first (at created_at) or a resend (at resent_at), has certainly ended; setting
-- this column in the same conditional UPDATE lets one retry per interval win, over every API
-- instance. NULL: never sent again. A copy of a request that did reach the queue costs a reply
-- from the stored result, not a second model run.

ALTER TABLE inference_requests ADD COLUMN resent_at TIMESTAMPTZ;
