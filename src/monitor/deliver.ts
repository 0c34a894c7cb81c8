import { randomUUID } from 'node:crypto';
import { SELF } from '../store/locks.js';
import type { MonitorStore, OutboxRow } from '../store/monitor.js';
import type { SubscriptionStore } from '../store/subscriptions.js';
import { pool } from './pool.js';

/** How one attempt to post an alert ended. */
export type PostResult =
  | { ok: true; ts: string }
  | { ok: false; kind: 'rate-limited'; retryAfterS: number; error: string }
  | { ok: false; kind: 'channel-gone'; error: string }
  | { ok: false; kind: 'retry'; error: string }
  | { ok: false; kind: 'fatal'; error: string };

/** The Slack call's timeout when none is set (MTASTS_SLACK_TIMEOUT_MS). */
export const DEFAULT_SLACK_TIMEOUT_MS = 10_000;

/** Posts one alert to its channel (in a thread when `threadTs` is given). */
export interface Poster {
  post(row: OutboxRow, threadTs: string | null): Promise<PostResult>;
  /** The longest one post can take: its call times out after this. A claim lasts three times as long. */
  readonly timeoutMs?: number;
}

export interface DeliverySettings {
  /** Least time between two posts to one channel (Slack allows about one message per second per channel). */
  channelPacingMs: number;
  /** Attempts that failed (server errors, network, timeouts) before an alert is given up; 429 answers are not counted. */
  maxAttempts: number;
  /** First retry delay; doubled for each attempt, up to maxBackoffMs. A 429 waits Retry-After, doubled for each 429 in a row. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Channels posted to at once. */
  parallelChannels: number;
  /** Share of a wait added at random (0.1: up to 10% longer), so that retries held back together do not return together. */
  jitter: number;
  /** The random source of the jitter, from 0 to 1 (tests fix it). */
  random: () => number;
}

export const DEFAULT_DELIVERY: DeliverySettings = {
  channelPacingMs: 1100,
  maxAttempts: 12,
  backoffMs: 30_000,
  maxBackoffMs: 3_600_000,
  parallelChannels: 8,
  jitter: 0.1,
  random: Math.random,
};

export interface DeliverySummary {
  sent: number;
  retrying: number;
  dead: number;
  channelsPaused: number;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface DeliveryDeps {
  store: MonitorStore;
  subscriptions: SubscriptionStore;
  poster: Poster;
  now: () => Date;
  logger: Logger;
  settings: DeliverySettings;
  /** This worker's name in the claims it takes: unique to it, also among workers of one process. */
  holder: string;
}

/** A name for a delivery worker: this host and process, and a part of its own. */
export function workerName(): string {
  return `${SELF}#${randomUUID().slice(0, 8)}`;
}

/**
 * The delivery worker: one per process. A call while a round runs does not start a second round beside it: the worker
 * runs one more round once the current one ends, and every call made in the meantime gets that round's promise.
 */
export class DeliveryWorker {
  private current: Promise<DeliverySummary> | null = null;
  private queued: Promise<DeliverySummary> | null = null;

  constructor(private readonly deps: DeliveryDeps) {}

  deliver(): Promise<DeliverySummary> {
    if (this.queued) return this.queued;
    if (!this.current) return this.start();
    const ended = this.current.then(
      () => {},
      () => {},
    );
    this.queued = ended.then(() => {
      this.queued = null;
      return this.start();
    });
    return this.queued;
  }

  /** Resolves once no round runs and none is waiting to. */
  async idle(): Promise<void> {
    for (let round = this.queued ?? this.current; round; round = this.queued ?? this.current) {
      await round.catch(() => {});
    }
  }

  private start(): Promise<DeliverySummary> {
    const round = deliverOutbox(this.deps).finally(() => {
      this.current = null;
    });
    this.current = round;
    return round;
  }
}

/**
 * One round over what the outbox holds, oldest first, keeping order within a channel: an alert waits while an earlier
 * one to the same channel is pending. Each alert is claimed before it is posted, so that no other worker (in this or
 * another process sharing the database) posts it at the same time. Rate limits (429) wait as long as Slack asks, and
 * longer for each 429 in a row, without counting an attempt; server errors, network errors and timeouts are retried
 * with growing backoff; a channel that is gone (bot removed, archived) is logged and its subscriptions paused.
 */
export async function deliverOutbox(deps: DeliveryDeps): Promise<DeliverySummary> {
  const summary: DeliverySummary = { sent: 0, retrying: 0, dead: 0, channelsPaused: 0 };
  // Channels are served side by side; within a channel, in order and paced.
  const byChannel = new Map<string, OutboxRow[]>();
  for (const row of await deps.store.due(deps.now())) {
    const key = `${row.teamId}/${row.channelId}`;
    const rows = byChannel.get(key) ?? [];
    rows.push(row);
    byChannel.set(key, rows);
  }
  await pool([...byChannel.values()], deps.settings.parallelChannels, (rows) =>
    deliverChannel(deps, rows, summary),
  );
  return summary;
}

async function deliverChannel(
  deps: DeliveryDeps,
  rows: OutboxRow[],
  summary: DeliverySummary,
): Promise<void> {
  const { store, poster, now, settings } = deps;
  // Longer than the post can take, so that the claim of a live worker never runs out under it.
  const leaseMs = 3 * (poster.timeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS);
  let lastPost = 0;
  for (const due of rows) {
    const wait = lastPost + settings.channelPacingMs - Date.now();
    if (lastPost > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
    const at = now();
    const claimed = await store.claim(due.id, deps.holder, at, new Date(at.getTime() + leaseMs));
    if (!claimed) return; // another worker holds it, or an earlier alert to this channel waits
    const row: OutboxRow = { ...due, ...claimed };
    const result = await attempt(deps, row);
    lastPost = Date.now();
    if (!(await settle(deps, row, result, summary))) return; // the rest of this channel waits behind it
  }
}

async function attempt(deps: DeliveryDeps, row: OutboxRow): Promise<PostResult> {
  try {
    const threadTs = row.threadEventKey
      ? await deps.store.threadTs(row.domain, row.threadEventKey, row.teamId, row.channelId)
      : null;
    return await deps.poster.post(row, threadTs);
  } catch (err) {
    return { ok: false, kind: 'retry', error: err instanceof Error ? err.message : String(err) };
  }
}

/** Stores how an attempt ended, releasing the claim; false when the rest of the channel must wait. */
async function settle(
  deps: DeliveryDeps,
  row: OutboxRow,
  result: PostResult,
  summary: DeliverySummary,
): Promise<boolean> {
  const { store, now, logger, settings } = deps;
  const where = `alert ${row.eventKey} to ${row.channelId} (team ${row.teamId})`;
  if (result.ok) {
    await store.markSent(row.id, result.ts, now());
    summary.sent++;
    return true;
  }
  if (result.kind === 'channel-gone') {
    await stopChannel(deps, row, result.error, summary);
    return false;
  }
  if (result.kind === 'rate-limited') {
    const delay = rateLimitDelay(result.retryAfterS, row.rateLimited, settings);
    await store.waitRateLimited(row.id, new Date(now().getTime() + delay), result.error);
    logger.warn(`${where}: ${result.error}; waiting ${Math.round(delay / 1000)} s as Slack asks`);
    summary.retrying++;
    return false;
  }
  if (result.kind === 'fatal' || row.attempts + 1 >= settings.maxAttempts) {
    await store.markDead(row.id, result.error);
    logger.error(`${where} given up after ${row.attempts + 1} attempt(s): ${result.error}`);
    summary.dead++;
    return true;
  }
  const delay = retryDelay(row.attempts, settings);
  await store.retryLater(row.id, new Date(now().getTime() + delay), result.error);
  logger.warn(`${where}: ${result.error}; retrying in ${Math.round(delay / 1000)} s`);
  summary.retrying++;
  return false;
}

async function stopChannel(
  deps: DeliveryDeps,
  row: OutboxRow,
  error: string,
  summary: DeliverySummary,
): Promise<void> {
  const killed = await deps.store.killChannel(row.teamId, row.channelId, error);
  const paused = await deps.subscriptions.pauseChannel(
    row.teamId,
    row.channelId,
    `alerts cannot be posted: ${error}`,
    deps.now(),
  );
  deps.logger.warn(
    `alerts to channel ${row.channelId} (team ${row.teamId}) stopped: ${error}; ${paused} subscription(s) paused, ${killed} alert(s) dropped`,
  );
  summary.dead += killed;
  summary.channelsPaused++;
}

/** The wait after a failed attempt: backoffMs doubled for each attempt already made, up to maxBackoffMs. */
export function retryDelay(attempts: number, settings: DeliverySettings): number {
  return withJitter(
    Math.min(settings.maxBackoffMs, settings.backoffMs * 2 ** Math.min(attempts, 40)),
    settings,
  );
}

/**
 * The wait after a 429: what Retry-After asks (at least a second), doubled for each 429 in a row before it, up to
 * maxBackoffMs, never less than Retry-After.
 */
export function rateLimitDelay(retryAfterS: number, rateLimited: number, settings: DeliverySettings): number {
  const asked = Math.max(1, retryAfterS) * 1000;
  const grown = Math.min(settings.maxBackoffMs, asked * 2 ** Math.min(rateLimited, 40));
  return withJitter(Math.max(asked, grown), settings);
}

function withJitter(ms: number, settings: DeliverySettings): number {
  return Math.round(ms * (1 + settings.jitter * Math.min(1, Math.max(0, settings.random()))));
}
