-- TLS-RPT aggregate reports (RFC 8460), deduplicated by reporter and report-id.
CREATE TABLE tlsrpt_reports (
  id            INTEGER PRIMARY KEY,
  organization  TEXT NOT NULL,
  report_id     TEXT NOT NULL,
  contact_info  TEXT,
  start_at      TEXT NOT NULL,
  end_at        TEXT NOT NULL,
  received_at   TEXT NOT NULL,
  source        TEXT NOT NULL CHECK (source IN ('https', 'email')),
  UNIQUE (organization, report_id)
);

CREATE TABLE tlsrpt_policies (
  id            INTEGER PRIMARY KEY,
  report_id     INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
  policy_type   TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  policy_string TEXT NOT NULL,            -- JSON array of lines
  mx_hosts      TEXT NOT NULL,            -- JSON array
  successful    INTEGER NOT NULL,
  failed        INTEGER NOT NULL,
  day           TEXT NOT NULL             -- UTC date of the report's end, for per-day queries
);
CREATE INDEX tlsrpt_policies_domain_day ON tlsrpt_policies (policy_domain, day);

CREATE TABLE tlsrpt_failures (
  id             INTEGER PRIMARY KEY,
  policy_id      INTEGER NOT NULL REFERENCES tlsrpt_policies (id) ON DELETE CASCADE,
  result_type    TEXT NOT NULL,
  sending_ip     TEXT,
  receiving_mx   TEXT,
  receiving_helo TEXT,
  receiving_ip   TEXT,
  count          INTEGER NOT NULL,
  reason_code    TEXT,
  additional_info TEXT
);
CREATE INDEX tlsrpt_failures_policy ON tlsrpt_failures (policy_id);

-- When each domain's last daily digest was made.
CREATE TABLE tlsrpt_digests (
  domain     TEXT PRIMARY KEY,
  last_at    TEXT NOT NULL
);
