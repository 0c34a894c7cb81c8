import { type PolicySeen, policyInForce, type Report } from '../core/check.js';
import type { Domain } from '../core/domain.js';
import type { Engine } from '../engine.js';
import type { HostingService } from '../hosting/service.js';
import { lastPolicyOf } from '../monitor/diff.js';
import { DatabaseBusyError, whenFree } from '../store/busy.js';
import type { CheckStore } from '../store/checks.js';
import type { MailboxStatus } from '../store/imap.js';
import type { InstallationStoreSqlite } from '../store/installations.js';
import type { MonitorStore } from '../store/monitor.js';
import type { SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';
import type { MailboxView } from './blocks/mailbox.js';
import type { CheckLimiter } from './limiter.js';

/** What the Slack listeners work with; built once in main.ts (or by a test). */
export interface SlackContext {
  engine: Engine;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  tlsrpt: TlsRptStore;
  /** Multi-workspace mode: where installations are kept; null with a single SLACK_BOT_TOKEN. */
  installations: InstallationStoreSqlite | null;
  maxDomainsPerTeam: number;
  now: () => Date;
  /** Rations the checks users start: per user and per workspace. */
  limiter: CheckLimiter;
  /** The monitor's state per domain: where the rollout rule reads a watched domain's clean days (absent in tests). */
  monitorState?: Pick<MonitorStore, 'loadState'>;
  /** The TLS-RPT mailbox read over IMAP, whose status its operator sees; absent or null when none is read. */
  mailbox?: MailboxSource | null;
  /** Aborted when the app stops (SIGTERM): the checks users started end at once instead of holding the shutdown. */
  stopping?: AbortSignal;
  /** Hosted MTA-STS (`/mtasts host`); null or absent while MTASTS_HOSTING_NAME is unset. */
  hosting?: HostingContext | null;
}

/** What `/mtasts host`, its buttons and the setup form work with. */
export interface HostingContext {
  service: HostingService;
  /** MTASTS_HOSTING_NAME: each enrollment's CNAME target is `<token>.<name>`, under the operator's wildcard. */
  name: string;
  /** MTASTS_HOSTING_MAX_PER_WORKSPACE. */
  maxPerWorkspace: number;
}

/** The TLS-RPT mailbox (MTASTS_TLSRPT_IMAP_URL): it belongs to whoever runs the app, not to a workspace. */
export interface MailboxSource {
  account: string;
  folder: string;
  alertAfterMs: number;
  /**
   * Whether a workspace is the operator's: with a single SLACK_BOT_TOKEN, the one workspace; with OAuth, only the
   * workspace of MTASTS_OPERATOR_CHANNEL (none when it is not set).
   */
  shownTo(team: string): boolean;
  status(): Promise<MailboxStatus | null>;
}

/** The mailbox's status for the operator's workspace; null for any other, or when no mailbox is read. */
export async function mailboxFor(ctx: SlackContext, team: string): Promise<MailboxView | null> {
  const m = ctx.mailbox;
  if (!m?.shownTo(team)) return null;
  const status = await db(() => m.status());
  return { account: m.account, folder: m.folder, alertAfterMs: m.alertAfterMs, status, now: ctx.now() };
}

/** What a user is told when another process has held the database's lock through every retry. */
export const DB_BUSY_TEXT =
  ':hourglass: The database is busy right now (another process holds its lock); nothing was changed. Please try again in a moment.';

/**
 * A store call, retried (yielding in between) while another process holds the database's lock; DatabaseBusyError
 * when it holds it through every try. Every listener's store access goes through here.
 */
export const db = whenFree;

/** A user's check cut short because the app is stopping: nothing was kept, and the user is told to run it again. */
export class CheckStopped extends Error {
  constructor(domain: string) {
    super(`the check of ${domain} was stopped: the app is shutting down`);
  }
}

export const STOPPED_TEXT =
  ':arrows_counterclockwise: The app is restarting, so this check was stopped before it finished; nothing was changed. Please run it again in a minute.';

/**
 * Checks a domain and keeps the result as its last check: what every re-check in Slack does. The caller holds a
 * ticket from ctx.limiter. When the database stays busy the report is still returned, just not kept.
 */
export async function checkAndRemember(ctx: SlackContext, domain: Domain): Promise<Report> {
  const report = await ctx.engine.check(domain, ctx.stopping);
  if (report.aborted) throw new CheckStopped(domain.ascii);
  if (policyInForce(report) === null) {
    // What senders may still hold: the monitor remembers the last policy in force of a watched domain.
    const seen = await db(() => lastPolicySeen(ctx, domain.ascii)).catch(() => undefined);
    if (seen !== undefined) report.lastPolicy = seen;
  }
  await db(() => ctx.checks.save(report)).catch((err: unknown) => {
    if (!(err instanceof DatabaseBusyError)) throw err;
  });
  return report;
}

/** The last policy in force the monitor saw for a watched domain (null: none since it began); undefined: no history. */
async function lastPolicySeen(ctx: SlackContext, domain: string): Promise<PolicySeen | null | undefined> {
  const state = await ctx.monitorState?.loadState(domain);
  return state?.snapshot ? lastPolicyOf(state.snapshot) : undefined;
}

/**
 * Runs `work` under a check ticket for this user and workspace; the ticket is returned whatever happens. `refused`
 * gets the limiter's message (when to try again) when no check may start now.
 */
export async function rationed<T>(
  ctx: SlackContext,
  who: { team: string; user: string },
  refused: (message: string) => Promise<unknown>,
  work: () => Promise<T>,
): Promise<T | undefined> {
  const ticket = ctx.limiter.take(who.team, who.user);
  if (!ticket.ok) {
    await refused(ticket.message);
    return undefined;
  }
  try {
    return await work();
  } finally {
    ticket.release();
  }
}
