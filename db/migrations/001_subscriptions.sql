-- Channels that watch a domain, scoped to their workspace (team).
CREATE TABLE subscriptions (
  id            INTEGER PRIMARY KEY,
  team_id       TEXT NOT NULL,
  channel_id    TEXT NOT NULL,
  domain        TEXT NOT NULL,            -- A-label, lower case
  created_by    TEXT NOT NULL,            -- Slack user id
  created_at    TEXT NOT NULL,            -- ISO 8601 UTC
  paused_at     TEXT,                     -- set when alerts to the channel cannot be delivered
  paused_reason TEXT,
  muted_until   TEXT,
  UNIQUE (team_id, channel_id, domain)
);
CREATE INDEX subscriptions_domain ON subscriptions (domain);

-- The last check of each domain, whoever asked for it.
CREATE TABLE domain_checks (
  domain      TEXT PRIMARY KEY,
  checked_at  TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('pass', 'warn', 'fail')),
  report_json TEXT NOT NULL
);
