-- A claim per outbox row, so that workers in several processes sharing the database never post one alert at once.
-- A worker sets both columns with a conditional UPDATE (row pending, due, unclaimed or its lease run out, no earlier
-- pending alert to the same channel) before it posts, and clears them when it stores the outcome. A claim left by a
-- worker that died runs out after the lease, and the alert is posted again.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;            -- host:pid#worker
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;         -- the lease's end (ISO time)
-- 429 answers in a row for this alert: they grow its wait but never count as attempts.
ALTER TABLE outbox ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_channel_pending ON outbox (team_id, channel_id, state, id);
