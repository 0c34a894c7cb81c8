-- What the monitor saw last for each domain, and the derived state it compares the next pass with.
CREATE TABLE domain_state (
  domain          TEXT PRIMARY KEY,
  snapshot_json   TEXT NOT NULL,
  clean_since     TEXT,                   -- testing mode with no errors since then (ready-to-enforce clock)
  ready_announced TEXT,                   -- the clean_since value a ready-to-enforce alert was posted for
  updated_at      TEXT NOT NULL
);

-- Snapshot history (pruned): id, policy hash, mode, MX set, certificates, finding codes of each pass.
CREATE TABLE snapshots (
  id            INTEGER PRIMARY KEY,
  domain        TEXT NOT NULL,
  taken_at      TEXT NOT NULL,
  snapshot_json TEXT NOT NULL
);
CREATE INDEX snapshots_domain_time ON snapshots (domain, taken_at);

-- Conditions that are pending (seen, not yet alerted: debounce) or open (alerted, not yet recovered).
CREATE TABLE conditions (
  domain           TEXT NOT NULL,
  key              TEXT NOT NULL,
  state            TEXT NOT NULL CHECK (state IN ('pending', 'open')),
  count            INTEGER NOT NULL,      -- consecutive passes seen
  first_seen_at    TEXT NOT NULL,
  opened_at        TEXT,
  last_reminded_at TEXT,
  opener_key       TEXT,                  -- event key of the alert that opened it: its thread
  info_json        TEXT NOT NULL,
  PRIMARY KEY (domain, key)
);

-- The outbox: one row per alert per channel, written in the same transaction as the state change that caused it.
CREATE TABLE outbox (
  id               INTEGER PRIMARY KEY,
  domain           TEXT NOT NULL,
  event_key        TEXT NOT NULL,
  team_id          TEXT NOT NULL,
  channel_id       TEXT NOT NULL,
  thread_event_key TEXT,                  -- post in the thread of this event's message in the same channel
  broadcast        INTEGER NOT NULL DEFAULT 0,
  payload_json     TEXT NOT NULL,         -- { text, blocks }
  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT NOT NULL,
  created_at       TEXT NOT NULL,
  sent_at          TEXT,
  slack_ts         TEXT,
  last_error       TEXT,
  UNIQUE (domain, event_key, team_id, channel_id)
);
CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);

-- Monitoring passes, so that a restart resumes an interrupted pass where it stopped.
CREATE TABLE monitor_passes (
  id          INTEGER PRIMARY KEY,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  cursor      TEXT NOT NULL DEFAULT '',   -- the last domain completed, in domain order
  domains     INTEGER NOT NULL DEFAULT 0
);
