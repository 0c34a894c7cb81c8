import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test } from 'vitest';
import { openDatabase } from '../../src/store/db.js';
import type { EventPayload } from '../../src/store/monitor-state.js';
import { enqueue } from '../../src/store/outbox.js';
import {
  LOG_DESTINATION,
  SubscriptionStore,
  WATCH_LIST_TEAM,
  webhookDestination,
} from '../../src/store/subscriptions.js';
import { WebhookReceiver } from '../support/webhook-receivers.js';

/**
 * `npm start` with no Slack setting: the app's own process (src/main.ts run by tsx, as `npm run dev` does), its
 * database holding the watch list and an alert a pass queued. It starts, says how to connect Slack, serves health,
 * and writes the alert to the log.
 */

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function start(env: Record<string, string>) {
  let output = '';
  const child = spawn(process.execPath, ['--import', TSX, MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
  const logged = async (re: RegExp) => {
    for (let i = 0; i < 1500 && !re.test(output); i++) {
      if (child.exitCode !== null) throw new Error(`exited first:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!re.test(output)) throw new Error(`not logged: ${re}\n${output}`);
  };
  return { child, output: () => output, exited, logged };
}

/** A database whose watch list sends example.com's alerts to the log, with one alert waiting in the outbox. */
async function databaseWithAlert(destination = LOG_DESTINATION): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'mtasts-local-')), 'db.sqlite');
  const db = openDatabase(path);
  const now = new Date();
  await new SubscriptionStore(db).watch(WATCH_LIST_TEAM, destination, 'example.com', 'cli', 100, now);
  const payload: EventPayload = {
    domain: 'example.com',
    domainUnicode: 'example.com',
    mode: 'testing',
    event: {
      key: 'open:POLICY_FETCH_FAILED',
      kind: 'opened',
      threadKey: null,
      info: {
        kind: 'finding',
        code: 'POLICY_FETCH_FAILED',
        title: 'Policy cannot be fetched',
        subject: 'example.com',
        severity: 'error',
        message: 'https://mta-sts.example.com/.well-known/mta-sts.txt: connection refused',
        fix: 'Serve the policy file over HTTPS.',
      },
    },
  };
  const alert = {
    eventKey: 'e1',
    teamId: WATCH_LIST_TEAM,
    channelId: destination,
    threadEventKey: null,
    broadcast: false,
    payload,
  };
  await enqueue(db, 'example.com', [alert], now);
  await db.close();
  return path;
}

test('no Slack settings: npm start starts, says how to connect Slack, serves health, and logs the alert as a block', async () => {
  const app = start({
    DATABASE_PATH: await databaseWithAlert(),
    PORT: '0',
    MTASTS_DNS_SERVERS: '127.0.0.1:9',
  });
  await app.logged(/HTTP on port (\d+)/);
  const port = Number(/HTTP on port (\d+)/.exec(app.output())?.[1]);
  await app.logged(/alert: Error: example\.com: Policy cannot be fetched/);
  const out = app.output();
  expect(out).not.toContain('SLACK_BOT_TOKEN is not set');
  expect(out.split('\n').filter((l) => l.includes('to connect Slack'))).toHaveLength(1);
  expect(out).toMatch(/\n {2}Fix: Serve the policy file over HTTPS\.\n/);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(await health.json()).toEqual({ ok: true, mode: 'local' });
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  expect(ready.status).toBe(200);
  const report = await fetch(`http://127.0.0.1:${port}/tlsrpt`, { method: 'POST', body: '{}' });
  expect(report.status).toBeGreaterThanOrEqual(400); // the intake answers (a bad report), it is not a 404
  expect(report.status).not.toBe(404);
  expect((await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST' })).status).toBe(404);
  await app.logged(/monitoring on schedule/); // its SIGTERM handler is installed by then
  app.child.kill('SIGTERM');
  expect(await app.exited, app.output()).toBe(0);
}, 60_000);

test('LOG_FORMAT=json: the alert is one JSON line, its block in msg', async () => {
  const app = start({
    DATABASE_PATH: await databaseWithAlert(),
    PORT: '0',
    LOG_FORMAT: 'json',
    MTASTS_DNS_SERVERS: '127.0.0.1:9',
  });
  await app.logged(/alert: Error: example\.com/);
  const line = app
    .output()
    .split('\n')
    .find((l) => l.includes('alert: Error'));
  const entry = JSON.parse(line ?? '') as { level: string; msg: string };
  expect(entry.level).toBe('info');
  expect(entry.msg.split('\n')[0]).toBe('alert: Error: example.com: Policy cannot be fetched');
  expect(entry.msg).toContain('\n  Fix: Serve the policy file over HTTPS.');
  await app.logged(/monitoring on schedule/); // its SIGTERM handler is installed by then
  app.child.kill('SIGTERM');
  expect(await app.exited, app.output()).toBe(0);
}, 60_000);

test('a webhook: the alert posted to it, its URL in no log line, also when it is refused', async () => {
  const ok = await WebhookReceiver.start('json');
  const gone = await WebhookReceiver.start('slack');
  gone.answer({ status: 404, body: 'no_service' });
  try {
    for (const [name, receiver] of [
      ['ok', ok],
      ['gone', gone],
    ] as const) {
      const app = start({
        DATABASE_PATH: await databaseWithAlert(webhookDestination(name)),
        PORT: '0',
        MTASTS_DNS_SERVERS: '127.0.0.1:9',
        MTASTS_WEBHOOKS: `ok=json:${ok.url},gone=slack:${gone.url}`,
      });
      await app.logged(/monitoring on schedule/);
      for (let i = 0; i < 500 && receiver.received.length === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      if (name === 'gone') await app.logged(/webhook gone: HTTP 404 no_service/);
      app.child.kill('SIGTERM');
      expect(await app.exited, app.output()).toBe(0);
      expect(receiver.received, app.output()).toHaveLength(1);
      for (const url of [ok.url, gone.url]) {
        expect(app.output()).not.toContain(url);
        expect(app.output()).not.toContain(new URL(url).pathname);
      }
    }
    expect(ok.accepted()).toEqual([expect.objectContaining({ kind: 'opened', domain: 'example.com' })]);
  } finally {
    await ok.stop();
    await gone.stop();
  }
}, 90_000);
