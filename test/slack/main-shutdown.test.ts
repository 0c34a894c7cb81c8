import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CheckStore } from '../../src/store/checks.js';
import { openDatabase, sql } from '../../src/store/db.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { eventually, startApp } from '../support/app-process.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { servePolicy, TestHttpsServer } from '../support/https-server.js';
import { Lab } from '../support/lab.js';
import { TestSmtpServer } from '../support/smtp-server.js';

/**
 * SIGTERM while a monitoring pass waits on a slow MX host: npm start's own process (dist/main.js), configured only by
 * its environment, so its peers listen on the real ports 443 and 25 of loopback addresses of their own (root only, as
 * this project's machines and CI are). The check is aborted, the process exits 0, and the next start resumes the pass.
 */
const isRoot = process.getuid?.() === 0;
let lab: Lab;
let slack: FakeSlack;
let https: TestHttpsServer;
let smtp: TestSmtpServer;
/** While set, the MX host accepts connections and never greets: the pass's check waits on it. */
let holdGreeting = true;
let mxConnections = 0;
const caDir = mkdtempSync(join(tmpdir(), 'mtasts-shutdown-'));
const caFile = join(caDir, 'ca.pem');

beforeAll(async () => {
  if (!isRoot) return;
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  writeFileSync(caFile, lab.ca.rootPem);
  const policyAddress = lab.newAddress();
  const mxAddress = lab.newAddress();
  https = await TestHttpsServer.start(
    lab.cert(['mta-sts.slow.test']),
    servePolicy('version: STSv1\nmode: enforce\nmx: mx.slow.test\nmax_age: 1209600\n'),
    policyAddress,
    443,
  );
  smtp = await TestSmtpServer.start(
    {
      cert: lab.cert(['mx.slow.test']),
      onConnect: () => {
        mxConnections++;
        return holdGreeting ? new Promise<void>(() => {}) : Promise.resolve();
      },
    },
    mxAddress,
    25,
  );
  lab.set('slow.test', { MX: [{ preference: 10, exchange: 'mx.slow.test' }] });
  lab.set('mx.slow.test', { A: [mxAddress] });
  lab.set('mta-sts.slow.test', { A: [policyAddress] });
  lab.set('_mta-sts.slow.test', { TXT: ['v=STSv1; id=slow1'] });
  lab.set('_smtp._tls.slow.test', { TXT: ['v=TLSRPTv1; rua=mailto:tls@slow.test'] });
});
afterAll(async () => {
  if (!isRoot) return;
  await Promise.all([https.stop(), smtp.stop(), slack.stop(), lab.stop()]);
});

/** The monitor's passes as the database holds them. */
async function passes(path: string): Promise<{ id: number; finished_at: string | null }[]> {
  const db = openDatabase(path);
  try {
    return await db.all<{ id: number; finished_at: string | null }>(
      sql`SELECT id, finished_at FROM monitor_passes ORDER BY id`,
    );
  } finally {
    await db.close();
  }
}

test.runIf(isRoot)(
  'SIGTERM during a pass waiting on a slow MX: the check is aborted, the process exits 0, and the next start resumes the pass',
  async () => {
    const path = join(caDir, 'db', 'bot.sqlite');
    const seed = openDatabase(path);
    await new SubscriptionStore(seed).watch('TSLOW', 'CSLOW', 'slow.test', 'U1', 100, new Date());
    await seed.close();
    const env = {
      SLACK_BOT_TOKEN: 'xoxb-shutdown',
      SLACK_SIGNING_SECRET: 'shutdown-secret',
      SLACK_API_URL: slack.apiUrl,
      PORT: '0',
      DATABASE_PATH: path,
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
      NODE_EXTRA_CA_CERTS: caFile,
      // Far longer than the shutdown may take: only the abort can end the check in time.
      MTASTS_TIMEOUT_MS: '60000',
      MTASTS_SHUTDOWN_TIMEOUT_MS: '30000',
    };
    // Every second a pass is due; the first one hangs on the MX host's greeting.
    const first = startApp({ ...env, MTASTS_SCHEDULE: '* * * * * *' });
    await first.port();
    await eventually(async () => mxConnections > 0, 'the pass reached the MX host');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('mtasts-bot: SIGTERM, stopping');
    expect(first.output()).toContain('mtasts-bot: stopped (exit 0)');
    expect(first.output()).not.toMatch(/not stopped within|could not be checked/);
    const interrupted = await passes(path);
    expect(interrupted).toEqual([{ id: expect.any(Number), finished_at: null }]);
    const check = openDatabase(path);
    expect(await new CheckStore(check).last('slow.test')).toBeNull(); // an aborted check is not the domain's state
    await check.close();

    // The MX host greets again; the next start (hourly schedule: only the resume runs) finishes the same pass.
    holdGreeting = false;
    const second = startApp({ ...env, MTASTS_SCHEDULE: '0 * * * *' });
    await second.logged(/monitor: resuming the pass started at \d{4}-\d\d-\d\dT/);
    await eventually(async () => (await passes(path))[0]?.finished_at !== null, 'the resumed pass finished');
    expect(await passes(path)).toEqual([{ id: interrupted[0]?.id, finished_at: expect.any(String) }]);
    const done = openDatabase(path);
    expect((await new CheckStore(done).last('slow.test'))?.status).toBe('pass');
    await done.close();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  },
);

test.runIf(isRoot)(
  'SIGTERM while a check a user started waits on a slow MX: the check ends at once, the user is told to run it again, exit 0',
  async () => {
    holdGreeting = true;
    const before = mxConnections;
    const path = join(caDir, 'db2', 'bot.sqlite');
    const app = startApp({
      SLACK_BOT_TOKEN: 'xoxb-shutdown',
      SLACK_SIGNING_SECRET: 'shutdown-secret',
      SLACK_API_URL: slack.apiUrl,
      PORT: '0',
      DATABASE_PATH: path,
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
      NODE_EXTRA_CA_CERTS: caFile,
      MTASTS_TIMEOUT_MS: '60000',
      MTASTS_SHUTDOWN_TIMEOUT_MS: '30000',
      MTASTS_SCHEDULE: '0 0 1 1 *',
    });
    const port = await app.port();
    const ack = await sendSigned(
      `http://127.0.0.1:${port}/slack/events`,
      'shutdown-secret',
      slashCommand('check slow.test', { responseUrl: slack.responseUrl('stopped') }),
    );
    expect(ack.status).toBe(200);
    await eventually(async () => mxConnections > before, 'the check reached the MX host');
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect(app.output()).not.toMatch(/not stopped within|failed/);
    const answers = slack.responses.filter((r) => r.id === 'stopped').map((r) => String(r.body.text));
    expect(answers).toEqual([expect.stringContaining('The app is restarting, so this check was stopped')]);
    const db = openDatabase(path);
    expect(await new CheckStore(db).last('slow.test')).toBeNull(); // a stopped check is not kept as the domain's state
    await db.close();
  },
);
