import { type Db, sql } from './db.js';
import { enqueue, type NewAlert } from './outbox.js';

/** How a mailbox was last read: when, and the error that stopped the last pass, if one did. */
export interface MailboxStatus {
  account: string;
  lastReadAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The first failed pass since the last good one: a mailbox failing this long deserves attention. */
  failingSince: string | null;
}

/**
 * When a failing mailbox deserves an alert, and the alerts to queue then (none when there is nowhere to post them):
 * given the failure's start (or, on recovery, the failure as it was).
 */
export interface Alerting<T> {
  afterMs: number;
  alerts(failure: T): NewAlert[];
}

/** Whether a failure was alerted: a pass failed `afterMs` or more after it started. */
function wasAlerted(s: MailboxStatus, afterMs: number): boolean {
  return (
    s.failingSince !== null &&
    s.lastErrorAt !== null &&
    Date.parse(s.lastErrorAt) - Date.parse(s.failingSince) >= afterMs
  );
}

/** Where reading stopped in one folder, valid while the folder keeps its UIDVALIDITY. */
export interface FolderState {
  uidValidity: string;
  lastUid: number;
}

/** The state of the mailboxes TLS-RPT reports are read from over IMAP, keyed by account (imaps://user@host:port). */
export class ImapStore {
  constructor(private readonly db: Db) {}

  async status(account: string): Promise<MailboxStatus | null> {
    const row = await this.db.get<MailboxStatus>(
      sql`SELECT account, last_read_at AS "lastReadAt", last_error AS "lastError", last_error_at AS "lastErrorAt",
                 failing_since AS "failingSince"
          FROM imap_mailboxes WHERE account = ${account}`,
    );
    return row ?? null;
  }

  /**
   * A pass read the folder without an error: any failure is over. When it had been failing for `alerting.afterMs` (the
   * failure was alerted), its recovery alerts are queued in the same transaction; returns that failure, else null.
   */
  recordRead(account: string, at: Date, alerting?: Alerting<MailboxStatus>): Promise<MailboxStatus | null> {
    return this.db.transaction(async (): Promise<MailboxStatus | null> => {
      const before = await this.status(account);
      await this.db.run(
        sql`INSERT INTO imap_mailboxes (account, last_read_at) VALUES (${account}, ${at.toISOString()})
            ON CONFLICT (account) DO UPDATE SET last_read_at = excluded.last_read_at, last_error = NULL,
              last_error_at = NULL, failing_since = NULL`,
      );
      if (!alerting || !before?.failingSince || !wasAlerted(before, alerting.afterMs)) return null;
      await enqueue(this.db, account, alerting.alerts(before), at);
      return before;
    });
  }

  /**
   * A pass failed; a failure that goes on keeps the time it started. `due` is true for the first failed pass that comes
   * `alerting.afterMs` or more after that start (once per failure, whichever process makes the pass): its alerts are
   * then queued in the same transaction.
   */
  recordFailure(
    account: string,
    error: string,
    at: Date,
    alerting?: Alerting<string>,
  ): Promise<{ failingSince: string; due: boolean }> {
    return this.db.transaction(async () => {
      const before = await this.status(account);
      const row = await this.db.get<{ failingSince: string }>(
        sql`INSERT INTO imap_mailboxes (account, last_error, last_error_at, failing_since)
            VALUES (${account}, ${error}, ${at.toISOString()}, ${at.toISOString()})
            ON CONFLICT (account) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at,
              failing_since = COALESCE(imap_mailboxes.failing_since, excluded.failing_since)
            RETURNING failing_since AS "failingSince"`,
      );
      const since = row?.failingSince ?? at.toISOString();
      const due =
        alerting !== undefined &&
        at.getTime() - Date.parse(since) >= alerting.afterMs &&
        !(before?.failingSince === since && wasAlerted(before, alerting.afterMs));
      if (due) await enqueue(this.db, account, alerting.alerts(since), at);
      return { failingSince: since, due };
    });
  }

  async folder(account: string, folder: string): Promise<FolderState | null> {
    const row = await this.db.get<FolderState>(
      sql`SELECT uid_validity AS "uidValidity", last_uid AS "lastUid" FROM imap_folders
          WHERE account = ${account} AND folder = ${folder}`,
    );
    return row ?? null;
  }

  async setFolder(account: string, folder: string, state: FolderState): Promise<void> {
    await this.db.run(
      sql`INSERT INTO imap_folders (account, folder, uid_validity, last_uid)
          VALUES (${account}, ${folder}, ${state.uidValidity}, ${state.lastUid})
          ON CONFLICT (account, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid`,
    );
  }
}
