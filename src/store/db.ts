import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, type RawBuilder, SqliteDialect, sql } from 'kysely';
import type pg from 'pg';
import { projectFile } from '../paths.js';
import { migratePostgres, migrateSqlite } from './migrate.js';

export { sql };

export type Dialect = 'sqlite' | 'postgres';

export const MIGRATIONS_DIR = projectFile('db/migrations');

/** How long a statement waits for another process's lock by default: short, since the wait blocks the event loop. */
export const DEFAULT_BUSY_TIMEOUT_MS = 200;
/** Start-up (WAL switch, migrations) may wait longer: nothing is being served yet. */
const STARTUP_BUSY_TIMEOUT_MS = 5000;

/** The PostgreSQL pool's bounds (DATABASE_URL). */
export interface PostgresSettings {
  /** Connections at most. */
  poolSize: number;
  /** A statement running longer is cancelled by the server (statement_timeout). */
  statementTimeoutMs: number;
  /** Waiting for a connection (new, or free in the pool) fails after this. */
  connectTimeoutMs: number;
}

export const DEFAULT_POSTGRES: PostgresSettings = {
  poolSize: 10,
  statementTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
};

type Executor = Kysely<Record<string, never>>;

/**
 * The database, SQLite (better-sqlite3, one file) or PostgreSQL (a bounded node-postgres pool), behind one query
 * layer: Kysely's `sql` template, whose values are always bound parameters. Every store class holds one of these.
 * `transaction(work)` runs `work` in one transaction: every query any store makes while it runs (same async context)
 * goes to that transaction; a transaction begun inside another is part of it.
 */
export class Database {
  private readonly scope = new AsyncLocalStorage<{ trx: Executor; open: boolean }>();
  /** The migration files this process applied when it opened the database (none when another process had). */
  migrated: string[] = [];
  private savepoints = 0;

  private constructor(
    readonly dialect: Dialect,
    private readonly kysely: Executor,
    /** The SQLite connection (health probes, backup, file name); null on PostgreSQL. */
    readonly sqlite: BetterSqlite3.Database | null,
  ) {}

  static sqliteOn(handle: BetterSqlite3.Database): Database {
    return new Database('sqlite', new Kysely({ dialect: new SqliteDialect({ database: handle }) }), handle);
  }

  static postgresOn(pool: pg.Pool): Database {
    return new Database('postgres', new Kysely({ dialect: new PostgresDialect({ pool }) }), null);
  }

  private get executor(): Executor {
    const s = this.scope.getStore();
    return s?.open ? s.trx : this.kysely;
  }

  async all<T>(query: RawBuilder<T>): Promise<T[]> {
    return (await query.execute(this.executor)).rows;
  }

  async get<T>(query: RawBuilder<T>): Promise<T | undefined> {
    return (await query.execute(this.executor)).rows[0];
  }

  /** Runs a statement; resolves to the number of rows it changed. */
  async run(query: RawBuilder<unknown>): Promise<number> {
    return Number((await query.execute(this.executor)).numAffectedRows ?? 0n);
  }

  async transaction<T>(work: () => Promise<T>): Promise<T> {
    if (this.scope.getStore()?.open) return work();
    if (this.dialect === 'postgres')
      return this.kysely.transaction().execute((trx) => this.within(trx, work));
    return this.kysely.connection().execute(async (conn) => {
      // IMMEDIATE: the write lock is taken (or waited for, up to the busy timeout) at the start. A deferred BEGIN that
      // reads first fails at once (SQLITE_BUSY_SNAPSHOT) when another process wrote meanwhile: no wait helps it.
      await sql`BEGIN IMMEDIATE`.execute(conn);
      try {
        const result = await this.within(conn, work);
        await sql`COMMIT`.execute(conn);
        return result;
      } catch (err) {
        // SQLite may have rolled the transaction back itself (a busy or full database): then there is none to end.
        if (this.sqlite?.inTransaction) await sql`ROLLBACK`.execute(conn);
        throw err;
      }
    });
  }

  /**
   * Runs `work` inside the transaction under way as a savepoint: when it throws, what it wrote is undone and the
   * transaction goes on (on PostgreSQL a failed statement would otherwise doom the whole transaction). Outside one, a
   * transaction of its own. Calls inside one transaction run one after another.
   */
  async savepoint<T>(work: () => Promise<T>): Promise<T> {
    if (!this.scope.getStore()?.open) return this.transaction(work);
    const name = `sp_${++this.savepoints}`;
    await this.run(sql.raw(`SAVEPOINT ${name}`));
    try {
      const result = await work();
      await this.run(sql.raw(`RELEASE SAVEPOINT ${name}`));
      return result;
    } catch (err) {
      await this.run(sql.raw(`ROLLBACK TO SAVEPOINT ${name}`));
      await this.run(sql.raw(`RELEASE SAVEPOINT ${name}`));
      throw err;
    }
  }

  /** Runs `work` with every query it makes on one connection held for it alone (SQLite: the only one). */
  async pinned<T>(work: () => Promise<T>): Promise<T> {
    if (this.scope.getStore()?.open) return work();
    return this.kysely.connection().execute((conn) => this.within(conn, work));
  }

  private async within<T>(trx: Executor, work: () => Promise<T>): Promise<T> {
    const s = { trx, open: true };
    try {
      return await this.scope.run(s, work);
    } finally {
      s.open = false; // work it started that outlives it (a callback queued inside) runs outside it
    }
  }

  /** SQL that differs between the engines: the SQLite text, or the PostgreSQL one. */
  pick(sqlite: string, postgres: string): RawBuilder<unknown> {
    return sql.raw(this.dialect === 'sqlite' ? sqlite : postgres);
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

export type Db = Database;

/**
 * How far this host's clock is ahead of the PostgreSQL server's (ms, negative when behind; the query's round trip
 * halved); null on SQLite, where every process shares this host's clock. Leases between replicas compare clocks.
 */
export async function clockOffsetMs(db: Db): Promise<number | null> {
  if (db.dialect !== 'postgres') return null;
  const before = Date.now();
  const row = await db.get<{ ms: number }>(sql`SELECT EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS ms`);
  const after = Date.now();
  return Math.round((before + after) / 2 - Number(row?.ms));
}

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
  const handle = new BetterSqlite3(path);
  try {
    handle.pragma(`busy_timeout = ${STARTUP_BUSY_TIMEOUT_MS}`);
    handle.pragma('journal_mode = WAL');
    // With WAL, NORMAL never corrupts the database; a power cut may lose the last transactions, an app crash none.
    handle.pragma('synchronous = NORMAL');
    handle.pragma('foreign_keys = ON');
    const migrated = migrateSqlite(handle, migrationsDir);
    handle.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    const db = Database.sqliteOn(handle);
    db.migrated = migrated;
    return db;
  } catch (err) {
    handle.close();
    throw err;
  }
}

/** Applies what a SQLite database lacks of the migrations in `dir` (it was opened with fewer): the files applied. */
export function migrate(db: Db, dir: string = MIGRATIONS_DIR): string[] {
  if (!db.sqlite)
    throw new Error('migrate() re-runs the SQLite migrations; PostgreSQL is migrated by openPostgres');
  return migrateSqlite(db.sqlite, dir);
}

/** int8 (COUNT, BIGINT columns) and numeric (SUM) as JavaScript numbers, as SQLite gives them; the rest as pg does. */
function numberTypes(types: typeof pg.types) {
  const numbers = new Set<number>([types.builtins.INT8, types.builtins.NUMERIC]);
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      numbers.has(oid) && format !== 'binary'
        ? (v: string) => Number(v)
        : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
  };
}

/**
 * Opens the PostgreSQL database at `url` through a bounded pool (statement timeout, connect timeout) and migrates it
 * once however many processes start together (an advisory lock around the run). A connection that breaks (the server
 * restarted) is dropped from the pool and the next query opens a new one; `onError` hears of errors on idle ones,
 * which would otherwise end the process.
 */
export async function openPostgres(
  url: string,
  settings: PostgresSettings = DEFAULT_POSTGRES,
  onError: (err: Error) => void = () => {},
  migrationsDir: string = MIGRATIONS_DIR,
): Promise<Db> {
  // Loaded only here: a SQLite installation (the default) never pays for the PostgreSQL driver at start.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.poolSize,
    statement_timeout: settings.statementTimeoutMs,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'mtasts-bot',
    types: numberTypes(pg.types),
  });
  pool.on('error', onError);
  let migrated: string[];
  try {
    migrated = await migratePostgres(pool, migrationsDir);
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  const db = Database.postgresOn(pool);
  db.migrated = migrated;
  return db;
}

/** Where the data lives: DATABASE_URL (PostgreSQL) when set, else the SQLite file at DATABASE_PATH. */
export interface DatabaseTarget {
  databasePath: string;
  databaseUrl: string | null;
  dbBusyTimeoutMs: number;
  postgres: PostgresSettings;
}

export async function openTarget(target: DatabaseTarget, onError?: (err: Error) => void): Promise<Db> {
  return target.databaseUrl
    ? openPostgres(target.databaseUrl, target.postgres, onError)
    : openDatabase(target.databasePath, undefined, target.dbBusyTimeoutMs);
}

/** The database as log lines and messages name it: DATABASE_PATH, or DATABASE_URL without its user and password. */
export function databaseLabel(target: Pick<DatabaseTarget, 'databasePath' | 'databaseUrl'>): string {
  if (!target.databaseUrl) return `DATABASE_PATH ${target.databasePath}`;
  try {
    const url = new URL(target.databaseUrl);
    return `DATABASE_URL ${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}
