-- TLS-RPT intake bounds (issue 11).

-- The days a domain's failure-rate alert was queued: at most once per domain and day, however many reports arrive.
CREATE TABLE tlsrpt_alert_days (
  domain     TEXT NOT NULL,
  day        TEXT NOT NULL,              -- UTC date the reported sessions belong to
  alerted_at TEXT NOT NULL,
  PRIMARY KEY (domain, day)
);

-- Reports stored before counts were bounded: a count above a day of mail from one sender (10^9, the default of
-- MTASTS_TLSRPT_MAX_SESSIONS) is brought down to it.
-- @sqlite
UPDATE tlsrpt_policies SET successful = MIN(successful, 1000000000), failed = MIN(failed, 1000000000)
  WHERE successful > 1000000000 OR failed > 1000000000;
-- @end
-- @postgres
UPDATE tlsrpt_policies SET successful = LEAST(successful, 1000000000), failed = LEAST(failed, 1000000000)
  WHERE successful > 1000000000 OR failed > 1000000000;
-- @end
UPDATE tlsrpt_failures SET count = 1000000000 WHERE count > 1000000000;

-- Reports stored before dates were bounded: a period ending after tomorrow (UTC) was never reported by anyone; such a
-- report goes with its policies and failure details (ON DELETE CASCADE).
-- @sqlite
DELETE FROM tlsrpt_reports
  WHERE end_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', 'start of day', '+2 days');
-- @end
-- @postgres
DELETE FROM tlsrpt_reports
  WHERE end_at >= to_char(date_trunc('day', now() AT TIME ZONE 'UTC') + interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
-- @end
