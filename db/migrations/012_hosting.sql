-- Hosted MTA-STS, the control side (issue 15): the domains whose policy the bot serves at mta-sts.<domain>, every
-- policy text it served (so that it can say which versions cached senders may still hold), and what happened to each
-- domain that a channel should hear of (enrollment, the name lost, certificate events), until it has been told.

-- One row per hosted domain. owner: the Slack workspace (team id) that enrolled it, or 'cli' for the command line.
-- status: pending (records shown, mta-sts.<domain> does not resolve to the bot yet), active (served), leaving
-- (serving mode none until leaving_until), removed (no longer served; the row stays for its history).
CREATE TABLE hosted_domains (
  domain           TEXT PRIMARY KEY,
  policy_host      TEXT NOT NULL UNIQUE,   -- mta-sts.<domain>
  owner            TEXT NOT NULL,
  channel_id       TEXT,                   -- where to tell (null for the command line)
  token            TEXT NOT NULL UNIQUE,   -- this enrollment's secret: the CNAME target is <token>.<hosting name>
  status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'leaving', 'removed')),
  mode             TEXT NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
  max_age          INTEGER NOT NULL CHECK (max_age BETWEEN 1 AND 31557600),
  mx_json          TEXT NOT NULL,          -- the mx patterns served (a JSON array of strings)
  sts_id           TEXT NOT NULL,          -- the id of the text served now: the _mta-sts TXT must carry it
  proposal_json    TEXT,                   -- a pending MX change (see src/hosting/policy-plan.ts), or null
  leaving_until    TEXT,                   -- status leaving: when the last cached policy other than none expires
  name_lost_at     TEXT,                   -- active, but mta-sts.<domain> no longer resolves to the bot since then
  name_problem     TEXT,                   -- what the last look at mta-sts.<domain> found, when it was not the bot
  dns_id           TEXT,                   -- the id the _mta-sts TXT carried at the last look (null: none)
  dns_checked_at   TEXT,
  dns_carries_at   TEXT,                   -- when DNS was first seen carrying sts_id (null: not yet)
  reminded_at      TEXT,                   -- the last reminder to publish sts_id
  cert_state       TEXT,                   -- the last certificate event: issued, renewed or failed
  cert_not_after   TEXT,
  cert_error       TEXT,
  cert_retry_at    TEXT,
  cert_at          TEXT,
  created_at       TEXT NOT NULL,
  activated_at     TEXT,
  removed_at       TEXT,                   -- status removed: since when (counted toward the owner's cap for a day)
  updated_at       TEXT NOT NULL
);
CREATE INDEX hosted_domains_owner ON hosted_domains (owner, status);
CREATE INDEX hosted_domains_status ON hosted_domains (status);

-- Every policy text with its id. served_from is null for a version never served (the domain was still pending);
-- served_until is null while it is the one served. Senders may cache a version until served_until + max_age.
CREATE TABLE hosted_versions (
  id           INTEGER PRIMARY KEY,
  domain       TEXT NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
  sts_id       TEXT NOT NULL,
  policy_text  TEXT NOT NULL,
  mode         TEXT NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
  max_age      INTEGER NOT NULL,
  created_at   TEXT NOT NULL,
  served_from  TEXT,
  served_until TEXT,
  UNIQUE (domain, sts_id)
);
CREATE INDEX hosted_versions_domain ON hosted_versions (domain, id);

-- What a domain's channel should be told (kind: active, name-lost, name-back, removed, certificate-issued,
-- certificate-renewed, certificate-failed), until the Slack side marks it announced.
CREATE TABLE hosting_events (
  id           INTEGER PRIMARY KEY,
  domain       TEXT NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
  kind         TEXT NOT NULL,
  at           TEXT NOT NULL,
  detail_json  TEXT NOT NULL,
  announced_at TEXT
);
CREATE INDEX hosting_events_unannounced ON hosting_events (announced_at, id);

-- Rival requests for a domain another owner holds pending: each with its own token. Whoever's token DNS shows first
-- gets the domain (its claim becomes the hosted_domains row); the others are dropped.
CREATE TABLE hosting_claims (
  domain      TEXT NOT NULL REFERENCES hosted_domains (domain) ON DELETE CASCADE,
  owner       TEXT NOT NULL,
  channel_id  TEXT,
  token       TEXT NOT NULL UNIQUE,
  mode        TEXT NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
  max_age     INTEGER NOT NULL,
  mx_json     TEXT NOT NULL,
  sts_id      TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY (domain, owner)
);
CREATE INDEX hosting_claims_owner ON hosting_claims (owner);
