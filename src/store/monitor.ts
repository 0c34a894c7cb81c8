import type { Db } from './db.js';
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

/** The monitor's tables: per-domain state and conditions, snapshot history, the alert outbox, pass progress. */
export class MonitorStore {
  constructor(private readonly db: Db) {}

  /** Runs `work` in one transaction (nested calls become savepoints). */
  atomically(work: () => void): void {
    this.db.transaction(work)();
  }

  loadState(domain: string): DomainState {
    const row = this.db
      .prepare('SELECT snapshot_json, clean_since, ready_announced FROM domain_state WHERE domain = ?')
      .get(domain) as
      | { snapshot_json: string; clean_since: string | null; ready_announced: string | null }
      | undefined;
    const conditions = (
      this.db
        .prepare(
          `SELECT key, state, count, first_seen_at, opened_at, last_reminded_at, opener_key, info_json
           FROM conditions WHERE domain = ? ORDER BY key`,
        )
        .all(domain) as {
        key: string;
        state: 'pending' | 'open';
        count: number;
        first_seen_at: string;
        opened_at: string | null;
        last_reminded_at: string | null;
        opener_key: string | null;
        info_json: string;
      }[]
    ).map(
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
  commit(domain: string, state: DomainState, alerts: NewAlert[], now: Date): void {
    const nowIso = now.toISOString();
    this.db.transaction(() => {
      const snapshotJson = JSON.stringify(state.snapshot);
      const before = this.db.prepare('SELECT snapshot_json FROM domain_state WHERE domain = ?').get(domain) as
        | { snapshot_json: string }
        | undefined;
      this.db
        .prepare(
          `INSERT INTO domain_state (domain, snapshot_json, clean_since, ready_announced, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (domain) DO UPDATE SET snapshot_json = excluded.snapshot_json, clean_since = excluded.clean_since,
             ready_announced = excluded.ready_announced, updated_at = excluded.updated_at`,
        )
        .run(domain, snapshotJson, state.cleanSince, state.readyAnnounced, nowIso);
      // History keeps the snapshots that differ from the one before (an hourly pass over an unchanged domain adds none).
      if (state.snapshot && (!before || withoutTime(before.snapshot_json) !== withoutTime(snapshotJson))) {
        this.db
          .prepare('INSERT INTO snapshots (domain, taken_at, snapshot_json) VALUES (?, ?, ?)')
          .run(domain, state.snapshot.takenAt, snapshotJson);
        const cutoff = new Date(now.getTime() - HISTORY_DAYS * 86_400_000).toISOString();
        this.db.prepare('DELETE FROM snapshots WHERE domain = ? AND taken_at < ?').run(domain, cutoff);
      }
      this.db.prepare('DELETE FROM conditions WHERE domain = ?').run(domain);
      const insert = this.db.prepare(
        `INSERT INTO conditions (domain, key, state, count, first_seen_at, opened_at, last_reminded_at, opener_key, info_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const c of state.conditions) {
        insert.run(
          domain,
          c.key,
          c.state,
          c.count,
          c.firstSeenAt,
          c.openedAt,
          c.lastRemindedAt,
          c.openerKey,
          JSON.stringify(c.info),
        );
      }
      enqueue(this.db, domain, alerts, now);
    })();
  }

  /** Adds alerts to the outbox on their own, with no domain state to go with them (a hosted domain's news). */
  queue(domain: string, alerts: readonly NewAlert[], now: Date): void {
    enqueue(this.db, domain, alerts, now);
  }

  /** Alerts due now and not claimed by a live worker, oldest first. */
  due(now: Date, limit = 500): OutboxRow[] {
    const at = now.toISOString();
    return (
      this.db
        .prepare(
          `SELECT id, domain, event_key, team_id, channel_id, thread_event_key, broadcast, payload_json, attempts, rate_limited
           FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
           ORDER BY id LIMIT ?`,
        )
        .all(at, at, limit) as {
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
      }[]
    ).map((r) => ({
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
  threadTs(domain: string, eventKey: string, teamId: string, channelId: string): string | null {
    const row = this.db
      .prepare(
        `SELECT slack_ts FROM outbox WHERE domain = ? AND event_key = ? AND team_id = ? AND channel_id = ? AND state = 'sent'`,
      )
      .get(domain, eventKey, teamId, channelId) as { slack_ts: string | null } | undefined;
    return row?.slack_ts ?? null;
  }

  /**
   * Claims an alert for one worker until `until`, in one conditional UPDATE: only while it is pending and due, nobody
   * holds an unexpired claim on it, and no earlier alert to the same channel is pending (order within a channel).
   * Returns its counters as they are now when this worker holds it; null for whoever else asks at the same time.
   */
  claim(
    id: number,
    holder: string,
    now: Date,
    until: Date,
  ): { attempts: number; rateLimited: number } | null {
    const at = now.toISOString();
    const row = this.db
      .prepare(
        `UPDATE outbox SET claimed_by = ?, claimed_until = ?
         WHERE id = ? AND state = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
           AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.team_id = outbox.team_id
             AND earlier.channel_id = outbox.channel_id AND earlier.state = 'pending' AND earlier.id < outbox.id)
         RETURNING attempts, rate_limited`,
      )
      .get(holder, until.toISOString(), id, at, at) as { attempts: number; rate_limited: number } | undefined;
    return row ? { attempts: row.attempts, rateLimited: row.rate_limited } : null;
  }

  /** Posted: stored with its ts, and the claim released. */
  markSent(id: number, ts: string, now: Date): void {
    this.db
      .prepare(
        `UPDATE outbox SET state = 'sent', slack_ts = ?, sent_at = ?, attempts = attempts + 1,
           claimed_by = NULL, claimed_until = NULL WHERE id = ?`,
      )
      .run(ts, now.toISOString(), id);
  }

  /** A failed attempt (server error, network, timeout): counted, tried again at `at`, the claim released. */
  retryLater(id: number, at: Date, error: string): void {
    this.db
      .prepare(
        `UPDATE outbox SET attempts = attempts + 1, rate_limited = 0, next_attempt_at = ?, last_error = ?,
           claimed_by = NULL, claimed_until = NULL WHERE id = ?`,
      )
      .run(at.toISOString(), error, id);
  }

  /** Slack asked to wait (429): tried again at `at` without counting an attempt, the claim released. */
  waitRateLimited(id: number, at: Date, error: string): void {
    this.db
      .prepare(
        `UPDATE outbox SET rate_limited = rate_limited + 1, next_attempt_at = ?, last_error = ?,
           claimed_by = NULL, claimed_until = NULL WHERE id = ?`,
      )
      .run(at.toISOString(), error, id);
  }

  markDead(id: number, error: string): void {
    this.db
      .prepare(
        `UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?, claimed_by = NULL, claimed_until = NULL
         WHERE id = ?`,
      )
      .run(error, id);
  }

  /** Gives up on every pending alert to a channel that can no longer receive them. */
  killChannel(teamId: string, channelId: string, error: string): number {
    return this.db
      .prepare(
        `UPDATE outbox SET state = 'dead', last_error = ?, claimed_by = NULL, claimed_until = NULL
         WHERE team_id = ? AND channel_id = ? AND state = 'pending'`,
      )
      .run(error, teamId, channelId).changes;
  }

  /** Every alert in the outbox with its delivery state, oldest first (for operators and tests). */
  entries(): OutboxEntry[] {
    return (
      this.db
        .prepare(
          `SELECT id, event_key, channel_id, state, attempts, rate_limited, next_attempt_at, claimed_by, claimed_until, last_error
           FROM outbox ORDER BY id`,
        )
        .all() as {
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
      }[]
    ).map((r) => ({
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

  countByState(): Record<string, number> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as {
      state: string;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /** Starts a pass, or resumes the last one if it never finished (a crash or a restart mid-pass). */
  beginPass(now: Date): { id: number; cursor: string; resumed: boolean } {
    const open = this.db
      .prepare('SELECT id, cursor FROM monitor_passes WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1')
      .get() as { id: number; cursor: string } | undefined;
    if (open) return { id: open.id, cursor: open.cursor, resumed: true };
    const info = this.db.prepare('INSERT INTO monitor_passes (started_at) VALUES (?)').run(now.toISOString());
    return { id: Number(info.lastInsertRowid), cursor: '', resumed: false };
  }

  hasUnfinishedPass(): boolean {
    return (
      this.db.prepare('SELECT 1 FROM monitor_passes WHERE finished_at IS NULL LIMIT 1').get() !== undefined
    );
  }

  advancePass(id: number, cursor: string, count: number): void {
    this.db
      .prepare('UPDATE monitor_passes SET cursor = ?, domains = domains + ? WHERE id = ?')
      .run(cursor, count, id);
  }

  /** Ends a pass, and forgets delivered or abandoned alerts and passes older than the history window. */
  finishPass(id: number, now: Date): void {
    const cutoff = new Date(now.getTime() - HISTORY_DAYS * 86_400_000).toISOString();
    this.db.transaction(() => {
      this.db.prepare('UPDATE monitor_passes SET finished_at = ? WHERE id = ?').run(now.toISOString(), id);
      this.db.prepare("DELETE FROM outbox WHERE state IN ('sent', 'dead') AND created_at < ?").run(cutoff);
      this.db
        .prepare('DELETE FROM monitor_passes WHERE finished_at IS NOT NULL AND finished_at < ?')
        .run(cutoff);
      // The last check of a domain nobody watches (a one-off /mtasts check) is kept for the window, then forgotten.
      this.db
        .prepare(
          'DELETE FROM domain_checks WHERE checked_at < ? AND domain NOT IN (SELECT domain FROM subscriptions)',
        )
        .run(cutoff);
    })();
  }
}
