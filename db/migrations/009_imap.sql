-- TLS-RPT reports read from a mailbox over IMAP (MTASTS_TLSRPT_IMAP_URL). A mailbox is named by its account,
-- imaps://user@host:port, which holds no secret.

-- How each mailbox was last read: shown to users, and the start of a failure that lasts.
CREATE TABLE imap_mailboxes (
  account        TEXT PRIMARY KEY,
  last_read_at   TEXT,                      -- end of the last pass that read the folder without an error
  last_error     TEXT,                      -- what went wrong in the last pass; NULL after a good one
  last_error_at  TEXT,
  failing_since  TEXT                       -- the first failed pass since the last good one
);

-- Where reading stopped in each folder. Every message up to last_uid was stored and then moved, flagged or set aside;
-- a new UIDVALIDITY means the server renumbered the folder, and reading starts again from its first message.
CREATE TABLE imap_folders (
  account       TEXT NOT NULL,
  folder        TEXT NOT NULL,
  uid_validity  TEXT NOT NULL,              -- a 32-bit number, kept as text
  last_uid      INTEGER NOT NULL,
  PRIMARY KEY (account, folder)
);
