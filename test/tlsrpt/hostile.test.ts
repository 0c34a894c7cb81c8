import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AppConfig } from '../../src/config.js';
import { decodeReport, type TlsRptReport } from '../../src/core/tlsrpt-report.js';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { LIMITS } from '../../src/slack/blocks/common.js';
import { digestMessage, failureRateMessage, summaryText } from '../../src/slack/blocks/tlsrpt.js';
import { slackPoster } from '../../src/slack/poster.js';
import { MIGRATIONS_DIR, migrate, openDatabase } from '../../src/store/db.js';
import { type DomainReportSummary, TlsRptStore } from '../../src/store/tlsrpt.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { tlsrptReport } from '../support/report.js';

/**
 * POST /tlsrpt is open to anyone (RFC 8460 §5.3): what a hostile sender can send must neither hold the app nor poison
 * what it stores and posts. Through the real HTTP path, with the app's own settings.
 */

const FIXTURES = new URL('../../../shared/fixtures/tlsrpt/', import.meta.url);
const SECRET = 'secret';
const NOW = new Date('2026-11-29T12:00:00Z');
const day = (offset: number) => new Date(NOW.getTime() + offset * 86_400_000).toISOString().slice(0, 10);
const DOMAIN = 'victim.example';

let slack: FakeSlack;
let commands = 0;
beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterAll(() => slack.stop());

class Bot {
  runtime!: Runtime;
  app!: SlackApp;
  url = '';
  port = 0;
  clock = NOW;
  constructor(
    private readonly env: Record<string, string> = {},
    readonly dir = mkdtempSync(join(tmpdir(), 'mtasts-hostile-')),
  ) {}
  async start(): Promise<this> {
    const config: AppConfig = testConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(this.dir, 'bot.sqlite'),
      MTASTS_DNS_SERVERS: '127.0.0.1:9',
      MTASTS_SMTP_PROBE: 'off',
      ...this.env,
    });
    this.runtime = await openRuntime(
      config,
      null,
      { info() {}, warn() {}, error() {} },
      {
        poster: slackPoster('xoxb-test', slack.apiUrl),
        now: () => this.clock,
        monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
      },
    );
    this.app = buildSlackApp(this.runtime);
    this.port = await this.app.start();
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }
  async watch(domain: string, channel: string): Promise<void> {
    await this.runtime.subscriptions.watch('T1', channel, domain, 'U1', 100, this.clock);
  }
  post(body: Buffer, contentType = 'application/tlsrpt+json', from = '127.0.0.1'): Promise<Answer> {
    return postFrom(this.port, body, contentType, from);
  }
  /** A signed /mtasts help, as Slack sends it: resolves with the status and the milliseconds until the ack. */
  async command(): Promise<{ status: number; ms: number }> {
    const started = performance.now();
    const reply = await sendSigned(
      `${this.url}/slack/events`,
      SECRET,
      // Each one its own request: the app refuses a signed request it has already seen.
      slashCommand('help', { responseUrl: slack.responseUrl(`hostile-${++commands}`) }),
    );
    return { status: reply.status, ms: performance.now() - started };
  }
  counts() {
    return this.runtime.tlsrpt.counts();
  }
  async stop(): Promise<void> {
    await this.app.stop();
    await this.runtime.close();
  }
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

/** One POST from a loopback address of the test's choosing (the app limits per client address). */
function postFrom(port: number, body: Buffer, contentType: string, from: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/tlsrpt',
        method: 'POST',
        localAddress: from,
        headers: { 'Content-Type': contentType, 'Content-Length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** 16 MiB of nested arrays, gzipped to about 16 KB: the body that froze the app for seconds. */
const nestedBomb = gzipSync(Buffer.from(`${'['.repeat(8 * 1024 * 1024)}${']'.repeat(8 * 1024 * 1024)}`));

const failing = (id: string, d: string, extra: Partial<Parameters<typeof tlsrptReport>[0]> = {}) =>
  tlsrptReport({ domain: DOMAIN, id, start: `${d}T00:00:00Z`, end: `${d}T23:59:59Z`, ...extra });

describe('a body that would hold the event loop', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await new Bot().start();
    await bot.watch(DOMAIN, 'CBOMB');
  });
  afterAll(() => bot.stop());

  test('the nested gzip bomb is refused, and a slash command is acked within Slack 3 s meanwhile', async () => {
    expect(nestedBomb.length).toBeLessThan(64 * 1024);
    const [answer, ack] = await Promise.all([bot.post(nestedBomb, 'application/tlsrpt+gzip'), bot.command()]);
    expect(answer.status).toBe(413);
    expect(answer.text).toContain('decompresses to more than 1048576 bytes');
    expect(ack.status).toBe(200);
    expect(ack.ms).toBeLessThan(3000);
    expect((await bot.counts()).reports).toBe(0);
  });

  test('four clients repeating the bomb: every command is still acked within 3 s', async () => {
    const clients = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'].map(async (from) => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await bot.post(nestedBomb, 'application/tlsrpt+gzip', from)).status);
      return statuses;
    });
    const acks: { status: number; ms: number }[] = [];
    const commands = (async () => {
      for (let i = 0; i < 4; i++) acks.push(await bot.command());
    })();
    const [statuses] = await Promise.all([Promise.all(clients), commands]);
    expect(statuses.flat()).toEqual(Array(20).fill(413));
    expect(acks.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    for (const a of acks) expect(a.ms).toBeLessThan(3000);
  });

  test('nesting deeper than a report needs is refused before it is parsed', async () => {
    const deep = Buffer.from(`${'['.repeat(300_000)}${']'.repeat(300_000)}`);
    const answer = await bot.post(deep);
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('nests deeper than 10 levels');
    // Brackets inside strings are text, not nesting.
    const bracketed = failing('brackets', day(-1), { organization: `[{${'['.repeat(200)}"\\` });
    expect((await bot.post(bracketed)).status).toBe(201);
  });

  test('a large real-looking report (3000 failure details, about 1 MB) is read off the main thread and kept', async () => {
    const failures = Array.from({ length: 3000 }, (_, i) => ({
      'result-type': 'starttls-not-supported',
      'sending-mta-ip': `2001:db8::${i.toString(16)}`,
      'receiving-mx-hostname': `mx.${DOMAIN}`,
      'receiving-ip': '203.0.113.56',
      'failed-session-count': 1,
      'additional-information':
        'https://reports.reporter.example/info?id=5065427c-23d3-47ca-b6e0-946ea0e8c4be',
      'failure-reason-code': 'the server did not offer STARTTLS after EHLO',
    }));
    const body = failing('large', day(-3), { failed: 3000, failures });
    expect(body.length).toBeGreaterThan(700_000);
    expect(body.length).toBeLessThan(1024 * 1024);
    const [answer, ack] = await Promise.all([
      bot.post(gzipSync(body), 'application/tlsrpt+gzip'),
      bot.command(),
    ]);
    expect(answer.status).toBe(201);
    expect(ack.ms).toBeLessThan(3000);
    expect((await bot.runtime.tlsrpt.daySummary(DOMAIN, day(-3))).failed).toBe(3000);
  });
});

describe('counts and dates no sender can have reported', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await new Bot().start();
    await bot.watch(DOMAIN, 'CBOUNDS');
  });
  afterAll(() => bot.stop());

  const y = day(-1);
  test.each([
    ['a count over 10^9', failing('c1', y, { successful: 1_000_000_001 }), 'total-successful-session-count'],
    ['a count of 2^53-1', failing('c2', y, { failed: 2 ** 53 - 1 }), 'total-failure-session-count'],
    [
      'a failure detail over 10^9',
      failing('c3', y, {
        failures: [{ 'result-type': 'certificate-expired', 'failed-session-count': 2 ** 53 - 1 }],
      }),
      'failure-details.0.failed-session-count',
    ],
    ['a fractional count', failing('c4', y, { failed: 1.5 }), 'total-failure-session-count'],
    [
      'a period ending in 2099',
      tlsrptReport({ domain: DOMAIN, id: 'd1', start: '2099-01-01T00:00:00Z', end: '2099-01-01T23:59:59Z' }),
      'end-datetime is after tomorrow (2026-11-30, UTC)',
    ],
    [
      'the date "1"',
      tlsrptReport({ domain: DOMAIN, id: 'd2', start: '1', end: `${y}T23:59:59Z` }),
      'date-range.start-datetime: must be an RFC 3339 date-time',
    ],
    [
      'the date "+275760-09-13"',
      tlsrptReport({ domain: DOMAIN, id: 'd3', start: `${y}T00:00:00Z`, end: '+275760-09-13' }),
      'date-range.end-datetime: must be an RFC 3339 date-time',
    ],
    [
      'a date without a time',
      tlsrptReport({ domain: DOMAIN, id: 'd4', start: y, end: `${y}T23:59:59Z` }),
      'date-range.start-datetime',
    ],
    [
      'a day that does not exist',
      tlsrptReport({ domain: DOMAIN, id: 'd5', start: '2026-02-30T00:00:00Z', end: `${y}T23:59:59Z` }),
      'date-range.start-datetime',
    ],
    [
      'an end before the start',
      tlsrptReport({ domain: DOMAIN, id: 'd6', start: `${y}T12:00:00Z`, end: `${y}T11:59:59Z` }),
      'end-datetime is before start-datetime',
    ],
    [
      'a period of ten days',
      tlsrptReport({ domain: DOMAIN, id: 'd7', start: `${day(-10)}T00:00:00Z`, end: `${y}T00:00:00Z` }),
      'longer than 3 day(s)',
    ],
    [
      'a start before 2016',
      tlsrptReport({ domain: DOMAIN, id: 'd8', start: '2015-12-31T00:00:00Z', end: '2015-12-31T23:59:59Z' }),
      'start-datetime is before 2016-01-01',
    ],
  ])('%s is refused with 400 naming the field', async (_name, body, field) => {
    const answer = await bot.post(body);
    expect(answer.status).toBe(400);
    expect(answer.text).toContain(field);
    expect(await bot.counts()).toEqual({ reports: 0, policies: 0, failures: 0 });
  });

  test.each([
    ['tomorrow (a sender a little ahead)', `${day(1)}T00:00:00Z`, `${day(1)}T23:59:59Z`],
    ['an offset and fractions of a second', `${y}T02:00:00.000+02:00`, `${y}T23:59:59.999999+00:00`],
    ['the oldest period allowed, in lower case', '2016-01-01t00:00:00z', '2016-01-01T23:59:59Z'],
  ])('a period %s is accepted', async (name, start, end) => {
    const answer = await bot.post(tlsrptReport({ domain: DOMAIN, id: `ok-${name}`, start, end }));
    expect(answer.status, answer.text).toBe(201);
  });
});

describe('the public samples are all still accepted', () => {
  const files = readdirSync(FIXTURES);
  test('every JSON report and every e-mailed report decodes with the default limits', async () => {
    const bodies: Buffer[] = files
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(new URL(f, FIXTURES)));
    for (const f of files.filter((n) => n.endsWith('.eml'))) {
      const mail = await simpleParser(readFileSync(new URL(f, FIXTURES)));
      const part = mail.attachments.find((a) => /tlsrpt|gzip|json/.test(a.contentType));
      expect(part, f).toBeDefined();
      if (part) bodies.push(part.content);
    }
    expect(bodies).toHaveLength(11);
    for (const body of bodies) {
      const decoded = decodeReport(body, body[0] === 0x1f ? 'gzip' : 'json', {
        maxBytes: 1024 * 1024,
        maxSessions: 1_000_000_000,
        maxPeriodDays: 3,
        now: NOW,
      });
      expect(decoded.ok, JSON.stringify(decoded)).toBe(true);
    }
  });
});

describe('alerts about invented days', () => {
  test('40 past days: one alert per recent day, queued once however many reports follow', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch(DOMAIN, 'CDAYS');
      for (let i = 0; i < 40; i++) expect((await bot.post(failing(`day-${i}`, day(-i)))).status).toBe(201);
      // Only today, yesterday and the day before alert (MTASTS_TLSRPT_ALERT_MAX_AGE_DAYS=2); the rest are digest
      // material. More reports about the same days change nothing.
      for (let i = 0; i < 10; i++)
        expect((await bot.post(failing(`again-${i}`, day(-(i % 3))))).status).toBe(201);
      await bot.runtime.monitor.deliver();
      const alerts = slack
        .callsTo('chat.postMessage')
        .filter((c) => c.body.channel === 'CDAYS')
        .map((c) => JSON.stringify(c.body));
      expect(alerts).toHaveLength(3);
      expect(alerts.map((a) => /in reports about (\d{4}-\d{2}-\d{2})/.exec(a)?.[1]).sort()).toEqual([
        day(-2),
        day(-1),
        day(0),
      ]);
      expect((await bot.counts()).reports).toBe(50);
    } finally {
      await bot.stop();
    }
  });
});

describe('totals that cannot overflow', () => {
  test('1025 reports at the largest count, then a legitimate one: 201, and the totals add up', async () => {
    const bot = await new Bot({
      MTASTS_TLSRPT_CLIENT_BURST: '5000',
      MTASTS_TLSRPT_DOMAIN_BURST: '5000',
    }).start();
    try {
      await bot.watch(DOMAIN, 'CSUM');
      const max = 1_000_000_000;
      // Eight senders at a time: the app takes them one by one all the same (one worker, one database).
      for (let i = 0; i < 1025; i += 8) {
        const batch = Array.from({ length: Math.min(8, 1025 - i) }, (_, k) =>
          bot.post(failing(`max-${i + k}`, day(-1), { successful: max, failed: max })),
        );
        expect((await Promise.all(batch)).map((a) => a.status)).toEqual(Array(batch.length).fill(201));
      }
      const legit = await bot.post(failing('legit', day(-1), { successful: 90, failed: 10 }));
      expect(legit.status, legit.text).toBe(201);
      const s = await bot.runtime.tlsrpt.daySummary(DOMAIN, day(-1));
      expect(s).toMatchObject({ reports: 1026, successful: 1025 * max + 90, failed: 1025 * max + 10 });
    } finally {
      await bot.stop();
    }
  }, 120_000);

  test('rows stored before the bounds (2^53-1 each, 1025 of them) no longer make every later report fail', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch(DOMAIN, 'CLEGACY');
      const poisoned = (i: number): TlsRptReport => ({
        organization: 'Old Poison',
        contactInfo: null,
        reportId: `poison-${i}`,
        start: `${day(-1)}T00:00:00.000Z`,
        end: `${day(-1)}T23:59:59.000Z`,
        day: day(-1),
        policies: [
          {
            policyType: 'sts',
            policyDomain: DOMAIN,
            policyString: [],
            mxHosts: [],
            successful: 2 ** 53 - 1,
            failed: 2 ** 53 - 1,
            failures: [],
          },
        ],
      });
      // As the intake stored them before counts were bounded (SUM over these overflowed SQLite's 64-bit integers).
      for (let i = 0; i < 1025; i++) await bot.runtime.tlsrpt.save(poisoned(i), 'https', bot.clock);
      const answer = await bot.post(failing('after-poison', day(-1)));
      expect(answer.status, answer.text).toBe(201);
      const s = await bot.runtime.tlsrpt.summary(DOMAIN, day(-30));
      expect(s.reports).toBe(1026);
      expect(s.successful).toBe(Number.MAX_SAFE_INTEGER);
    } finally {
      await bot.stop();
    }
  });

  test('migration 006 caps counts stored before the bounds and drops reports dated in the future', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-migrate-'));
    const before = join(dir, 'before-006');
    mkdirSync(before);
    for (const f of readdirSync(MIGRATIONS_DIR).filter((n) => Number(n.slice(0, 3)) < 6)) {
      copyFileSync(join(MIGRATIONS_DIR, f), join(before, f));
    }
    const db = openDatabase(join(dir, 'old.sqlite'), before);
    try {
      const store = new TlsRptStore(db);
      const report = (id: string, d: string, count: number): TlsRptReport => ({
        organization: 'Old',
        contactInfo: null,
        reportId: id,
        start: `${d}T00:00:00.000Z`,
        end: `${d}T23:59:59.000Z`,
        day: d,
        policies: [
          {
            policyType: 'sts',
            policyDomain: DOMAIN,
            policyString: [],
            mxHosts: [],
            successful: count,
            failed: count,
            failures: [
              {
                resultType: 'certificate-expired',
                sendingIp: null,
                receivingMx: null,
                receivingHelo: null,
                receivingIp: null,
                count,
                reasonCode: null,
                additionalInfo: null,
              },
            ],
          },
        ],
      });
      await store.save(report('past', '2026-01-10', 2 ** 53 - 1), 'https', NOW);
      await store.save(report('future', '2099-01-01', 5), 'https', NOW);
      expect(await store.counts()).toEqual({ reports: 2, policies: 2, failures: 2 });
      expect(migrate(db)).toContain('006_tlsrpt_bounds.sql');
      expect(await store.counts()).toEqual({ reports: 1, policies: 1, failures: 1 });
      const s = await store.summary(DOMAIN, '2026-01-01');
      expect(s).toMatchObject({ successful: 1_000_000_000, failed: 1_000_000_000 });
      expect(s.failures[0]?.count).toBe(1_000_000_000);
    } finally {
      await db.close();
    }
  });
});

describe('rate limits', () => {
  test('per client address: 429 with Retry-After after the burst, other clients unaffected', async () => {
    const bot = await new Bot({
      MTASTS_TLSRPT_CLIENT_BURST: '3',
      MTASTS_TLSRPT_CLIENT_PER_MINUTE: '2',
    }).start();
    try {
      await bot.watch(DOMAIN, 'CRATE1');
      const from = '127.0.0.21';
      for (let i = 0; i < 3; i++)
        expect((await bot.post(failing(`a-${i}`, day(-5)), undefined, from)).status).toBe(201);
      const limited = await bot.post(failing('a-3', day(-5)), undefined, from);
      expect(limited.status).toBe(429);
      expect(limited.retryAfter).toBe('30');
      // Even a body that would be refused is not read: the limit comes first.
      expect((await bot.post(nestedBomb, 'application/tlsrpt+gzip', from)).status).toBe(429);
      expect((await bot.post(failing('b-0', day(-5)), undefined, '127.0.0.22')).status).toBe(201);
      // After the time Retry-After named, the client is served again.
      bot.clock = new Date(NOW.getTime() + 30_000);
      expect((await bot.post(failing('a-4', day(-5)), undefined, from)).status).toBe(201);
      expect((await bot.counts()).reports).toBe(5);
    } finally {
      await bot.stop();
    }
  });

  test('per policy domain: 429 once a domain has had its burst, from any client; other domains go on', async () => {
    const bot = await new Bot({
      MTASTS_TLSRPT_DOMAIN_BURST: '2',
      MTASTS_TLSRPT_DOMAIN_PER_MINUTE: '1',
    }).start();
    try {
      await bot.watch(DOMAIN, 'CRATE2');
      await bot.watch('other.example', 'CRATE2');
      expect((await bot.post(failing('x-0', day(-5)), undefined, '127.0.0.31')).status).toBe(201);
      expect((await bot.post(failing('x-1', day(-5)), undefined, '127.0.0.32')).status).toBe(201);
      const limited = await bot.post(failing('x-2', day(-5)), undefined, '127.0.0.33');
      expect(limited.status).toBe(429);
      expect(limited.retryAfter).toBe('60');
      expect(limited.text).toContain(DOMAIN);
      const other = tlsrptReport({
        domain: 'other.example',
        id: 'o-0',
        start: `${day(-5)}T00:00:00Z`,
        end: `${day(-5)}T23:59:59Z`,
      });
      expect((await bot.post(other, undefined, '127.0.0.33')).status).toBe(201);
      expect((await bot.counts()).reports).toBe(3);
    } finally {
      await bot.stop();
    }
  });
});

describe('the disk guard', () => {
  test('reports are refused (507, Retry-After) while free space is under the minimum; nothing stored is lost', async () => {
    const first = await new Bot().start();
    const dir = first.dir;
    try {
      await first.watch(DOMAIN, 'CDISK');
      expect((await first.post(failing('kept', day(-4)))).status).toBe(201);
    } finally {
      await first.stop();
    }
    // A minimum above any disk's free space (1 EB): the guard must refuse, as it would on a full disk.
    const bot = await new Bot({ MTASTS_TLSRPT_MIN_FREE_MB: '1000000000' }, dir).start();
    try {
      const refused = await bot.post(failing('new', day(-4)));
      expect(refused.status).toBe(507);
      expect(refused.retryAfter).toBe('600');
      expect(refused.text).toContain('short of disk space');
      expect(await bot.counts()).toEqual({ reports: 1, policies: 1, failures: 1 });
      expect(await bot.runtime.tlsrpt.daySummary(DOMAIN, day(-4))).toMatchObject({
        reports: 1,
        successful: 90,
        failed: 10,
      });
      const ack = await bot.command();
      expect(ack.status).toBe(200);
    } finally {
      await bot.stop();
    }
  });
});

describe('bodies that never end', () => {
  /**
   * Writes the head and then drips `chunk`-byte pieces of a chunked body every `everyMs` until the server answers
   * and closes, or `max` bytes are out. Resolves with the status line and the body bytes written before the answer.
   */
  function drip(port: number, chunk: number, everyMs: number, max: number) {
    return new Promise<{ status: number | null; sentBeforeAnswer: number; sent: number }>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.41' });
      let received = '';
      let sent = 0;
      let sentBeforeAnswer = -1;
      let timer: NodeJS.Timeout | undefined;
      const piece = `${chunk.toString(16)}\r\n${'a'.repeat(chunk)}\r\n`;
      socket.on('connect', () => {
        socket.write(
          'POST /tlsrpt HTTP/1.1\r\nHost: t\r\nContent-Type: application/tlsrpt+json\r\nTransfer-Encoding: chunked\r\n\r\n',
        );
        timer = setInterval(() => {
          if (sent >= max || socket.destroyed) return clearInterval(timer);
          socket.write(piece);
          sent += chunk;
        }, everyMs);
      });
      socket.on('data', (d: Buffer) => {
        if (sentBeforeAnswer < 0) sentBeforeAnswer = sent;
        received += d.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(timer);
        const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
        resolve({ status: status ? Number(status) : null, sentBeforeAnswer, sent });
      });
    });
  }

  test('a dripped body is cut at the size cap: 413, and the connection closed while the client still sends', async () => {
    const bot = await new Bot({ MTASTS_TLSRPT_MAX_BYTES: '8192' }).start();
    try {
      const ending = await drip(bot.port, 1024, 15, 256 * 1024);
      expect(ending.status).toBe(413);
      expect(ending.sentBeforeAnswer).toBeGreaterThan(8192);
      expect(ending.sentBeforeAnswer).toBeLessThanOrEqual(8192 + 8 * 1024);
      // The server closed the connection; the client would have gone on to 256 KiB.
      expect(ending.sent).toBeLessThan(64 * 1024);
      expect((await bot.counts()).reports).toBe(0);
      expect((await bot.command()).status).toBe(200);
    } finally {
      await bot.stop();
    }
  });

  test('a body broken off by the client is dropped, and the next report is taken', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch(DOMAIN, 'CABORT');
      const body = failing('whole', day(-1));
      await new Promise<void>((resolve) => {
        const socket = connect({ port: bot.port, host: '127.0.0.1' }, () => {
          socket.write(
            `POST /tlsrpt HTTP/1.1\r\nHost: t\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: ${body.length}\r\n\r\n`,
          );
          socket.write(body.subarray(0, body.length - 10), () => {
            socket.destroy();
            resolve();
          });
        });
      });
      expect((await bot.post(body)).status).toBe(201);
      expect((await bot.counts()).reports).toBe(1);
    } finally {
      await bot.stop();
    }
  });
});

describe('text from reports is inert in Slack', () => {
  const HOSTILE = {
    organization:
      '*URGENT* <!channel> log in at http://evil.example/login _now_ ~x~ <@U123> bank.example &amp;',
    reason: 'see https://phish.example\n*bold* after a line break `code` <!here>',
    mx: 'mx.evil.example`*x*`',
    ip: '203.0.113.9 <https://evil.example|click>',
    resultType: '*sts-policy-fetch-error* http://evil.example',
  };
  const summary = (orgs = 1): DomainReportSummary => ({
    domain: DOMAIN,
    since: day(-1),
    until: day(-1),
    reports: orgs,
    successful: 90,
    failed: 10,
    organizations: Array.from({ length: orgs }, (_, i) => ({
      organization: `${HOSTILE.organization} ${i} ${'x'.repeat(400)}`,
      successful: 90,
      failed: 10,
      reports: 1,
    })),
    failures: [
      {
        resultType: HOSTILE.resultType,
        receivingMx: HOSTILE.mx,
        receivingIp: null,
        count: 5,
        reasonCodes: [HOSTILE.reason],
      },
      {
        resultType: 'certificate-expired',
        receivingMx: null,
        receivingIp: HOSTILE.ip,
        count: 5,
        reasonCodes: [],
      },
    ],
  });

  /** The mrkdwn left once code spans are taken out: what Slack would format, link or mention. */
  function outsideCode(mrkdwn: string): string {
    const spans = mrkdwn.match(/`[^`]*`/g) ?? [];
    for (const s of spans) expect(s).not.toMatch(/[\n<>]/);
    return mrkdwn.replace(/`[^`]*`/g, '');
  }

  function expectInert(mrkdwn: string): void {
    expect(mrkdwn).not.toMatch(/<[!@#]|<https?:/);
    const rest = outsideCode(mrkdwn);
    for (const bad of [
      'http',
      'evil.example',
      'phish.example',
      'bank.example',
      '*URGENT*',
      '_now_',
      '~x~',
      '*bold*',
    ]) {
      expect(rest).not.toContain(bad);
    }
    expect(rest).not.toMatch(/&(?!amp;|lt;|gt;)/);
  }

  test('the summary, the digest and the failure-rate alert quote every reporter-chosen text', () => {
    const s = summary();
    const text = summaryText(s);
    expectInert(text);
    expect(text).toContain('`*URGENT* &lt;!channel&gt; log in at http://evil.example/login');
    expect(text).toContain("at `mx.evil.example'*x*'`");
    expect(text).toContain('at `203.0.113.9 &lt;https://evil.example|click&gt;`');
    expect(text).toContain('(`see https://phish.example *bold* after a line break');
    const digest = digestMessage({
      kind: 'tlsrpt-digest',
      domain: DOMAIN,
      summary: s,
      from: NOW.toISOString(),
      to: NOW.toISOString(),
    });
    const rate = failureRateMessage({
      kind: 'tlsrpt-rate',
      domain: DOMAIN,
      summary: s,
      rate: 0.1,
      threshold: 0.05,
    });
    for (const m of [digest, rate]) {
      for (const b of m.blocks)
        for (const t of [b.text?.text, ...(b.elements ?? []).map((e: { text: string }) => e.text)])
          if (t) expectInert(t);
      expectInert(m.text);
    }
  });

  test('200 long reporter names stay within the section limit, with a count of those left out', () => {
    const text = summaryText(summary(200));
    expect(text.length).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(text).toMatch(/…and \d+ more reporters/);
    expect(text).toContain('*Failures*\n• `');
    expectInert(text);
  });

  test('through the real path: a hostile report alerts with its texts quoted', async () => {
    const bot = await new Bot().start();
    try {
      await bot.watch(DOMAIN, 'CINERT');
      const body = failing('hostile', day(-1), {
        organization: HOSTILE.organization,
        failures: [
          {
            'result-type': HOSTILE.resultType,
            'receiving-mx-hostname': HOSTILE.mx,
            'failure-reason-code': HOSTILE.reason,
            'failed-session-count': 5,
          },
          { 'result-type': 'certificate-expired', 'receiving-ip': HOSTILE.ip, 'failed-session-count': 5 },
        ],
      });
      expect((await bot.post(body)).status).toBe(201);
      await slack.waitFor(() => slack.callsTo('chat.postMessage').some((c) => c.body.channel === 'CINERT'));
      const posted = slack.callsTo('chat.postMessage').find((c) => c.body.channel === 'CINERT');
      const blocks = posted?.body.blocks as { text?: { text: string } }[];
      const summaryBlock = blocks.map((b) => b.text?.text ?? '').find((t) => t.includes('By reporter')) ?? '';
      expect(summaryBlock).toContain('`*URGENT* &lt;!channel&gt;');
      expectInert(summaryBlock);
    } finally {
      await bot.stop();
    }
  });
});
