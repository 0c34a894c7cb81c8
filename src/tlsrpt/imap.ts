import { readFile, stat } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import type { FetchMessageObject, ImapFlow, ImapFlowError } from 'imapflow';
import { schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import type { Logger } from '../monitor/deliver.js';
import type { Db } from '../store/db.js';
import { type Alerting, ImapStore, type MailboxStatus } from '../store/imap.js';
import { LockStore } from '../store/locks.js';
import type { AlertPayload } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import { type ImapSettings, Secret } from './imap-settings.js';
import type { IntakeResult } from './intake.js';

/**
 * TLS-RPT reports from the mailbox they already land in, over IMAP: each new message goes through the same intake as
 * HTTPS and `ingest-email`, and is then moved out of the folder (or flagged, where moving is not allowed). A report is
 * stored before its message is moved, so a crash in between leaves the message in place; read again, it is a duplicate
 * that the intake counts and does not store, and it is moved then. Messages are read in UID order, in batches, with
 * never more than about two messages' worth of source in memory.
 */

export interface ImapReaderDeps {
  settings: ImapSettings;
  /** The app's database: where each folder was read up to, the mailbox's status, the lease between processes. */
  db: Db;
  /** The TLS-RPT intake's e-mail entry point. */
  ingest: (raw: Buffer) => Promise<IntakeResult>;
  now: () => Date;
  logger: Logger;
  /** For tests: TLS options over the defaults (a test CA). In production NODE_EXTRA_CA_CERTS adds a lab CA. */
  tls?: ConnectionOptions;
  /** Called when an alert for the operator was queued (the app then delivers the outbox at once). */
  onQueued?: () => void;
}

/** The reader's dependencies with the stores it keeps its state in. */
interface Reader extends ImapReaderDeps {
  store: ImapStore;
  locks: LockStore;
}

const readerOf = (deps: ImapReaderDeps): Reader => ({
  ...deps,
  store: new ImapStore(deps.db),
  locks: new LockStore(deps.db),
});

/** What one pass over the folder did. */
export interface PassSummary {
  /** New messages in the folder when the pass began. */
  found: number;
  stored: number;
  /** Reports already stored (a message read twice), or about domains no channel watches. */
  unchanged: number;
  /** Messages that hold no report, or are too large: moved to the reject folder (or flagged). */
  setAside: number;
  /** Messages left in the folder for the next pass: storing failed for a reason that may pass (busy, rate limit). */
  left: number;
  moved: number;
  flagged: number;
  batches: number;
}

export type PassResult =
  | { kind: 'read'; summary: PassSummary }
  | { kind: 'failed'; error: string; summary: PassSummary | null }
  | { kind: 'busy' };

/** The keyword on a message that was read but could not be moved: it is not read again. */
export const READ_KEYWORD = '$MtastsRead';
const LOCK_TTL_MS = 10 * 60_000;

/** An error whose message is fit to show as it is. */
class ImapReadError extends Error {}

/** An OAuth2 access token kept in a file that another program refreshes: read again whenever the file changes. */
export class TokenFile {
  private cached: { key: string; token: Secret } | null = null;
  constructor(readonly path: string) {}

  async read(): Promise<Secret> {
    let key: string;
    try {
      const s = await stat(this.path);
      if (s.size > 65536) throw new Error('larger than 64 KiB: not an access token');
      key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
      if (this.cached?.key === key) return this.cached.token;
      const text = (await readFile(this.path, 'utf8')).trim();
      if (text === '') throw new Error('the file is empty');
      this.cached = { key, token: new Secret(text) };
      return this.cached.token;
    } catch (err) {
      throw new ImapReadError(
        `cannot read the access token from MTASTS_TLSRPT_IMAP_TOKEN_FILE (${this.path}): ${(err as Error).message}`,
      );
    }
  }

  /** The token last read, to keep it out of error messages. */
  last(): Secret | null {
    return this.cached?.token ?? null;
  }
}

const path = (folder: string): string[] => folder.split('/').filter((p) => p !== '');

/** Control characters out, length capped: for text a server or a message sender chose. */
const clean = (text: string, max = 300): string => {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
};

const TLS_TRUST = /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME/;
const NETWORK = /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE)$/;

/** One line saying what went wrong and what to check, with no password or token in it. */
export function describeImapError(err: unknown, s: ImapSettings, secret: Secret | null): string {
  const e = (err ?? {}) as ImapFlowError;
  const where = `${s.host}:${s.port}`;
  const said = clean(typeof e.responseText === 'string' ? e.responseText : '');
  let line: string;
  if (err instanceof ImapReadError) line = err.message;
  else if (e.authenticationFailed) {
    const what =
      'password' in s.auth
        ? 'MTASTS_TLSRPT_IMAP_PASSWORD (Google takes an app password; Microsoft 365 only OAuth2, MTASTS_TLSRPT_IMAP_TOKEN_FILE)'
        : `the access token in MTASTS_TLSRPT_IMAP_TOKEN_FILE (${s.auth.tokenFile}): is it current, with the IMAP scope?`;
    line = `${where} refused the login of ${s.user}${said ? ` (${said})` : ''}: check ${what}`;
  } else if (e.mailboxMissing) line = `the folder "${s.folder}" does not exist on ${where} (for ${s.user})`;
  else if (e.code && TLS_TRUST.test(e.code))
    line = `the TLS certificate of ${where} is not trusted (${e.code}): a private or lab CA goes in NODE_EXTRA_CA_CERTS`;
  else if (e.tlsFailed) line = `TLS with ${where} failed: ${clean(e.message)}`;
  else if (e.code && (NETWORK.test(e.code) || /TIMEOUT/.test(e.code)))
    line = `cannot reach ${where} (${e.code})`;
  else if (e.code === 'NoConnection' || e.code === 'EConnectionClosed')
    line = `${where} closed the connection${e.reason ? `: ${clean(e.reason)}` : ''}`;
  else line = `${where}: ${clean(e.message ?? String(err))}${said ? ` (${said})` : ''}`;
  const hidden = secret?.reveal();
  return hidden && hidden.length >= 4 ? line.replaceAll(hidden, '[secret]') : line;
}

/** A connection, logged in, once the folders messages are moved to have been created where they were missing. */
interface Session {
  client: ImapFlow;
  openedAt: number;
}

async function credentials(s: ImapSettings, tokens: TokenFile | null) {
  if ('password' in s.auth) return { user: s.user, pass: s.auth.password.reveal() };
  if (!tokens) throw new ImapReadError('no access token file is set');
  return { user: s.user, accessToken: (await tokens.read()).reveal() };
}

/**
 * Connects and logs in (TLS verified as Node does by default, TLS 1.2 at least; over imap:// STARTTLS is required),
 * then creates the folders messages are moved to where they are missing (a refusal only means they will be flagged).
 */
async function openSession(deps: Reader, tokens: TokenFile | null, on: SessionEvents): Promise<Session> {
  const s = deps.settings;
  const { ImapFlow } = await import('imapflow'); // loaded by the commands that read a mailbox, not by config.ts
  const client = new ImapFlow({
    host: s.host,
    port: s.port,
    secure: s.implicitTls,
    ...(s.implicitTls ? {} : { doSTARTTLS: true }),
    auth: await credentials(s, tokens),
    logger: false,
    disableAutoIdle: true,
    maxIdleTime: 20 * 60_000,
    connectionTimeout: s.timeoutMs,
    greetingTimeout: s.timeoutMs,
    // A server silent this long within a command is given up; in IDLE, imapflow checks on it with a NOOP instead.
    socketTimeout: Math.max(s.timeoutMs, 5 * 60_000),
    // No source is fetched above the limit (by the size the server gave); the margin covers a size slightly off.
    maxLiteralSize: s.maxMessageBytes + 64 * 1024,
    maxResponseSize: s.maxMessageBytes + 1024 * 1024,
    maxLineLength: 16 * 1024 * 1024,
    clientInfo: { name: 'mtasts-bot' },
    tls: { minVersion: 'TLSv1.2', ...deps.tls },
  });
  // Emitted at most once, when the connection fails outside a command; without a listener it would end the process.
  client.on('error', (err: Error) => on.error(err));
  client.on('exists', (e: { count: number; prevCount: number }) => {
    if (e.count > e.prevCount) on.newMail();
  });
  client.on('close', () => on.closed(client));
  await client.connect();
  for (const folder of [s.doneFolder, s.rejectFolder]) {
    try {
      await client.mailboxCreate(path(folder));
    } catch (err) {
      deps.logger.warn(
        `tlsrpt imap: ${s.account}: cannot create the folder "${folder}" (${describeImapError(err, s, null)}): messages meant for it will be flagged ${READ_KEYWORD} instead`,
      );
    }
  }
  return { client, openedAt: Date.now() };
}

interface SessionEvents {
  error(err: Error): void;
  newMail(): void;
  closed(client: ImapFlow): void;
}

const QUIET: SessionEvents = { error() {}, newMail() {}, closed() {} };

async function closeSession(session: Session | null): Promise<void> {
  if (!session) return;
  try {
    if (session.client.usable) await session.client.logout();
  } catch {
    // The connection is gone either way.
  } finally {
    session.client.close();
  }
}

type Outcome = 'stored' | 'unchanged' | 'aside' | 'left';

/** The intake's answer, as what becomes of the message: 4xx means it holds no report; 429 and 5xx may pass. */
function outcomeOf(status: number): Outcome {
  if (status === 201) return 'stored';
  if (status >= 200 && status < 300) return 'unchanged';
  if (status >= 400 && status < 500 && status !== 429) return 'aside';
  return 'left';
}

interface BatchOutcome {
  done: number[];
  aside: number[];
  /** The first message not taken in (a failure that may pass, or a stop): it and those after it stay. */
  stopAt: number | null;
  error: string | null;
}

/** Consecutive messages whose sources together fit in `maxBytes` (a larger message is never fetched, so counts 0). */
export function chunksBySize(meta: FetchMessageObject[], maxBytes: number): FetchMessageObject[][] {
  const chunks: FetchMessageObject[][] = [];
  let current: FetchMessageObject[] = [];
  let bytes = 0;
  for (const m of meta) {
    const size = (m.size ?? 0) > maxBytes ? 0 : (m.size ?? 0);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

async function fetchSources(client: ImapFlow, uids: number[]): Promise<Map<number, Buffer>> {
  const sources = new Map<number, Buffer>();
  if (uids.length === 0) return sources;
  for await (const msg of client.fetch(uids, { uid: true, source: true }, { uid: true })) {
    if (msg.source) sources.set(msg.uid, msg.source);
  }
  return sources;
}

function sender(m: FetchMessageObject): string {
  const from = m.envelope?.from?.[0]?.address ?? 'no sender';
  return `"${clean(m.envelope?.subject ?? '', 80)}" from ${clean(from, 100)}`;
}

/** One message through the intake; what becomes of it is added to `out`. */
async function takeIn(
  m: FetchMessageObject,
  source: Buffer | undefined,
  deps: Reader,
  out: BatchOutcome,
  summary: PassSummary,
): Promise<void> {
  const s = deps.settings;
  const label = `${s.account}: message uid ${m.uid} (${sender(m)})`;
  if ((m.size ?? 0) > s.maxMessageBytes) {
    summary.setAside++;
    out.aside.push(m.uid);
    deps.logger.warn(
      `tlsrpt imap: ${label} is ${m.size} bytes, over MTASTS_TLSRPT_IMAP_MAX_MESSAGE_BYTES (${s.maxMessageBytes}): set aside in "${s.rejectFolder}" unread`,
    );
    return;
  }
  if (!source) return; // gone since the search: another client moved or deleted it
  let result: { status: number; message: string };
  try {
    result = await deps.ingest(source);
  } catch (err) {
    result = { status: 500, message: `storing it failed: ${(err as Error).message}` };
  }
  const outcome = outcomeOf(result.status);
  if (outcome === 'left') {
    out.stopAt = m.uid;
    out.error = `message uid ${m.uid} stays in "${s.folder}" for the next pass: ${clean(result.message)}`;
    return;
  }
  summary[outcome === 'aside' ? 'setAside' : outcome]++;
  (outcome === 'aside' ? out.aside : out.done).push(m.uid);
  if (outcome === 'aside')
    deps.logger.warn(
      `tlsrpt imap: ${label} holds no TLS-RPT report (${clean(result.message)}): set aside in "${s.rejectFolder}"`,
    );
}

/** Fetches a batch, a few messages' sources at a time, and takes each message in, in UID order. */
async function readBatch(
  client: ImapFlow,
  uids: number[],
  deps: Reader,
  summary: PassSummary,
  shouldStop: () => boolean,
): Promise<BatchOutcome> {
  const max = deps.settings.maxMessageBytes;
  const out: BatchOutcome = { done: [], aside: [], stopAt: null, error: null };
  const meta = await client.fetchAll(uids, { uid: true, size: true, envelope: true }, { uid: true });
  meta.sort((a, b) => a.uid - b.uid);
  for (const chunk of chunksBySize(meta, max)) {
    const sources = await fetchSources(
      client,
      chunk.filter((m) => (m.size ?? 0) <= max).map((m) => m.uid),
    );
    for (const m of chunk) {
      if (shouldStop()) out.stopAt = m.uid;
      else await takeIn(m, sources.get(m.uid), deps, out, summary);
      if (out.stopAt !== null) return out;
    }
  }
  return out;
}

/** Moves messages out of the folder; where that is refused, flags them so that they are not read again. */
async function settle(
  client: ImapFlow,
  uids: number[],
  folder: string,
  deps: Reader,
  summary: PassSummary,
): Promise<void> {
  if (uids.length === 0) return;
  const s = deps.settings;
  const gone = () => new ImapReadError(`${s.host}:${s.port} closed the connection`);
  if (await client.messageMove(uids, path(folder), { uid: true })) {
    summary.moved += uids.length;
    return;
  }
  if (!client.usable) throw gone();
  const flagged = await client.messageFlagsAdd(uids, ['\\Seen', READ_KEYWORD], { uid: true });
  if (!client.usable) throw gone();
  if (flagged) summary.flagged += uids.length;
  deps.logger.warn(
    `tlsrpt imap: ${s.account}: moving ${uids.length} message(s) to "${folder}" was refused; ${flagged ? `flagged ${READ_KEYWORD} instead` : 'flagging them was refused too: they are remembered as read'}`,
  );
}

/** Where to start in the open folder: after the last message read, or at its start when UIDVALIDITY changed. */
async function startAt(client: ImapFlow, deps: Reader): Promise<{ uidValidity: string; from: number }> {
  const s = deps.settings;
  if (!client.mailbox) throw new ImapReadError(`the folder "${s.folder}" could not be opened`);
  const uidValidity = String(client.mailbox.uidValidity);
  const known = await deps.store.folder(s.account, s.folder);
  if (known?.uidValidity === uidValidity) return { uidValidity, from: known.lastUid + 1 };
  if (known)
    deps.logger.warn(
      `tlsrpt imap: ${s.account}: the UIDVALIDITY of "${s.folder}" changed (${known.uidValidity} -> ${uidValidity}): the server renumbered it, so it is read from its first message (reports already stored are not stored again)`,
    );
  await deps.store.setFolder(s.account, s.folder, { uidValidity, lastUid: 0 });
  return { uidValidity, from: 1 };
}

async function newMessages(client: ImapFlow, from: number, s: ImapSettings): Promise<number[]> {
  const found = await client.search({ uid: `${from}:*`, unKeyword: READ_KEYWORD }, { uid: true });
  if (!Array.isArray(found)) {
    if (!client.usable) throw new ImapReadError(`${s.host}:${s.port} closed the connection`);
    throw new ImapReadError(`${s.host}:${s.port} refused to search "${s.folder}"`);
  }
  // "n:*" also matches the last message when n is past it.
  return found.filter((uid) => uid >= from).sort((a, b) => a - b);
}

const emptySummary = (found: number): PassSummary => ({
  found,
  stored: 0,
  unchanged: 0,
  setAside: 0,
  left: 0,
  moved: 0,
  flagged: 0,
  batches: 0,
});

/**
 * One pass over the folder: new messages in UID order, in batches; after each batch, its messages are moved (or
 * flagged) and only then is the folder's last UID advanced. Stops at the first message the intake could not take now.
 */
async function readFolder(
  client: ImapFlow,
  deps: Reader,
  shouldStop: () => boolean,
): Promise<{ summary: PassSummary; error: string | null }> {
  const s = deps.settings;
  const lock = await client.getMailboxLock(path(s.folder));
  try {
    const { uidValidity, from } = await startAt(client, deps);
    const found = await newMessages(client, from, s);
    const summary = emptySummary(found.length);
    for (let i = 0; i < found.length; i += s.batchSize) {
      const batch = found.slice(i, i + s.batchSize);
      summary.batches++;
      if (!(await deps.locks.acquire(lockName(s), LOCK_TTL_MS, deps.now()))) {
        // The lease ran out and another process reads the folder now: it takes the rest.
        summary.left = found.length - i;
        return { summary, error: null };
      }
      const out = await readBatch(client, batch, deps, summary, shouldStop);
      await settle(client, out.done, s.doneFolder, deps, summary);
      await settle(client, out.aside, s.rejectFolder, deps, summary);
      const last = out.stopAt === null ? (batch[batch.length - 1] ?? 0) : out.stopAt - 1;
      await deps.store.setFolder(s.account, s.folder, { uidValidity, lastUid: Math.max(from - 1, last) });
      if (out.stopAt !== null) {
        summary.left = found.length - found.indexOf(out.stopAt);
        return { summary, error: out.error };
      }
    }
    return { summary, error: null };
  } finally {
    lock.release();
  }
}

const lockName = (s: ImapSettings) => `tlsrpt-imap ${s.account}`;

function secretOf(s: ImapSettings, tokens: TokenFile | null): Secret | null {
  return 'password' in s.auth ? s.auth.password : (tokens?.last() ?? null);
}

/** A pass failed: recorded, and once the failure has lasted MTASTS_TLSRPT_IMAP_ALERT_HOURS, alerted (once). */
async function failed(deps: Reader, error: string, summary: PassSummary | null): Promise<PassResult> {
  const s = deps.settings;
  const at = deps.now();
  try {
    const alerting: Alerting<string> = {
      afterMs: s.alertAfterMs,
      alerts: (since) =>
        toOperator(
          s,
          { kind: 'imap-failing', account: s.account, folder: s.folder, since, at: at.toISOString(), error },
          failingKey(since),
          null,
        ),
    };
    const { failingSince, due } = await deps.store.recordFailure(s.account, error, at, alerting);
    if (due) announceFailing(deps, failingSince, error, at);
  } catch (err) {
    deps.logger.error(`tlsrpt imap: the failure could not be recorded: ${(err as Error).message}`);
  }
  return { kind: 'failed', error, summary };
}

/** A good pass: recorded; after a failure that was alerted, the recovery is queued in the alert's thread. */
async function succeeded(deps: Reader): Promise<void> {
  const s = deps.settings;
  const at = deps.now();
  const alerting: Alerting<MailboxStatus> = {
    afterMs: s.alertAfterMs,
    alerts: (failure) => {
      const since = failure.failingSince ?? '';
      const payload: AlertPayload = {
        kind: 'imap-recovered',
        account: s.account,
        folder: s.folder,
        since,
        at: at.toISOString(),
        error: failure.lastError,
      };
      return toOperator(s, payload, `imap-recovered ${since}`, failingKey(since));
    },
  };
  const recovered = await deps.store.recordRead(s.account, at, alerting);
  if (recovered && s.operator) {
    deps.logger.info(
      `tlsrpt imap: ${s.account}: read again after failing since ${recovered.failingSince}: the recovery goes in the alert's thread`,
    );
    deps.onQueued?.();
  }
}

/** The event key of a failure's alert: one per failure, named by its start. */
const failingKey = (since: string) => `imap-failing ${since}`;

/** An alert about the mailbox, for the operator's channel only; none when MTASTS_OPERATOR_CHANNEL is not set. */
function toOperator(
  s: ImapSettings,
  payload: AlertPayload,
  eventKey: string,
  threadEventKey: string | null,
): NewAlert[] {
  if (!s.operator) return [];
  const { team, channel } = s.operator;
  return [{ eventKey, teamId: team ?? '', channelId: channel, threadEventKey, broadcast: false, payload }];
}

/** One line when the failure is alerted: where the alert went, or how to have one. */
function announceFailing(deps: Reader, since: string, error: string, at: Date): void {
  const s = deps.settings;
  const hours = Math.floor((at.getTime() - Date.parse(since)) / 3_600_000);
  const lasted = `the mailbox has failed every pass since ${since} (${hours} hours; last: ${error})`;
  if (!s.operator) {
    deps.logger.error(
      `tlsrpt imap: ${s.account}: ${lasted}. No alert is posted: set MTASTS_OPERATOR_CHANNEL to the id of the channel for it (T0123ABCD:C0123ABCD with OAuth)`,
    );
    return;
  }
  deps.logger.error(
    `tlsrpt imap: ${s.account}: ${lasted}: alerted in the operator channel ${s.operator.channel}`,
  );
  deps.onQueued?.();
}

/**
 * One pass under the lease that keeps two processes (the app, `mtasts ingest-imap --once`) from reading the mailbox
 * at once. Records how it went. Never throws.
 */
async function leasedPass(
  deps: Reader,
  tokens: TokenFile | null,
  session: () => Promise<Session>,
  shouldStop: () => boolean,
): Promise<PassResult> {
  const s = deps.settings;
  let held = false;
  try {
    held = await deps.locks.acquire(lockName(s), LOCK_TTL_MS, deps.now());
    if (!held) return { kind: 'busy' };
    const { summary, error } = await readFolder((await session()).client, deps, shouldStop);
    if (error !== null) return await failed(deps, error, summary);
    await succeeded(deps);
    return { kind: 'read', summary };
  } catch (err) {
    return await failed(deps, describeImapError(err, s, secretOf(s, tokens)), null);
  } finally {
    if (held) {
      try {
        await deps.locks.release(lockName(s));
      } catch {
        // The lease runs out by itself.
      }
    }
  }
}

const tokenFileOf = (s: ImapSettings): TokenFile | null =>
  'tokenFile' in s.auth ? new TokenFile(s.auth.tokenFile) : null;

/** `mtasts ingest-imap --once`: connect, one pass, log out. */
export async function readOnce(given: ImapReaderDeps): Promise<PassResult> {
  const deps = readerOf(given);
  const tokens = tokenFileOf(deps.settings);
  const opened: { session: Session | null } = { session: null };
  const open = async () => {
    opened.session = await openSession(deps, tokens, QUIET);
    return opened.session;
  };
  try {
    return await leasedPass(deps, tokens, open, () => false);
  } finally {
    await closeSession(opened.session);
  }
}

/** One line for the log or the terminal. */
export function passLine(s: PassSummary): string {
  return `${s.found} new message(s): ${s.stored} stored, ${s.unchanged} already stored or not watched, ${s.setAside} without a report, ${s.left} left for the next pass; ${s.moved} moved, ${s.flagged} flagged`;
}

/**
 * The app's reader. It keeps one connection open and makes a pass at start, whenever the server announces new mail
 * (IDLE, where the server has it), and at each poll (MTASTS_TLSRPT_IMAP_POLL). A pass that fails on the connection
 * drops it; the next poll connects again.
 */
export class ImapWatcher {
  private session: Session | null = null;
  private readonly tokens: TokenFile | null;
  private task: ScheduledTask | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private pending = false;
  private stopped = false;
  private lastError: string | null = null;

  private readonly deps: Reader;

  constructor(deps: ImapReaderDeps) {
    this.deps = readerOf(deps);
    this.tokens = tokenFileOf(deps.settings);
  }

  start(): void {
    if (this.loop) return;
    this.task = cronSchedule(this.deps.settings.poll, () => this.poke(), { noOverlap: true });
    this.loop = this.run().catch((err: unknown) =>
      this.deps.logger.error(`tlsrpt imap: the reader stopped: ${(err as Error).message}`),
    );
  }

  /** Whether the connection is in IDLE, waiting for the server to announce new mail. */
  get idling(): boolean {
    return this.session?.client.idling ?? false;
  }

  /** Ends the pass under way after the message it is taking in (moving what it took), and logs out. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.task?.stop();
    this.poke();
    await this.loop;
  }

  private poke(): void {
    this.pending = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.pending = false;
      const result = await leasedPass(
        this.deps,
        this.tokens,
        () => this.connected(),
        () => this.stopped,
      );
      this.report(result);
      if (result.kind === 'failed' && (result.summary === null || !this.session?.client.usable)) {
        await this.drop();
      }
      if (!this.stopped && !this.pending) await this.waitForWork();
    }
    await this.drop();
  }

  private async connected(): Promise<Session> {
    if (this.session?.client.usable) return this.session;
    await this.drop();
    const s = this.deps.settings;
    this.session = await openSession(this.deps, this.tokens, {
      error: (err) =>
        this.deps.logger.warn(
          `tlsrpt imap: ${s.account}: ${describeImapError(err, s, secretOf(s, this.tokens))}`,
        ),
      newMail: () => this.poke(),
      closed: (client) => {
        if (this.session?.client !== client) return;
        // A connection the server ends after a good while (an IDLE limit) is opened again at once; one it ends
        // soon after opening waits for the next poll.
        const lived = Date.now() - this.session.openedAt;
        this.session = null;
        if (!this.stopped && lived > 60_000) this.poke();
      },
    });
    return this.session;
  }

  private async drop(): Promise<void> {
    const session = this.session;
    this.session = null;
    await closeSession(session);
  }

  private waitForWork(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
      const client = this.session?.client;
      if (client?.usable && client.capabilities.has('IDLE')) void this.idle(client);
    });
  }

  /** IDLE until the next pass sends a command (which ends it); started again if something else ended it. */
  private async idle(client: ImapFlow): Promise<void> {
    while (this.wake && client.usable && this.session?.client === client && !client.idling) {
      if ((await client.idle().catch(() => false)) === false) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  private report(result: PassResult): void {
    const account = this.deps.settings.account;
    if (result.kind === 'failed') {
      if (result.error !== this.lastError) this.deps.logger.error(`tlsrpt imap: ${account}: ${result.error}`);
      this.lastError = result.error;
      return;
    }
    if (result.kind === 'busy') return; // another process is reading it
    if (this.lastError !== null) this.deps.logger.info(`tlsrpt imap: ${account}: the mailbox is read again`);
    this.lastError = null;
    if (result.summary.found > 0)
      this.deps.logger.info(`tlsrpt imap: ${account}: ${passLine(result.summary)}`);
  }
}
