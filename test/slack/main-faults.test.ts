import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { type AppProcess, eventually, startApp } from '../support/app-process.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { FakeSocketMode } from '../support/fake-socket-mode.js';

/**
 * The process faults of npm start's own process (dist/main.js): a revoked app token, the database file removed or
 * locked, a listener throwing. Each must leave the process serving what it can, or stop it cleanly.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BOT_TOKEN = 'xoxb-1-faultsbottoken';
const SECRET = 'faults-signing-secret';
let slack: FakeSlack;
const running: AppProcess[] = [];

beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterEach(async () => {
  slack.handlers.clear();
  for (const app of running.splice(0)) {
    if (app.child.exitCode === null) app.child.kill('SIGKILL');
  }
});
afterAll(() => slack.stop());

function dbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'mtasts-faults-')), 'bot.sqlite');
}

/** The app in HTTP mode on a database of its own, checking its health every second. */
function httpApp(path: string, env: Record<string, string> = {}): AppProcess {
  const app = startApp({
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    DATABASE_PATH: path,
    MTASTS_HEALTH_INTERVAL_MS: '1000',
    ...env,
  });
  running.push(app);
  return app;
}

const readyz = async (app: AppProcess) => {
  const res = await app.get('/readyz');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { ready: boolean } };
};

/** Another process (as `mtasts sweep` or a backup tool would be) holding the database's write lock until told. */
const LOCKER = `
const Database = require('better-sqlite3');
const db = new Database(process.argv[1]);
db.exec('BEGIN EXCLUSIVE');
db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99999, 'held', 'now')").run();
process.stdout.write('locked\\n');
process.stdin.resume();
process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); process.exit(0); });
`;

async function holdLock(path: string): Promise<{ release: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['-e', LOCKER, path], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the locker exited (${code}) before it held the lock`)));
  });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    release: async () => {
      child.stdin?.end();
      await gone;
    },
  };
}

const command = async (app: AppProcess, text: string, id: string) =>
  sendSigned(
    `http://127.0.0.1:${await app.port()}/slack/events`,
    SECRET,
    slashCommand(text, { team: 'TFAULT', channel: 'CFAULT', responseUrl: slack.responseUrl(id) }),
  );

test('Socket Mode: a revoked app token at a reconnect leaves the process serving and retrying; JSON logs with no secret; SIGTERM exits 0', async () => {
  const socket = await FakeSocketMode.start();
  try {
    slack.handlers.set('apps.connections.open', () => ({ json: { ok: true, url: socket.url } }));
    const app = startApp({
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_APP_TOKEN: 'xapp-1-A1-faultsapptoken',
      SLACK_API_URL: slack.apiUrl,
      PORT: '0',
      DATABASE_PATH: dbPath(),
      LOG_FORMAT: 'json',
      MTASTS_SLACK_RECONNECT_MIN_MS: '200',
      MTASTS_SLACK_RECONNECT_MAX_MS: '1000',
    });
    running.push(app);
    await socket.waitForConnections(1);
    await eventually(async () => (await readyz(app)).status === 200, 'ready once connected');

    slack.handlers.set('apps.connections.open', () => ({ json: { ok: false, error: 'invalid_auth' } }));
    socket.drop();
    await app.logged('Slack socket down (the connection dropped), retrying in 0.2 s');
    await app.logged(
      'Slack socket down (Slack refused the app-level token (invalid_auth): rotate SLACK_APP_TOKEN), retrying in 0.8 s',
    );
    expect((await app.get('/healthz')).status).toBe(200);
    const ready = await readyz(app);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      ready: false,
      mode: 'socket',
      database: { ok: true },
      slack: { ok: false, state: 'down', error: expect.stringContaining('invalid_auth') },
    });
    const metrics = await (await app.get('/metrics')).text();
    expect(metrics).toContain('mtasts_slack_up 0');
    expect(metrics).toMatch(
      /mtasts_slack_api_errors_total\{method="apps\.connections\.open",error="invalid_auth"\} [2-9]/,
    );

    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    const lines = app.output().trim().split('\n');
    for (const line of lines) {
      expect(JSON.parse(line), line).toMatchObject({
        time: expect.any(String),
        level: expect.stringMatching(/^(info|warn|error)$/),
        msg: expect.any(String),
      });
    }
    expect(app.output()).not.toMatch(/faultsapptoken|faultsbottoken|unhandled rejection|uncaught exception/);
    expect(app.output()).toContain('"msg":"mtasts-bot: stopped (exit 0)"');
  } finally {
    await socket.stop();
  }
});

test('the database file removed under the running app: what it held is written back, and it stops cleanly with exit 1', async () => {
  const path = dbPath();
  const seed = openDatabase(path);
  await new SubscriptionStore(seed).watch('TSEED', 'CSEED', 'seeded.test', 'U1', 100, new Date());
  await seed.close();
  const app = httpApp(path);
  await eventually(async () => (await readyz(app)).status === 200, 'ready');
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  expect(await app.exited).toBe(1);
  expect(app.output()).toContain(
    'database: the file was removed while the app had it open; what the app writes now would be lost',
  );
  expect(app.output()).toContain(`database: what the app held was written to ${path}`);
  expect(app.output()).toContain('mtasts-bot: the database file was removed, stopping');
  expect(app.output()).toContain('mtasts-bot: stopped (exit 1)');
  expect(existsSync(path)).toBe(true);
  const rescued = openDatabase(path);
  expect(await new SubscriptionStore(rescued).get('TSEED', 'CSEED', 'seeded.test')).toBeDefined();
  await rescued.close();
});

test('the database locked by another process: /healthz answers, /readyz says busy, a write is refused as busy; ready again once released', async () => {
  const path = dbPath();
  const app = httpApp(path);
  await eventually(async () => (await readyz(app)).status === 200, 'ready');
  const lock = await holdLock(path);
  try {
    const ready = await readyz(app);
    expect(ready.status).toBe(503);
    expect(ready.body.database).toEqual({ ok: false, error: 'busy: another process holds its lock' });
    expect(ready.body.slack).toMatchObject({ ok: true, state: 'reachable' });
    expect((await app.get('/healthz')).status).toBe(200);
    expect(await (await app.get('/metrics')).text()).toContain('mtasts_database_up 0');
    const watch = await command(app, 'watch locked.test', 'lock-watch');
    expect(watch.json().text).toContain('The database is busy');
    // The periodic health check (every second here) logs the change while the lock is still held.
    await app.logged('health: database: busy: another process holds its lock');
  } finally {
    await lock.release();
  }
  await eventually(async () => (await readyz(app)).status === 200, 'ready after the lock was released');
  await app.logged('health: database: answering again');
  app.child.kill('SIGTERM');
  expect(await app.exited).toBe(0);
});

test('a listener that throws (app_uninstalled while the database stays locked) is logged with what it handled; the process serves on', async () => {
  const path = dbPath();
  const app = httpApp(path);
  await app.port();
  const lock = await holdLock(path);
  try {
    const event = {
      token: 'legacy',
      team_id: 'TGONE',
      api_app_id: 'A1',
      type: 'event_callback',
      event_id: 'EvGone',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'app_uninstalled', event_ts: '1.1' },
    };
    const res = await sendSigned(
      `http://127.0.0.1:${await app.port()}/slack/events`,
      SECRET,
      {},
      { rawBody: JSON.stringify(event), contentType: 'application/json' },
    );
    expect(res.status).toBe(200);
    await app.logged(
      /error slack: a Slack listener failed \(type event_callback, event app_uninstalled, team TGONE\): Error: the database is busy[^\n]*\n\s+at whenFree/,
    );
    expect((await app.get('/healthz')).status).toBe(200);
  } finally {
    await lock.release();
  }
  expect((await command(app, 'list', 'after-throw')).json().text).toContain('watches no domains');
  app.child.kill('SIGTERM');
  expect(await app.exited).toBe(0);
  expect(app.output()).not.toMatch(/unhandled rejection|uncaught exception/);
});
