import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { describeFault, isFatal } from '../src/faults.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./support/fault-child.ts', import.meta.url));

/** Starts the child with the fault handlers; resolves once it listens. */
async function start(maxPerMinute: number): Promise<{
  child: ChildProcess;
  get: (path: string) => Promise<string>;
  log: () => string;
  exited: Promise<number | null>;
}> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(maxPerMinute)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`the child exited (${code}) before listening: ${log}`)));
  });
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).text();
  return { child, get, log: () => log, exited };
}

/** Waits until the child's log holds `text` (the faults are raised after the answer went out). */
async function logged(log: () => string, text: string): Promise<void> {
  for (let i = 0; !log().includes(text); i++) {
    if (i > 500) throw new Error(`not logged: ${text}\n${log()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('an unhandled rejection and an uncaught exception are logged with context, and the process keeps serving', async () => {
  const app = await start(20);
  try {
    expect(await app.get('/reject')).toBe('ok');
    await logged(
      app.log,
      "LOG unhandled rejection: TypeError: Cannot read properties of null (reading 'type')",
    );
    expect(await app.get('/throw')).toBe('ok');
    await logged(app.log, 'LOG uncaught exception: Error: thrown in a callback');
    expect(await app.get('/string')).toBe('ok');
    await logged(app.log, 'LOG uncaught exception: a non-error value was thrown: a bare string');
    expect(await app.get('/healthz')).toBe('ok');
    expect(app.log()).not.toContain('STOP');
  } finally {
    app.child.kill('SIGTERM');
    await app.exited;
  }
});

test('a fault the process cannot recover from stops it cleanly, with exit code 1', async () => {
  const app = await start(20);
  expect(await app.get('/fatal')).toBe('ok');
  expect(await app.exited).toBe(1);
  expect(app.log()).toContain(
    'LOG uncaught exception: Error (SQLITE_CORRUPT): database disk image is malformed',
  );
  expect(app.log()).toContain('LOG stopping: it cannot be recovered from');
  expect(app.log()).toContain('STOP 1');
});

test('faults in a loop (more than the limit in a minute) stop the process', async () => {
  const app = await start(3);
  for (let i = 0; i < 4; i++) expect(await app.get('/throw')).toBe('ok');
  expect(await app.exited).toBe(1);
  expect(app.log()).toContain('LOG stopping: 4 faults in a minute');
});

test('which faults are fatal, and how one is described', () => {
  const coded = (code: string) => Object.assign(new Error('x'), { code });
  expect(isFatal(coded('SQLITE_CORRUPT'))).toBe(true);
  expect(isFatal(coded('SQLITE_IOERR_WRITE'))).toBe(true);
  expect(isFatal(coded('ENOSPC'))).toBe(true);
  expect(isFatal(new TypeError('The database connection is not open'))).toBe(true);
  expect(isFatal(coded('SQLITE_BUSY'))).toBe(false);
  expect(isFatal(coded('ECONNRESET'))).toBe(false);
  expect(isFatal(new TypeError("Cannot read properties of null (reading 'type')"))).toBe(false);
  expect(isFatal('SQLITE_CORRUPT')).toBe(false);
  expect(describeFault(coded('EPIPE'))).toMatch(/^Error \(EPIPE\): x\n/);
  expect(describeFault({ token: 'xoxb-secret' })).toBe('a non-error value was thrown: object');
});
