import { hostname } from 'node:os';
import type { Db } from './db.js';

/** This process, as a lock holder. */
export const SELF = `${hostname()}:${process.pid}`;

function alive(holder: string): boolean {
  const [host, pid] = holder.split(':');
  if (host !== hostname()) return true; // another machine: trust its lease until it expires
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Leases between processes that share the database: one monitoring pass at a time, whether the app's scheduler or
 * `mtasts sweep` starts it. A lease expires unless renewed; one left by a dead process on this host is taken over.
 */
export class LockStore {
  constructor(
    private readonly db: Db,
    private readonly holder: string = SELF,
  ) {}

  acquire(name: string, ttlMs: number, now: Date): boolean {
    return this.db.transaction((): boolean => {
      const row = this.db.prepare('SELECT holder, expires_at FROM locks WHERE name = ?').get(name) as
        | { holder: string; expires_at: string }
        | undefined;
      if (row && row.holder !== this.holder && row.expires_at > now.toISOString() && alive(row.holder))
        return false;
      this.db
        .prepare(
          `INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
        )
        .run(name, this.holder, new Date(now.getTime() + ttlMs).toISOString());
      return true;
    })();
  }

  release(name: string): void {
    this.db.prepare('DELETE FROM locks WHERE name = ? AND holder = ?').run(name, this.holder);
  }
}
