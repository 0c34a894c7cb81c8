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

/** Posts one alert to its channel (in a thread when `threadTs` is given). */
export interface Poster {
  post(row: OutboxRow, threadTs: string | null): Promise<PostResult>;
}

export interface DeliverySettings {
  /** Least time between two posts to one channel (Slack allows about one message per second per channel). */
  channelPacingMs: number;
  maxAttempts: number;
  /** First retry delay; doubled for each attempt, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Channels posted to at once. */
  parallelChannels: number;
}

export const DEFAULT_DELIVERY: DeliverySettings = {
  channelPacingMs: 1100,
  maxAttempts: 12,
  backoffMs: 30_000,
  maxBackoffMs: 3_600_000,
  parallelChannels: 8,
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

/**
 * Sends what the outbox holds, oldest first, keeping order within a channel: an alert waits while an earlier one to
 * the same channel is still pending. Rate limits (429 with Retry-After) and server errors are retried later with
 * backoff; a channel that is gone (bot removed, archived) is logged and its subscriptions paused, not retried forever.
 */
export async function deliverOutbox(
  store: MonitorStore,
  subscriptions: SubscriptionStore,
  poster: Poster,
  now: () => Date,
  logger: Logger,
  settings: DeliverySettings = DEFAULT_DELIVERY,
): Promise<DeliverySummary> {
  const summary: DeliverySummary = { sent: 0, retrying: 0, dead: 0, channelsPaused: 0 };
  // Channels are served side by side; within a channel, in order and paced.
  const byChannel = new Map<string, OutboxRow[]>();
  for (const row of store.due(now())) {
    const key = `${row.teamId}/${row.channelId}`;
    const rows = byChannel.get(key) ?? [];
    rows.push(row);
    byChannel.set(key, rows);
  }
  await pool([...byChannel.values()], settings.parallelChannels, async (rows) => {
    let lastPost = 0;
    for (const row of rows) {
      if (store.hasEarlierPending(row)) break; // an earlier alert to this channel is waiting for a retry
      const wait = lastPost + settings.channelPacingMs - Date.now();
      if (lastPost > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
      const threadTs = row.threadEventKey
        ? store.threadTs(row.domain, row.threadEventKey, row.teamId, row.channelId)
        : null;
      let result: PostResult;
      try {
        result = await poster.post(row, threadTs);
      } catch (err) {
        result = { ok: false, kind: 'retry', error: err instanceof Error ? err.message : String(err) };
      }
      lastPost = Date.now();
      if (result.ok) {
        store.markSent(row.id, result.ts, now());
        summary.sent++;
        continue;
      }
      if (result.kind === 'channel-gone') {
        const killed = store.killChannel(row.teamId, row.channelId, result.error);
        const paused = subscriptions.pauseChannel(
          row.teamId,
          row.channelId,
          `alerts cannot be posted: ${result.error}`,
          now(),
        );
        logger.warn(
          `alerts to channel ${row.channelId} (team ${row.teamId}) stopped: ${result.error}; ${paused} subscription(s) paused, ${killed} alert(s) dropped`,
        );
        summary.dead += killed;
        summary.channelsPaused++;
        return;
      }
      if (result.kind === 'fatal' || row.attempts + 1 >= settings.maxAttempts) {
        store.markDead(row.id, result.error);
        logger.error(
          `alert ${row.eventKey} to ${row.channelId} (team ${row.teamId}) given up after ${row.attempts + 1} attempt(s): ${result.error}`,
        );
        summary.dead++;
        continue;
      }
      const delay =
        result.kind === 'rate-limited'
          ? Math.max(1, result.retryAfterS) * 1000
          : Math.min(settings.maxBackoffMs, settings.backoffMs * 2 ** row.attempts);
      store.retryLater(row.id, new Date(now().getTime() + delay), result.error);
      logger.warn(
        `alert ${row.eventKey} to ${row.channelId}: ${result.error}; retrying in ${Math.round(delay / 1000)} s`,
      );
      summary.retrying++;
      return; // the rest of this channel waits behind it
    }
  });
  return summary;
}
