/**
 * The IMAP reader's settings, apart from the reader itself: config.ts builds them without loading the reader (its
 * IMAP client, scheduler and stores), so that `mtasts check` and the app's start pay for none of it.
 */

/** A password or access token: util.inspect, JSON.stringify and template strings never show it. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
}

export interface ImapSettings {
  /** The account, imaps://user@host:port: no secret in it; it names the mailbox in logs, status and the store. */
  account: string;
  host: string;
  port: number;
  /** imaps: TLS from the first byte. imap: STARTTLS, which must succeed before the login. */
  implicitTls: boolean;
  user: string;
  /** The folder reports land in; levels separated by "/" (the server's own separator is used). */
  folder: string;
  auth: { password: Secret } | { tokenFile: string };
  /** Cron expression: when to look for new messages where the server has no IDLE, and as a safety net where it has. */
  poll: string;
  /** Where processed messages go, and messages that hold no report (created when missing). */
  doneFolder: string;
  rejectFolder: string;
  /** Messages fetched per batch. */
  batchSize: number;
  /** A larger message is set aside without being fetched; also the most source held in memory at once. */
  maxMessageBytes: number;
  /** Connecting (TCP and TLS) and the server's greeting; a silence within a command may last 5 minutes, or this. */
  timeoutMs: number;
  /** A mailbox failing this long is alerted, once per failure (MTASTS_TLSRPT_IMAP_ALERT_HOURS). */
  alertAfterMs: number;
  /** Where that alert goes (MTASTS_OPERATOR_CHANNEL); null: to the log only. */
  operator: OperatorChannel | null;
}

/** The operator's channel: the mailbox belongs to whoever runs the app, so its alerts go there, never to customers. */
export interface OperatorChannel {
  /** The workspace (T…), required with OAuth; null with a single SLACK_BOT_TOKEN when none is named. */
  team: string | null;
  channel: string;
}
