import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db } from './db.js';

/** The alerts waiting in the outbox: how many, and since when the oldest. */
export interface OutboxBacklog {
  pending: number;
  oldestCreatedAt: string | null;
}

/** The last monitoring pass: when the last finished one ended, and whether one is under way (or was interrupted). */
export interface PassProgress {
  lastFinishedAt: string | null;
  unfinishedSince: string | null;
}

/** Whether the file at DATABASE_PATH is still the one this process opened (device and inode), or what happened to it. */
export type FileIdentity = { ok: true } | { ok: false; reason: 'removed' | 'replaced' };

/**
 * What health checks and metrics read from the database, read-only but for a write probe that changes nothing. Each
 * call may throw what the database throws (SQLITE_BUSY while another process holds the lock): callers report it.
 */
export class HealthStore {
  private readonly identity: { dev: number; ino: number } | null;

  constructor(
    private readonly db: Db,
    private readonly path: string,
  ) {
    this.identity = path === ':memory:' ? null : fileIdentity(path);
  }

  /** Takes the write lock and lets it go at once (BEGIN IMMEDIATE; ROLLBACK): the database can take writes now. */
  probeWrite(): void {
    this.db.exec('BEGIN IMMEDIATE');
    this.db.exec('ROLLBACK');
  }

  /** Whether DATABASE_PATH still names the file this process writes to; SQLite goes on writing to a removed one. */
  fileCheck(): FileIdentity {
    if (!this.identity) return { ok: true };
    const now = fileIdentity(this.path);
    if (!now) return { ok: false, reason: 'removed' };
    return now.dev === this.identity.dev && now.ino === this.identity.ino
      ? { ok: true }
      : { ok: false, reason: 'replaced' };
  }

  /**
   * Writes what this process still holds of a database whose file was removed or replaced (SQLite's online backup of
   * the open connection): back at DATABASE_PATH when nothing is there, else beside it, never over another file.
   * Resolves to where it was written.
   */
  async rescue(now: Date): Promise<string> {
    const check = this.fileCheck();
    const to = check.ok || check.reason === 'replaced' ? `${this.path}.rescued-${now.getTime()}` : this.path;
    mkdirSync(dirname(to), { recursive: true });
    await this.db.backup(to);
    return to;
  }

  outboxBacklog(): OutboxBacklog {
    const row = this.db
      .prepare("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending'")
      .get() as { n: number; oldest: string | null };
    return { pending: row.n, oldestCreatedAt: row.oldest };
  }

  passProgress(): PassProgress {
    const finished = this.db
      .prepare('SELECT MAX(finished_at) AS at FROM monitor_passes WHERE finished_at IS NOT NULL')
      .get() as { at: string | null };
    const open = this.db
      .prepare('SELECT started_at FROM monitor_passes WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1')
      .get() as { started_at: string } | undefined;
    return { lastFinishedAt: finished.at, unfinishedSince: open?.started_at ?? null };
  }

  /** Who holds a lease now (host:pid), or null when nobody does or it ran out. */
  leaseHolder(name: string, now: Date): string | null {
    const row = this.db.prepare('SELECT holder, expires_at FROM locks WHERE name = ?').get(name) as
      | { holder: string; expires_at: string }
      | undefined;
    return row && row.expires_at > now.toISOString() ? row.holder : null;
  }
}

function fileIdentity(path: string): { dev: number; ino: number } | null {
  try {
    const s = statSync(path);
    return { dev: s.dev, ino: s.ino };
  } catch {
    return null;
  }
}
