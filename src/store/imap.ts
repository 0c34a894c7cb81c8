import type { Db } from './db.js';

/** How a mailbox was last read: when, and the error that stopped the last pass, if one did. */
export interface MailboxStatus {
  account: string;
  lastReadAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The first failed pass since the last good one: a mailbox failing this long deserves attention. */
  failingSince: string | null;
}

/** Where reading stopped in one folder, valid while the folder keeps its UIDVALIDITY. */
export interface FolderState {
  uidValidity: string;
  lastUid: number;
}

/** The state of the mailboxes TLS-RPT reports are read from over IMAP, keyed by account (imaps://user@host:port). */
export class ImapStore {
  constructor(private readonly db: Db) {}

  status(account: string): MailboxStatus | null {
    const row = this.db
      .prepare(
        `SELECT account, last_read_at AS lastReadAt, last_error AS lastError, last_error_at AS lastErrorAt,
                failing_since AS failingSince
         FROM imap_mailboxes WHERE account = ?`,
      )
      .get(account) as MailboxStatus | undefined;
    return row ?? null;
  }

  /** A pass read the folder without an error: any failure is over. */
  recordRead(account: string, at: Date): void {
    this.db
      .prepare(
        `INSERT INTO imap_mailboxes (account, last_read_at) VALUES (?, ?)
         ON CONFLICT (account) DO UPDATE SET last_read_at = excluded.last_read_at, last_error = NULL,
           last_error_at = NULL, failing_since = NULL`,
      )
      .run(account, at.toISOString());
  }

  /** A pass failed; a failure that goes on keeps the time it started. Returns that time. */
  recordFailure(account: string, error: string, at: Date): string {
    const row = this.db
      .prepare(
        `INSERT INTO imap_mailboxes (account, last_error, last_error_at, failing_since) VALUES (?, ?, ?, ?)
         ON CONFLICT (account) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at,
           failing_since = COALESCE(imap_mailboxes.failing_since, excluded.failing_since)
         RETURNING failing_since AS failingSince`,
      )
      .get(account, error, at.toISOString(), at.toISOString()) as { failingSince: string };
    return row.failingSince;
  }

  folder(account: string, folder: string): FolderState | null {
    const row = this.db
      .prepare(
        'SELECT uid_validity AS uidValidity, last_uid AS lastUid FROM imap_folders WHERE account = ? AND folder = ?',
      )
      .get(account, folder) as FolderState | undefined;
    return row ?? null;
  }

  setFolder(account: string, folder: string, state: FolderState): void {
    this.db
      .prepare(
        `INSERT INTO imap_folders (account, folder, uid_validity, last_uid) VALUES (?, ?, ?, ?)
         ON CONFLICT (account, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid`,
      )
      .run(account, folder, state.uidValidity, state.lastUid);
  }
}
