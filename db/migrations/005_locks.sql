-- Named leases between processes sharing the database (the app's scheduled passes and `mtasts sweep`).
CREATE TABLE locks (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,               -- host:pid
  expires_at TEXT NOT NULL
);
