import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { projectFile } from '../paths.js';

export type Db = Database.Database;

export const MIGRATIONS_DIR = projectFile('db/migrations');

/** How long a statement waits for another process's lock by default: short, since the wait blocks the event loop. */
export const DEFAULT_BUSY_TIMEOUT_MS = 200;
/** Start-up (WAL switch, migrations) may wait longer: nothing is being served yet. */
const STARTUP_BUSY_TIMEOUT_MS = 5000;

/**
 * Opens the SQLite database (creating its folder and file on first start), with WAL and foreign keys on, and applies
 * the numbered migrations in db/migrations that it has not applied yet, each in its own transaction, recording them.
 * Every statement after that waits at most `busyTimeoutMs` for a lock another process holds (better-sqlite3 waits
 * synchronously, so a long wait would stall every request); callers that can wait retry (see store/busy.ts).
 */
export function openDatabase(
  path: string,
  migrationsDir: string = MIGRATIONS_DIR,
  busyTimeoutMs: number = DEFAULT_BUSY_TIMEOUT_MS,
): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma(`busy_timeout = ${STARTUP_BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  // With WAL, NORMAL never corrupts the database; a power cut may lose the last transactions, an app crash none.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db, migrationsDir);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  return db;
}

export function migrate(db: Db, migrationsDir: string = MIGRATIONS_DIR): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = new Set(
    db
      .prepare('SELECT version FROM schema_migrations')
      .all()
      .map((r) => (r as { version: number }).version),
  );
  const files = readdirSync(migrationsDir)
    .map((name) => ({ name, m: /^(\d+)_[\w-]+\.sql$/.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
    .map((f) => ({ name: f.name, version: Number(f.m[1]) }))
    .sort((a, b) => a.version - b.version);
  const done: string[] = [];
  for (const file of files) {
    if (applied.has(file.version)) continue;
    const sql = readFileSync(join(migrationsDir, file.name), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        file.version,
        file.name,
        new Date().toISOString(),
      );
    })();
    done.push(file.name);
  }
  return done;
}
