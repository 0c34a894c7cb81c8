-- Hosted MTA-STS, the serving half: a CA's rate limit (HTTP 429 or rateLimited) blocks every order to that CA, from
-- every replica, until the wait it asked for has passed.
CREATE TABLE acme_rate_limits (
  directory     TEXT PRIMARY KEY,         -- the ACME directory URL
  blocked_until TEXT NOT NULL,            -- no request to this CA's newOrder before then
  last_error    TEXT NOT NULL,
  limited_at    TEXT NOT NULL
);
