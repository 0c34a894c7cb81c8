-- A monitoring pass shared by every process on the database (replicas on PostgreSQL, the app and `mtasts sweep` on
-- SQLite): the pass is cut into pages of domains when it begins; each process claims a page at a time under a lease it
-- renews while it works, a page whose lease ran out (its process died) is taken over, and every domain checked in the
-- pass is recorded with it, so that none is checked and stored twice in one pass.

-- is_open: 1 while unfinished, NULL after: the unique index lets at most one pass be open. planned: its pages are
-- written.
ALTER TABLE monitor_passes ADD COLUMN is_open INTEGER;
ALTER TABLE monitor_passes ADD COLUMN planned INTEGER NOT NULL DEFAULT 0;
-- A pass left unfinished by the previous version is resumed from its cursor; any older unfinished one (none was ever
-- made, but a database copied by hand could hold one) is closed.
UPDATE monitor_passes SET is_open = 1
  WHERE finished_at IS NULL AND id = (SELECT MAX(id) FROM monitor_passes WHERE finished_at IS NULL);
UPDATE monitor_passes SET finished_at = started_at WHERE finished_at IS NULL AND is_open IS NULL;
CREATE UNIQUE INDEX monitor_passes_one_open ON monitor_passes (is_open);

-- The scheduled ticks (cron runs, named by their time to the second) and the pass each was served by: replicas firing
-- for one tick join one pass, a tick that joined a pass under way counts as served by it, and one firing after its
-- pass ended does nothing.
CREATE TABLE monitor_pass_ticks (
  slot    TEXT PRIMARY KEY,
  pass_id INTEGER NOT NULL
);

-- The pages of an open pass: the watched domains after after_domain up to upto_domain (NULL: no end, so that the last
-- page also takes domains watched after the pass began).
CREATE TABLE monitor_pages (
  pass_id       INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  after_domain  TEXT NOT NULL,
  upto_domain   TEXT,
  claimed_by    TEXT,                     -- host:pid of the process working on it
  claimed_until TEXT,                     -- its lease: renewed while it works; past it, another process takes over
  done_at       TEXT,
  PRIMARY KEY (pass_id, seq)
);

-- The domains checked in an open pass, each written in the transaction that stores its check: at most once per pass.
CREATE TABLE monitor_pass_checks (
  pass_id    INTEGER NOT NULL,
  domain     TEXT NOT NULL,
  checked_by TEXT NOT NULL,
  PRIMARY KEY (pass_id, domain)
);
