import { type Db, sql } from './db.js';
import type { Condition, DomainState, Snapshot } from './monitor-state.js';
import { enqueue, type NewAlert } from './outbox.js';

/** An alert in the outbox, as the deliverer reads it. */
export interface OutboxRow extends NewAlert {
  id: number;
  domain: string;
  /** Attempts made so far; a 429 answer is not one. */
  attempts: number;
  /** 429 answers in a row: each makes the next wait longer. */
  rateLimited: number;
}

/** An outbox row's delivery state. */
export interface OutboxEntry {
  id: number;
  eventKey: string;
  channelId: string;
  state: 'pending' | 'sent' | 'dead';
  attempts: number;
  rateLimited: number;
  nextAttemptAt: string;
  claimedBy: string | null;
  claimedUntil: string | null;
  lastError: string | null;
}

const HISTORY_DAYS = 30;

/** A snapshot's JSON without the moment it was taken, to tell whether anything changed. */
function withoutTime(json: string): string {
  return json.replace(/"takenAt":"[^"]*"/, '');
}

/** The monitor's tables: per-domain state and conditions, snapshot history, the alert outbox (passes: passes.ts). */
export class MonitorStore {
  constructor(private readonly db: Db) {}

  /** Runs `work` in one transaction (one begun inside it is part of it). */
  atomically(work: () => Promise<void>): Promise<void> {
    return this.db.transaction(work);
  }

  /** Runs `work` inside the transaction under way, undoing only its own writes when it throws (a savepoint). */
  apart<T>(work: () => Promise<T>): Promise<T> {
    return this.db.savepoint(work);
  }

  async loadState(domain: string): Promise<DomainState> {
    const row = await this.db.get<{
      snapshot_json: string;
      clean_since: string | null;
      ready_announced: string | null;
    }>(sql`SELECT snapshot_json, clean_since, ready_announced FROM domain_state WHERE domain = ${domain}`);
    const rows = await this.db.all<{
      key: string;
      state: 'pending' | 'open';
      count: number;
      first_seen_at: string;
      opened_at: string | null;
      last_reminded_at: string | null;
      opener_key: string | null;
      info_json: string;
    }>(
      sql`SELECT key, state, count, first_seen_at, opened_at, last_reminded_at, opener_key, info_json
          FROM conditions WHERE domain = ${domain} ORDER BY key`,
    );
    const conditions = rows.map(
      (r): Condition => ({
        key: r.key,
        state: r.state,
        count: r.count,
        firstSeenAt: r.first_seen_at,
        openedAt: r.opened_at,
        lastRemindedAt: r.last_reminded_at,
        openerKey: r.opener_key,
        info: JSON.parse(r.info_json),
      }),
    );
    return {
      snapshot: row ? (JSON.parse(row.snapshot_json) as Snapshot) : null,
      conditions,
      cleanSince: row?.clean_since ?? null,
      readyAnnounced: row?.ready_announced ?? null,
    };
  }

  /**
   * Writes a domain's new state and its alerts in one transaction: either both are stored or neither, so an alert
   * is never lost nor made twice by a crash between them. Alerts already in the outbox (same key and channel) are
   * not added again.
   */
  commit(domain: string, state: DomainState, alerts: NewAlert[], now: Date): Promise<void> {
    return this.db.transaction(async () => {
      await this.saveState(domain, state, now);
      await this.db.run(sql`DELETE FROM conditions WHERE domain = ${domain}`);
      for (const c of state.conditions) {
        await this.db.run(
          sql`INSERT INTO conditions (domain, key, state, count, first_seen_at, opened_at, last_reminded_at, opener_key, info_json)
              VALUES (${domain}, ${c.key}, ${c.state}, ${c.count}, ${c.firstSeenAt}, ${c.openedAt}, ${c.lastRemindedAt},
                ${c.openerKey}, ${JSON.stringify(c.info)})`,
        );
      }
      await enqueue(this.db, domain, alerts, now);
    });
  }

  /** The domain's state row, and its snapshot in the history when it differs from the one before. */
  private async saveState(domain: string, state: DomainState, now: Date): Promise<void> {
    const nowIso = now.toISOString();
    const snapshotJson = JSON.stringify(state.snapshot);
    const before = await this.db.get<{ snapshot_json: string }>(
      sql`SELECT snapshot_json FROM domain_state WHERE domain = ${domain}`,
    );
    await this.db.run(
      sql`INSERT INTO domain_state (domain, snapshot_json, clean_since, ready_announced, updated_at)
          VALUES (${domain}, ${snapshotJson}, ${state.cleanSince}, ${state.readyAnnounced}, ${nowIso})
          ON CONFLICT (domain) DO UPDATE SET snapshot_json = excluded.snapshot_json, clean_since = excluded.clean_since,
            ready_announced = excluded.ready_announced, updated_at = excluded.updated_at`,
    );
    // History keeps the snapshots that differ from the one before (an hourly pass over an unchanged domain adds none).
    if (state.snapshot && (!before || withoutTime(before.snapshot_json) !== withoutTime(snapshotJson))) {
      await this.db.run(
        sql`INSERT INTO snapshots (domain, taken_at, snapshot_json) VALUES (${domain}, ${state.snapshot.takenAt}, ${snapshotJson})`,
      );
      const cutoff = new Date(now.getTime() - HISTORY_DAYS * 86_400_000).toISOString();
      await this.db.run(sql`DELETE FROM snapshots WHERE domain = ${domain} AND taken_at < ${cutoff}`);
    }
  }

  /** Adds alerts to the outbox on their own, with no domain state to go with them (a hosted domain's news). */
  queue(domain: string, alerts: readonly NewAlert[], now: Date): Promise<void> {
    return enqueue(this.db, domain, alerts, now);
  }

  /** Alerts due now and not claimed by a live worker, oldest first. */
  async due(now: Date, limit = 500): Promise<OutboxRow[]> {
    const at = now.toISOString();
    const rows = await this.db.all<{
      id: number;
      domain: string;
      event_key: string;
      team_id: string;
      channel_id: string;
      thread_event_key: string | null;
      broadcast: number;
      payload_json: string;
      attempts: number;
      rate_limited: number;
    }>(
      sql`SELECT id, domain, event_key, team_id, channel_id, thread_event_key, broadcast, payload_json, attempts, rate_limited
          FROM outbox WHERE state = 'pending' AND next_attempt_at <= ${at} AND (claimed_until IS NULL OR claimed_until <= ${at})
          ORDER BY id LIMIT ${limit}`,
    );
    return rows.map((r) => ({
      id: r.id,
      domain: r.domain,
      eventKey: r.event_key,
      teamId: r.team_id,
      channelId: r.channel_id,
      threadEventKey: r.thread_event_key,
      broadcast: r.broadcast === 1,
      payload: JSON.parse(r.payload_json),
      attempts: r.attempts,
      rateLimited: r.rate_limited,
    }));
  }

  /** The Slack ts of an alert already posted to a channel: the thread a follow-up goes in. */
  async threadTs(
    domain: string,
    eventKey: string,
    teamId: string,
    channelId: string,
  ): Promise<string | null> {
    const row = await this.db.get<{ slack_ts: string | null }>(
      sql`SELECT slack_ts FROM outbox WHERE domain = ${domain} AND event_key = ${eventKey} AND team_id = ${teamId}
            AND channel_id = ${channelId} AND state = 'sent'`,
    );
    return row?.slack_ts ?? null;
  }

  /**
   * Claims an alert for one worker until `until`, in one conditional UPDATE: only while it is pending and due, nobody
   * holds an unexpired claim on it, and no earlier alert to the same channel is pending (order within a channel).
   * Returns its counters as they are now when this worker holds it; null for whoever else asks at the same time.
   * (On PostgreSQL a second worker's UPDATE waits for the first one's row lock, then finds the row claimed.)
   */
  async claim(
    id: number,
    holder: string,
    now: Date,
    until: Date,
  ): Promise<{ attempts: number; rateLimited: number } | null> {
    const at = now.toISOString();
    const row = await this.db.get<{ attempts: number; rate_limited: number }>(
      sql`UPDATE outbox SET claimed_by = ${holder}, claimed_until = ${until.toISOString()}
          WHERE id = ${id} AND state = 'pending' AND next_attempt_at <= ${at}
            AND (claimed_until IS NULL OR claimed_until <= ${at})
            AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.team_id = outbox.team_id
              AND earlier.channel_id = outbox.channel_id AND earlier.state = 'pending' AND earlier.id < outbox.id)
          RETURNING attempts, rate_limited`,
    );
    return row ? { attempts: row.attempts, rateLimited: row.rate_limited } : null;
  }

  /** Posted: stored with its ts, and the claim released. */
  async markSent(id: number, ts: string, now: Date): Promise<void> {
    await this.db.run(
      sql`UPDATE outbox SET state = 'sent', slack_ts = ${ts}, sent_at = ${now.toISOString()}, attempts = attempts + 1,
            claimed_by = NULL, claimed_until = NULL WHERE id = ${id}`,
    );
  }

  /** A failed attempt (server error, network, timeout): counted, tried again at `at`, the claim released. */
  async retryLater(id: number, at: Date, error: string): Promise<void> {
    await this.db.run(
      sql`UPDATE outbox SET attempts = attempts + 1, rate_limited = 0, next_attempt_at = ${at.toISOString()},
            last_error = ${error}, claimed_by = NULL, claimed_until = NULL WHERE id = ${id}`,
    );
  }

  /** Slack asked to wait (429): tried again at `at` without counting an attempt, the claim released. */
  async waitRateLimited(id: number, at: Date, error: string): Promise<void> {
    await this.db.run(
      sql`UPDATE outbox SET rate_limited = rate_limited + 1, next_attempt_at = ${at.toISOString()}, last_error = ${error},
            claimed_by = NULL, claimed_until = NULL WHERE id = ${id}`,
    );
  }

  async markDead(id: number, error: string): Promise<void> {
    await this.db.run(
      sql`UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ${error}, claimed_by = NULL,
            claimed_until = NULL WHERE id = ${id}`,
    );
  }

  /** Gives up on every pending alert to a channel that can no longer receive them. */
  killChannel(teamId: string, channelId: string, error: string): Promise<number> {
    return this.db.run(
      sql`UPDATE outbox SET state = 'dead', last_error = ${error}, claimed_by = NULL, claimed_until = NULL
          WHERE team_id = ${teamId} AND channel_id = ${channelId} AND state = 'pending'`,
    );
  }

  /** Every alert in the outbox with its delivery state, oldest first (for operators and tests). */
  async entries(): Promise<OutboxEntry[]> {
    const rows = await this.db.all<{
      id: number;
      event_key: string;
      channel_id: string;
      state: OutboxEntry['state'];
      attempts: number;
      rate_limited: number;
      next_attempt_at: string;
      claimed_by: string | null;
      claimed_until: string | null;
      last_error: string | null;
    }>(
      sql`SELECT id, event_key, channel_id, state, attempts, rate_limited, next_attempt_at, claimed_by, claimed_until, last_error
          FROM outbox ORDER BY id`,
    );
    return rows.map((r) => ({
      id: r.id,
      eventKey: r.event_key,
      channelId: r.channel_id,
      state: r.state,
      attempts: r.attempts,
      rateLimited: r.rate_limited,
      nextAttemptAt: r.next_attempt_at,
      claimedBy: r.claimed_by,
      claimedUntil: r.claimed_until,
      lastError: r.last_error,
    }));
  }

  async countByState(): Promise<Record<string, number>> {
    const rows = await this.db.all<{ state: string; n: number }>(
      sql`SELECT state, COUNT(*) AS n FROM outbox GROUP BY state`,
    );
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async hasUnfinishedPass(): Promise<boolean> {
    return (
      (await this.db.get(sql`SELECT 1 AS one FROM monitor_passes WHERE finished_at IS NULL LIMIT 1`)) !==
      undefined
    );
  }

  /** After a pass: forgets delivered or abandoned alerts and passes older than the history window. */
  prune(now: Date): Promise<void> {
    const cutoff = new Date(now.getTime() - HISTORY_DAYS * 86_400_000).toISOString();
    return this.db.transaction(async () => {
      await this.db.run(sql`DELETE FROM outbox WHERE state IN ('sent', 'dead') AND created_at < ${cutoff}`);
      await this.db.run(
        sql`DELETE FROM monitor_passes WHERE finished_at IS NOT NULL AND finished_at < ${cutoff}`,
      );
      await this.db.run(sql`DELETE FROM monitor_pass_ticks WHERE slot < ${cutoff}`);
      // The last check of a domain nobody watches (a one-off /mtasts check) is kept for the window, then forgotten.
      await this.db.run(
        sql`DELETE FROM domain_checks WHERE checked_at < ${cutoff} AND domain NOT IN (SELECT domain FROM subscriptions)`,
      );
    });
  }
}
