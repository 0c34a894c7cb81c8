import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Db, sql } from './db.js';

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
 * call may throw what the database throws (SQLITE_BUSY while another process holds the lock, a PostgreSQL server that
 * does not answer): callers report it. The file checks concern SQLite alone: a PostgreSQL server has no file here.
 */
export class HealthStore {
  private readonly identity: { dev: number; ino: number } | null;

  constructor(
    private readonly db: Db,
    private readonly path: string,
  ) {
    this.identity = db.dialect !== 'sqlite' || path === ':memory:' ? null : fileIdentity(path);
  }

  /**
   * SQLite: takes the write lock and lets it go at once (BEGIN IMMEDIATE; ROLLBACK). PostgreSQL: the server is no
   * read-only standby. Either way the database can take writes now.
   */
  async probeWrite(): Promise<void> {
    if (this.db.dialect === 'postgres') {
      const row = await this.db.get<{ standby: boolean }>(sql`SELECT pg_is_in_recovery() AS standby`);
      if (row?.standby !== false) throw new Error('the PostgreSQL server is a read-only standby');
      return;
    }
    await this.db.pinned(async () => {
      await this.db.run(sql`BEGIN IMMEDIATE`);
      await this.db.run(sql`ROLLBACK`);
    });
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
    if (!this.db.sqlite) throw new Error('only a SQLite database has a file to rescue');
    await this.db.sqlite.backup(to);
    return to;
  }

  async outboxBacklog(): Promise<OutboxBacklog> {
    const row = await this.db.get<{ n: number; oldest: string | null }>(
      sql`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state = 'pending'`,
    );
    return { pending: row?.n ?? 0, oldestCreatedAt: row?.oldest ?? null };
  }

  async passProgress(): Promise<PassProgress> {
    const finished = await this.db.get<{ at: string | null }>(
      sql`SELECT MAX(finished_at) AS at FROM monitor_passes WHERE finished_at IS NOT NULL`,
    );
    const open = await this.db.get<{ started_at: string }>(
      sql`SELECT started_at FROM monitor_passes WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1`,
    );
    return { lastFinishedAt: finished?.at ?? null, unfinishedSince: open?.started_at ?? null };
  }

  /** The processes (host:pid) working on a page of the running pass now, in order; none between passes. */
  async passWorkers(now: Date): Promise<string[]> {
    const rows = await this.db.all<{ claimed_by: string }>(
      sql`SELECT DISTINCT claimed_by FROM monitor_pages
          WHERE done_at IS NULL AND claimed_by IS NOT NULL AND claimed_until > ${now.toISOString()}
          ORDER BY claimed_by`,
    );
    return rows.map((r) => r.claimed_by);
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
