import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Db, sql } from './db.js';

/** This process's PID namespace (Linux: the inode in /proc/self/ns/pid), or '' where it cannot be read. */
function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    return '';
  }
}

const NAMESPACE = pidNamespace();

/**
 * This process, as a lock holder: host:pid, and its PID namespace where there is one, since containers that share a
 * host name (or the host's) each count pids of their own.
 */
export const SELF = NAMESPACE ? `${hostname()}:${process.pid}:${NAMESPACE}` : `${hostname()}:${process.pid}`;

/**
 * Whether a holder may still be running. Another host's, or another PID namespace's, always: its lease decides. One of
 * this host and namespace (or one that names none) by its pid: a process that exists is running, also when it belongs
 * to another user (EPERM); only "no such process" is dead.
 */
export function alive(holder: string): boolean {
  const [host, pid, namespace] = holder.split(':');
  if (host !== hostname()) return true;
  if (namespace !== undefined && namespace !== NAMESPACE) return true;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
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
