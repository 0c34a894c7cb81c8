import { hostname } from 'node:os';
import { type Db, sql } from './db.js';

/** This process, as a lock holder. */
export const SELF = `${hostname()}:${process.pid}`;

/** Whether a holder may still be running: always for another host's (its lease decides), by its pid on this host. */
export function alive(holder: string): boolean {
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
 * Named leases between processes that share the database (`mtasts sweep`'s and the app's passes, the IMAP reader).
 * A lease expires unless renewed; one left by a dead process on this host is taken over. Taking one is a single
 * conditional upsert, so that two processes asking at once (on either engine) never both get it.
 */
export class LockStore {
  constructor(
    private readonly db: Db,
    private readonly holder: string = SELF,
  ) {}

  async acquire(name: string, ttlMs: number, now: Date): Promise<boolean> {
    const until = new Date(now.getTime() + ttlMs).toISOString();
    if (await this.take(name, until, now.toISOString(), null)) return true;
    const row = await this.db.get<{ holder: string }>(sql`SELECT holder FROM locks WHERE name = ${name}`);
    // A holder on this host that is no longer running: its lease is taken over, unless someone else was quicker.
    return row !== undefined && !alive(row.holder) && this.take(name, until, now.toISOString(), row.holder);
  }

  /** Sets the lease when it is free, ours, run out, or (when `dead` is given) held by that dead process. */
  private async take(name: string, until: string, now: string, dead: string | null): Promise<boolean> {
    const row = await this.db.get<{ holder: string }>(
      sql`INSERT INTO locks (name, holder, expires_at) VALUES (${name}, ${this.holder}, ${until})
          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE locks.holder = excluded.holder OR locks.expires_at <= ${now} OR locks.holder = ${dead}
          RETURNING holder`,
    );
    return row !== undefined;
  }

  async release(name: string): Promise<void> {
    await this.db.run(sql`DELETE FROM locks WHERE name = ${name} AND holder = ${this.holder}`);
  }
}
