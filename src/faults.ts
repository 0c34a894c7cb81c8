/** What the process does with a fault that no code caught: log it, keep serving, or stop cleanly. */

export interface FaultLog {
  error(message: string): void;
}

export interface FaultSettings {
  /** More uncaught faults than this within a minute: the process is stuck in a fault loop and stops. */
  maxPerMinute: number;
}

/** Error codes after which serving on cannot help: the database or the machine is gone. */
const FATAL_CODES =
  /^(SQLITE_(CORRUPT|NOTADB|CANTOPEN|FULL|IOERR|READONLY)\w*|ENOMEM|ENOSPC|ERR_WORKER_OUT_OF_MEMORY|ERR_MEMORY_ALLOCATION_FAILED)$/;

/** Whether a fault leaves the process unable to serve: a broken or closed database, no memory, no disk. */
export function isFatal(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && FATAL_CODES.test(code)) return true;
  return /database connection is not open/i.test(err.message);
}

/** One line (then the stack) naming what failed: never the whole object, which may hold a token. */
export function describeFault(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` (${code})` : ''}: ${err.message}\n${err.stack ?? ''}`.trimEnd();
  }
  return `a non-error value was thrown: ${typeof err === 'string' ? err.slice(0, 500) : typeof err}`;
}

/**
 * Installs the process's last line of defence. An unhandled rejection or an uncaught exception is logged with its
 * origin and stack, and the process keeps serving: one failed request must not take every other one down. It stops
 * (through `stop`, which closes the listener and the database, with exit code 1) when the fault cannot be recovered
 * from (isFatal), or when faults come faster than `maxPerMinute`. Returns a function that removes the handlers.
 */
export function installFaultHandlers(
  log: FaultLog,
  stop: (code: number) => void,
  settings: FaultSettings = { maxPerMinute: 20 },
  now: () => number = Date.now,
): () => void {
  const recent: number[] = [];
  let stopping = false;
  const fault = (origin: string, err: unknown) => {
    const at = now();
    recent.push(at);
    while (recent.length > 0 && (recent[0] ?? at) <= at - 60_000) recent.shift();
    log.error(`${origin}: ${describeFault(err)}`);
    const why = isFatal(err)
      ? 'it cannot be recovered from'
      : recent.length > settings.maxPerMinute
        ? `${recent.length} faults in a minute`
        : null;
    if (why === null || stopping) return;
    stopping = true;
    log.error(`stopping: ${why}`);
    stop(1);
  };
  const onRejection = (reason: unknown) => fault('unhandled rejection', reason);
  const onException = (err: Error, origin: string) =>
    fault(origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception', err);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.removeListener('unhandledRejection', onRejection);
    process.removeListener('uncaughtException', onException);
  };
}
