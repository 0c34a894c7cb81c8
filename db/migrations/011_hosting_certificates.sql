-- Hosted MTA-STS, the serving half: the ACME account, each policy host's certificate, orders in progress (one per
-- name across every replica), failures with their backoff, and the challenge responses any replica's listener answers.
CREATE TABLE acme_accounts (
  directory   TEXT PRIMARY KEY,           -- the ACME directory URL: one account per CA
  key_pem     TEXT NOT NULL,              -- the account's private key (PKCS#8 PEM)
  created_at  TEXT NOT NULL
);

CREATE TABLE hosting_certificates (
  name        TEXT PRIMARY KEY,           -- policy host name, e.g. mta-sts.example.com
  key_pem     TEXT NOT NULL,              -- the certificate's own private key (ECDSA P-256, PKCS#8 PEM)
  cert_pem    TEXT NOT NULL,              -- leaf then chain, as the CA sent it
  fingerprint TEXT NOT NULL,              -- SHA-256 of the leaf
  not_before  TEXT NOT NULL,
  not_after   TEXT NOT NULL,
  issued_at   TEXT NOT NULL
);

CREATE TABLE hosting_orders (
  name        TEXT PRIMARY KEY,           -- at most one order per name at a time
  holder      TEXT NOT NULL,              -- the process (replica) that holds the lease
  started_at  TEXT NOT NULL,
  expires_at  TEXT NOT NULL               -- the lease ends then, finished or not
);

CREATE TABLE hosting_certificate_failures (
  name        TEXT PRIMARY KEY,
  failures    INTEGER NOT NULL,           -- in a row, since the last success
  last_error  TEXT NOT NULL,
  failed_at   TEXT NOT NULL,
  retry_at    TEXT NOT NULL               -- no order for this name before then
);

CREATE TABLE acme_challenges (
  name               TEXT NOT NULL,
  type               TEXT NOT NULL,       -- tls-alpn-01 or http-01
  token              TEXT NOT NULL,
  key_authorization  TEXT NOT NULL,
  alpn_cert_pem      TEXT,                -- tls-alpn-01: the self-signed challenge certificate (RFC 8737)
  alpn_key_pem       TEXT,
  expires_at         TEXT NOT NULL,
  PRIMARY KEY (name, type, token)
);
CREATE INDEX acme_challenges_token ON acme_challenges (token);
