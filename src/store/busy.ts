import Database from 'better-sqlite3';

/** The database stayed locked by another process through every try: the caller answers "busy, try again". */
export class DatabaseBusyError extends Error {
  constructor(cause: unknown) {
    super('the database is busy (another process holds its lock); try again in a moment', { cause });
  }
}

/**
 * PostgreSQL's answers that mean "not now": a serialization failure or deadlock (40001, 40P01), a lock not available
 * (55P03), a statement cancelled by statement_timeout (57014), the server shutting down or starting (57P01, 57P03).
 */
const PG_BUSY = new Set(['40001', '40P01', '55P03', '57014', '57P01', '57P03']);

/** SQLITE_BUSY and SQLITE_LOCKED, with their extended codes (SQLITE_BUSY_SNAPSHOT, …), and PostgreSQL's equivalents. */
export function isBusy(err: unknown): boolean {
  if (err instanceof Database.SqliteError) return /^SQLITE_(BUSY|LOCKED)/.test(err.code);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && PG_BUSY.has(code);
}

export interface RetrySettings {
  /** Tries in all, each waiting at most the connection's busy timeout. */
  tries: number;
  /** Pause before the second try; doubled before each next one. The event loop runs meanwhile. */
  pauseMs: number;
}

export const DEFAULT_RETRY: RetrySettings = { tries: 4, pauseMs: 25 };

/**
 * Runs a store call, and again after a pause that yields to the event loop while another process holds the database's
 * lock: each try blocks for at most the busy timeout (see openDatabase), the whole for a bounded time. Throws
 * DatabaseBusyError when the lock outlasts every try; any other error as it is.
 */
export async function whenFree<T>(
  call: () => T,
  settings: RetrySettings = DEFAULT_RETRY,
): Promise<Awaited<T>> {
  let pause = settings.pauseMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isBusy(err)) throw err;
      if (attempt >= settings.tries) throw new DatabaseBusyError(err);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause *= 2;
  }
}
