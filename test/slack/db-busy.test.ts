import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';

const SECRET = 'busy-signing-secret';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-busy-')), 'busy.sqlite');
let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let base = '';

/**
 * Another process (as `mtasts sweep` or a backup tool would be) that takes the database's write lock and holds it
 * until its stdin closes.
 */
const LOCKER = `
const Database = require('better-sqlite3');
const db = new Database(process.argv[1]);
db.exec('BEGIN EXCLUSIVE');
db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99999, 'held', 'now')").run();
process.stdout.write('locked\\n');
process.stdin.resume();
process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); process.exit(0); });
`;

function holdLock(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', LOCKER, dbPath], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('locked')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the locker exited (${code}) before it held the lock`)));
  });
}

/** Slack's deadline for an answer: a request not answered within it counts as failed. */
function withinSlackDeadline<T>(work: Promise<T>): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not answered within 3 s')), 3000)),
  ]);
}

let n = 0;
const command = (text: string) => {
  const id = `b${++n}`;
  return {
    id,
    sent: sendSigned(
      `${base}/slack/events`,
      SECRET,
      slashCommand(text, { team: 'TBUSY', channel: 'CBUSY', responseUrl: slack.responseUrl(id) }),
    ),
  };
};

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  await lab.domain('good.test');
  runtime = await openRuntime(
    testConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: dbPath,
      MTASTS_DNS_SERVERS: lab.dns.address,
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
    { engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } } },
  );
  app = buildSlackApp(runtime);
  base = `http://127.0.0.1:${await app.start()}`;
});
afterAll(async () => {
  await app.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

test('with the database locked by another process, /healthz and acks answer in time and a write says "busy"', async () => {
  const locker = await holdLock();
  try {
    expect((await withinSlackDeadline(fetch(`${base}/healthz`))).status).toBe(200);
    // The write retries while the lock is held, yielding in between: /healthz is answered during those retries.
    const watch = command('watch good.test');
    let acked = false;
    void watch.sent.then(() => {
      acked = true;
    });
    const healthyBeforeAck: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      healthyBeforeAck.push(!acked);
    }
    expect(healthyBeforeAck).toContain(true);
    const answer = (await withinSlackDeadline(watch.sent)).json();
    expect(answer).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringContaining('database is busy'),
    });
    // Reads are not blocked by another process's write lock (WAL): list still answers.
    const list = (await withinSlackDeadline(command('list').sent)).json();
    expect(String(list.text)).toContain('watches no domains');
    // A check still reports; only keeping it as the last check waits for the lock.
    const check = command('check good.test');
    expect(String((await withinSlackDeadline(check.sent)).json().text)).toContain('Checking good.test');
    await slack.waitFor(() => slack.responses.some((r) => r.id === check.id));
    expect(JSON.stringify(slack.responses.find((r) => r.id === check.id)?.body)).toContain('good.test');
  } finally {
    locker.stdin?.end();
    await new Promise((resolve) => locker.once('exit', resolve));
  }
  // Once the lock is released, the same command works.
  expect((await command('watch good.test').sent).json().response_type).toBe('in_channel');
  expect(await runtime.subscriptions.get('TBUSY', 'CBUSY', 'good.test')).toBeDefined();
});
