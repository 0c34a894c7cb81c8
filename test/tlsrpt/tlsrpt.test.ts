import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import type { AppConfig } from '../../src/config.js';
import { decodeReport } from '../../src/core/tlsrpt-report.js';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { diff } from '../../src/monitor/diff.js';
import { snapshotOf } from '../../src/monitor/snapshot.js';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { slackPoster } from '../../src/slack/poster.js';
import { queueDigests } from '../../src/tlsrpt/digest.js';
import { cliEnv, testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { reportOf } from '../support/report.js';

const FIXTURES = new URL('../../../shared/fixtures/tlsrpt/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));
const fixtures = readdirSync(FIXTURES);
const SECRET = 'secret';

let slack: FakeSlack;
beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterAll(() => slack.stop());

function config(dir: string, env: Record<string, string> = {}): AppConfig {
  return testConfig({
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    DATABASE_PATH: join(dir, 'bot.sqlite'),
    MTASTS_DNS_SERVERS: '127.0.0.1:9',
    MTASTS_SMTP_PROBE: 'off',
    ...env,
  });
}

class Bot {
  readonly dir = mkdtempSync(join(tmpdir(), 'mtasts-tlsrpt-'));
  runtime!: Runtime;
  app!: SlackApp;
  url = '';
  clock = new Date('2026-11-29T12:00:00Z');
  constructor(private readonly env: Record<string, string> = {}) {}
  async start(): Promise<this> {
    this.runtime = await openRuntime(
      config(this.dir, this.env),
      null,
      { info() {}, warn() {}, error() {} },
      {
        poster: slackPoster('xoxb-test', slack.apiUrl),
        now: () => this.clock,
        monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
      },
    );
    this.app = buildSlackApp(this.runtime);
    this.url = `http://127.0.0.1:${await this.app.start()}`;
    return this;
  }
  async watch(domain: string, channel = 'CRPT'): Promise<void> {
    await this.runtime.subscriptions.watch('T1', channel, domain, 'U1', 100, this.clock);
  }
  post(body: Buffer, contentType: string): Promise<Response> {
    return fetch(`${this.url}/tlsrpt`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
  }
  async stop(): Promise<void> {
    await this.app.stop();
    await this.runtime.close();
  }
}

const jsonFixtures = fixtures.filter((f) => f.endsWith('.json') && !f.includes('DECODED'));
const emlFixtures = fixtures.filter((f) => f.endsWith('.eml'));
const decodedFixtures = fixtures.filter((f) => f.includes('DECODED'));

describe('every public sample, through the path it would arrive by', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await new Bot().start();
    for (const d of ['example.com', 'company-y.example', 'cardinalhealth.ca']) await bot.watch(d);
  });
  afterAll(() => bot.stop());

  test('the fixtures are all there', () => {
    expect(jsonFixtures).toHaveLength(3);
    expect(emlFixtures).toHaveLength(4);
    expect(decodedFixtures).toHaveLength(4);
  });

  test.each(jsonFixtures)('HTTPS POST application/tlsrpt+json: %s', async (name) => {
    const res = await bot.post(fixture(name), 'application/tlsrpt+json');
    expect(res.status, await res.clone().text()).toBe(201);
    const again = await bot.post(gzipSync(fixture(name)), 'application/tlsrpt+gzip');
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('already stored');
  });

  test.each(emlFixtures)('e-mail through mtasts ingest-email: %s', async (name) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['ingest-email'], {
      env: cliEnv({ DATABASE_PATH: bot.runtime.config.databasePath }),
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      stdin: async () => fixture(name),
    });
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/stored\n$/);
  });

  test.each(decodedFixtures)(
    'HTTPS POST application/tlsrpt+gzip of the e-mailed report is a duplicate: %s',
    async (name) => {
      const res = await bot.post(gzipSync(fixture(name)), 'application/tlsrpt+gzip');
      expect(res.status).toBe(200);
    },
  );

  test('the stored figures', async () => {
    const store = bot.runtime.tlsrpt;
    expect(await store.counts()).toEqual({ reports: 7, policies: 7, failures: 8 });
    const y = await store.summary('company-y.example', '2016-01-01');
    expect(y).toMatchObject({ reports: 1, successful: 5326, failed: 303 });
    expect(y.failures).toEqual([
      {
        resultType: 'starttls-not-supported',
        receivingMx: 'mx2.mail.company-y.example',
        receivingIp: null,
        count: 200,
        reasonCodes: [],
      },
      {
        resultType: 'certificate-expired',
        receivingMx: 'mx1.mail.company-y.example',
        receivingIp: null,
        count: 100,
        reasonCodes: [],
      },
      {
        resultType: 'validation-failure',
        receivingMx: 'mx-backup.mail.company-y.example',
        receivingIp: null,
        count: 3,
        reasonCodes: ['X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED'],
      },
    ]);
    const ex = await store.summary('example.com', '2000-01-01');
    // smtp_tls.json (0/3), mail.ru (0/1, details adding up to 2), the failure e-mail (4523/2), Google (1/0), Microsoft (2/0).
    expect(ex).toMatchObject({ reports: 5, successful: 4526, failed: 6 });
    expect(ex.organizations.map((o) => [o.organization, o.successful, o.failed])).toEqual([
      ['Example Inc.', 0, 3],
      ['Google Inc.', 4524, 2],
      ['Mail.ru', 0, 1],
      ['Microsoft Corporation', 2, 0],
    ]);
    expect(ex.failures.find((f) => f.resultType === 'sts-policy-fetch-error')).toMatchObject({
      count: 2,
      reasonCodes: ['bad https response code: 404', 'bad https response code: 500'],
    });
    expect(await store.summary('cardinalhealth.ca', '2024-01-01')).toMatchObject({
      reports: 1,
      successful: 48,
      failed: 0,
    });
  });
});

describe('what is refused or ignored is never stored twice or half', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await new Bot().start();
    await bot.watch('company-y.example');
  });
  afterAll(() => bot.stop());
  const counts = async () => await bot.runtime.tlsrpt.counts();

  test('a gzip bomb', async () => {
    const bomb = gzipSync(Buffer.alloc(40 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const res = await bot.post(bomb, 'application/tlsrpt+gzip');
    expect(res.status).toBe(413);
    expect((await counts()).reports).toBe(0);
  });

  test('truncated gzip', async () => {
    const whole = gzipSync(fixture('parsedmarc__samples_smtp_tls__rfc8460.json'));
    const res = await bot.post(whole.subarray(0, whole.length - 20), 'application/tlsrpt+gzip');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('gzip');
    expect((await counts()).reports).toBe(0);
  });

  test.each([
    ['not JSON', '{"organization-name": '],
    ['JSON that is not a report', '{"hello": "world"}'],
    [
      'a report without policies',
      JSON.stringify({
        'organization-name': 'X',
        'date-range': { 'start-datetime': '2026-01-01T00:00:00Z', 'end-datetime': '2026-01-02T00:00:00Z' },
        'report-id': '1',
        policies: [],
      }),
    ],
    [
      'a negative session count',
      fixture('parsedmarc__samples_smtp_tls__rfc8460.json').toString().replace('5326', '-5'),
    ],
    [
      'a date that is not one',
      fixture('parsedmarc__samples_smtp_tls__rfc8460.json')
        .toString()
        .replace('2016-04-01T00:00:00Z', 'yesterday'),
    ],
  ])('%s is refused with 400', async (_name, body) => {
    const res = await bot.post(Buffer.from(body), 'application/tlsrpt+json');
    expect(res.status).toBe(400);
    expect(await counts()).toEqual({ reports: 0, policies: 0, failures: 0 });
  });

  test('an oversized body', async () => {
    const res = await bot.post(Buffer.alloc(2 * 1024 * 1024, 0x7b), 'application/tlsrpt+json');
    expect(res.status).toBe(413);
    expect((await counts()).reports).toBe(0);
  });

  test('an unsupported media type', async () => {
    const res = await bot.post(fixture('parsedmarc__samples_smtp_tls__rfc8460.json'), 'text/html');
    expect(res.status).toBe(415);
  });

  test('a duplicate report-id is stored once', async () => {
    const body = fixture('parsedmarc__samples_smtp_tls__rfc8460.json');
    const results = await Promise.all([1, 2, 3].map(() => bot.post(body, 'application/tlsrpt+json')));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(await counts()).toEqual({ reports: 1, policies: 1, failures: 3 });
  });

  test('a report for a domain nobody watches is kept only if configured', async () => {
    const body = fixture('parsedmarc__samples_smtp_tls__google.com_smtp_tls_report.DECODED-attachment.json');
    const res = await bot.post(body, 'application/tlsrpt+json');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('ignored');
    expect((await counts()).reports).toBe(1);
    const keeper = await new Bot({ MTASTS_TLSRPT_KEEP_UNWATCHED: '1' }).start();
    try {
      expect((await keeper.post(body, 'application/tlsrpt+json')).status).toBe(201);
      expect((await keeper.runtime.tlsrpt.counts()).reports).toBe(1);
    } finally {
      await keeper.stop();
    }
  });

  test('a refusal for now (the disk guard) exits 75, so that the mail server keeps the message and retries', async () => {
    const err: string[] = [];
    const fresh = join(mkdtempSync(join(tmpdir(), 'mtasts-tempfail-')), 'db.sqlite'); // not a duplicate there
    const code = await main(['ingest-email'], {
      // SQLite's own (the disk guard watches the file system of DATABASE_PATH; PostgreSQL's disk is the server's).
      env: {
        DATABASE_PATH: fresh,
        MTASTS_TLSRPT_KEEP_UNWATCHED: '1',
        MTASTS_TLSRPT_MIN_FREE_MB: '1000000000',
      },
      stdout: () => {},
      stderr: (t) => err.push(t),
      stdin: async () => fixture(emlFixtures[0] ?? ''),
    });
    expect(code).toBe(75);
    expect(err.join('')).toMatch(/^mtasts: the server is short of disk space/);
  });

  test('an e-mail without a report', async () => {
    const err: string[] = [];
    const code = await main(['ingest-email'], {
      env: cliEnv({ DATABASE_PATH: bot.runtime.config.databasePath }),
      stdout: () => {},
      stderr: (t) => err.push(t),
      stdin: async () => Buffer.from('From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nhello\r\n'),
    });
    expect(code).toBe(2);
    expect(err.join('')).toContain('no TLS-RPT report is attached');
  });
});

describe('TLS-RPT in Slack', () => {
  test('a failure rate over the threshold in a recent report alerts the watching channels at once', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch('company-y.example', 'CRATE');
      // The RFC's example as yesterday's report (the alert is about recent days; older reports reach the digest).
      const yesterday = fixture('parsedmarc__samples_smtp_tls__rfc8460.json')
        .toString()
        .replaceAll('2016-04-01T', '2026-11-28T');
      const res = await bot.post(gzipSync(yesterday), 'application/tlsrpt+gzip');
      expect(res.status).toBe(201);
      await slack.waitFor(() => slack.callsTo('chat.postMessage').some((c) => c.body.channel === 'CRATE'));
      const alert = slack.callsTo('chat.postMessage').find((c) => c.body.channel === 'CRATE');
      const text = JSON.stringify(alert?.body);
      expect(text).toContain('5.4% of TLS sessions failing');
      expect(text).toContain('in reports about 2026-11-28 (UTC)');
      expect(text).toContain('certificate-expired');
      expect(text).toContain('renew it');
    } finally {
      await bot.stop();
    }
  });

  test('the daily digest and /mtasts reports', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch('example.com', 'CDIGEST');
      for (const name of [
        'parsedmarc__samples_smtp_tls__smtp_tls.json',
        'isseis_tlsrpt-digest__testdata__tlsrpt_failure.DECODED-attachment.json',
      ]) {
        expect((await bot.post(fixture(name), 'application/tlsrpt+json')).status).toBe(201);
      }
      bot.clock = new Date(bot.clock.getTime() + 3600_000);
      expect(await queueDigests(bot.runtime.tlsrpt, bot.runtime.subscriptions, bot.clock)).toBe(1);
      expect(await queueDigests(bot.runtime.tlsrpt, bot.runtime.subscriptions, bot.clock)).toBe(0);
      await bot.runtime.monitor.deliver();
      const digest = slack
        .callsTo('chat.postMessage')
        .filter((c) => c.body.channel === 'CDIGEST')
        .at(-1);
      const text = JSON.stringify(digest?.body);
      expect(text).toContain('TLS reports received');
      expect(text).toContain('• `Google Inc.`: 4523 ok, 2 failed');
      expect(text).toContain(
        '`certificate-expired` at `mail.example.com`: 2 session(s): the MX certificate had expired: renew it',
      );
      const reply = await sendSigned(
        `${bot.url}/slack/events`,
        SECRET,
        slashCommand('reports example.com 365', {
          channel: 'CDIGEST',
          responseUrl: slack.responseUrl('rep'),
        }),
      );
      // The 2024 report is older than a year before the clock; the 2026 one is in.
      expect(JSON.stringify(reply.json())).toContain('4523 successful and 2 failed');
      const other = await sendSigned(
        `${bot.url}/slack/events`,
        SECRET,
        slashCommand('reports example.com', {
          channel: 'CELSEWHERE',
          responseUrl: slack.responseUrl('rep2'),
        }),
      );
      expect(other.json().text).toContain('Watch example.com in this channel first');
    } finally {
      await bot.stop();
    }
  });
});

test('reports older than the retention window are forgotten, whole', async () => {
  const bot = await new Bot().start();
  try {
    await bot.watch('company-y.example');
    await bot.watch('example.com');
    expect(
      (await bot.post(fixture('parsedmarc__samples_smtp_tls__rfc8460.json'), 'application/tlsrpt+json'))
        .status,
    ).toBe(201);
    expect(
      (await bot.post(fixture('parsedmarc__samples_smtp_tls__smtp_tls.json'), 'application/tlsrpt+json'))
        .status,
    ).toBe(201);
    // The clock is 2026-11-29: with 400 days kept, the 2016 and 2024 reports go, with their details.
    await queueDigests(bot.runtime.tlsrpt, bot.runtime.subscriptions, bot.clock, 400);
    expect(await bot.runtime.tlsrpt.counts()).toEqual({ reports: 0, policies: 0, failures: 0 });
  } finally {
    await bot.stop();
  }
});

test('ready to enforce waits for 14 days without reported failures', () => {
  const report = decodeReport(fixture('parsedmarc__samples_smtp_tls__smtp_tls.json'), 'json');
  expect(report.ok).toBe(true);
  const checkReport = reportOf({
    stsId: '1',
    status: 'warn',
    policyText: 'x',
    policy: { version: 'STSv1', mode: 'testing', maxAge: 86400, mx: [], extensions: [] },
  });
  const snap = snapshotOf(checkReport);
  const start = new Date('2026-11-01T00:00:00Z');
  let state = diff(
    { snapshot: null, conditions: [], cleanSince: null, readyAnnounced: null },
    snap,
    checkReport,
    start,
  ).state;
  const at = new Date(start.getTime() + 15 * 86_400_000);
  // A failure reported 5 days in: the 14 days count from then.
  const withFailure = diff(state, snap, checkReport, at, undefined, {
    lastReportedFailureAt: '2026-11-06T00:00:00.000Z',
  });
  expect(withFailure.events.filter((e) => e.kind === 'ready')).toHaveLength(0);
  state = withFailure.state;
  const later = diff(state, snap, checkReport, new Date(start.getTime() + 20 * 86_400_000), undefined, {
    lastReportedFailureAt: '2026-11-06T00:00:00.000Z',
  });
  expect(later.events.map((e) => e.kind)).toEqual(['ready']);
  expect(later.events[0]?.info.message).toContain('no reported TLS failures since 2026-11-06');
});
