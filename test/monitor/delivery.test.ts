import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { DEFAULT_DELIVERY, type DeliverySettings, type DeliverySummary } from '../../src/monitor/deliver.js';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import { sql } from '../../src/store/db.js';
import { ingestReport } from '../../src/tlsrpt/intake.js';
import { onPostgres, testConfig } from '../support/config.js';
import { type ApiCall, FakeSlack } from '../support/fake-slack.js';

/**
 * Alert delivery through the real path: TLS-RPT intake queues alerts in a real SQLite outbox, the runtime's own Slack
 * poster posts them to a fake Slack Web API on loopback. Time that must pass for retries and leases passes on a clock
 * the test moves; only the Slack call timeout (a few hundred ms) is real.
 */

/** The Slack call timeout where a test makes a call hang; elsewhere it is long enough for a loaded machine. */
const SLACK_TIMEOUT_MS = 1000;
const RELAXED_TIMEOUT_MS = 10_000;
/** A claim lasts three times the Slack call timeout. */
const LEASE_MS = 3 * SLACK_TIMEOUT_MS;
const TEST_DELIVERY: DeliverySettings = {
  ...DEFAULT_DELIVERY,
  channelPacingMs: 5,
  backoffMs: 60_000,
  random: () => 0.5, // jitter is 5% of every wait
};

let slack: FakeSlack;
const logs: string[] = [];
const logger = {
  info: (m: string) => logs.push(`info ${m}`),
  warn: (m: string) => logs.push(`warn ${m}`),
  error: (m: string) => logs.push(`error ${m}`),
};
const open: Runtime[] = [];

beforeEach(async () => {
  slack = await FakeSlack.start();
  logs.length = 0;
});
afterEach(async () => {
  for (const runtime of open.splice(0)) {
    await runtime.monitor.stop();
    await runtime.close();
  }
  await slack.stop();
});

/** The clock every runtime of a test reads (two "processes" on one machine share the time). */
class Clock {
  private t = Date.parse('2026-11-29T12:00:00Z');
  readonly now = () => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
}

/** A runtime as `npm start` opens it (its own Slack poster, the timeout from the settings) over `dbPath`. */
async function openBot(
  dbPath: string,
  clock: Clock,
  delivery: Partial<DeliverySettings> = {},
  slackTimeoutMs = RELAXED_TIMEOUT_MS,
): Promise<Runtime> {
  const runtime = await openRuntime(
    testConfig({
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: dbPath,
      MTASTS_DNS_SERVERS: '127.0.0.1:9',
      MTASTS_SMTP_PROBE: 'off',
      MTASTS_SLACK_TIMEOUT_MS: String(slackTimeoutMs),
    }),
    null,
    logger,
    { now: clock.now, monitor: { jitterMs: 0, delivery: { ...TEST_DELIVERY, ...delivery } } },
  );
  open.push(runtime);
  return runtime;
}

async function closeBot(runtime: Runtime): Promise<void> {
  open.splice(open.indexOf(runtime), 1);
  await runtime.monitor.stop();
  await runtime.close();
}

const newDbPath = () => join(mkdtempSync(join(tmpdir(), 'mtasts-delivery-')), 'bot.sqlite');
const domainOf = (i: number) => `alert-${String(i).padStart(2, '0')}.example`;

/** A TLS-RPT report for `domain` with 10% failed sessions: over the alert threshold, so its domain alerts once a day. */
function reportBody(domain: string, n: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      'organization-name': 'Sender Inc.',
      'date-range': { 'start-datetime': '2026-11-28T00:00:00Z', 'end-datetime': '2026-11-28T23:59:59Z' },
      'report-id': `${domain}-${n}`,
      policies: [
        {
          policy: { 'policy-type': 'sts', 'policy-domain': domain },
          summary: { 'total-successful-session-count': 90, 'total-failure-session-count': 10 },
          'failure-details': [
            {
              'result-type': 'certificate-expired',
              'receiving-mx-hostname': `mx.${domain}`,
              'failed-session-count': 10,
            },
          ],
        },
      ],
    }),
  );
}

/** Reports through the intake the app serves at POST /tlsrpt: each stored report starts a delivery. */
async function intakeHttps(runtime: Runtime, domain: string, n: number): Promise<void> {
  const r = await ingestReport(reportBody(domain, n), 'application/tlsrpt+json', 'https', runtime.intake);
  expect(r.status, r.message).toBe(201);
}

/** Reports as `mtasts ingest-email` takes them in: queued, and left for the app to deliver. */
async function intakeEmail(runtime: Runtime, domain: string): Promise<void> {
  const r = await ingestReport(reportBody(domain, 0), 'application/tlsrpt+json', 'email', {
    ...runtime.intake,
    onStored: () => {},
  });
  expect(r.status, r.message).toBe(201);
}

async function watch(runtime: Runtime, clock: Clock, channel: string, domains: string[]): Promise<void> {
  for (const d of domains) await runtime.subscriptions.watch('T1', channel, d, 'U1', 1000, clock.now());
}

const postsTo = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel);
/** The domain an alert post is about. */
const alertDomain = (c: ApiCall) => /alert-\d\d\.example/.exec(String(c.body.text))?.[0];
/** The alerts Slack took (answered ok with a ts), by domain, in the order they were posted. */
function postedTo(channel: string): string[] {
  return postsTo(channel)
    .filter((c) => c.ts !== undefined)
    .map((c) => alertDomain(c) ?? '?');
}

describe('one delivery worker per process', () => {
  test('3 reports arriving together over HTTPS: each alert posted once', async () => {
    const clock = new Clock();
    const bot = await openBot(newDbPath(), clock);
    const domains = [1, 2, 3].map(domainOf);
    await watch(bot, clock, 'CTHREE', domains);
    const app = buildSlackApp(bot);
    const port = await app.start();
    try {
      slack.answerDelayMs = 20; // each post takes a while: the deliveries the reports start overlap
      const replies = await Promise.all(
        domains.map((d) =>
          fetch(`http://127.0.0.1:${port}/tlsrpt`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/tlsrpt+json' },
            body: reportBody(d, 0),
          }),
        ),
      );
      expect(replies.map((r) => r.status)).toEqual([201, 201, 201]);
      await bot.monitor.deliver(); // a round that starts after every report was stored
      expect(postedTo('CTHREE').sort()).toEqual(domains);
      expect(postsTo('CTHREE')).toHaveLength(3);
      expect(slack.mostOpenPosts.get('CTHREE')).toBe(1);
      expect(await bot.monitorStore.countByState()).toEqual({ sent: 3 });
    } finally {
      await app.stop();
    }
  });

  test('110 reports for 11 alerts, each starting a delivery: 11 posts, in order, one at a time', async () => {
    const clock = new Clock();
    const bot = await openBot(newDbPath(), clock);
    const domains = Array.from({ length: 11 }, (_, i) => domainOf(i + 1));
    await watch(bot, clock, 'CMANY', domains);
    slack.answerDelayMs = 5;
    // Ten reports per domain, interleaved: the first report of each domain queues its alert, in domain order.
    const reports: Promise<void>[] = [];
    for (let n = 0; n < 10; n++) for (const d of domains) reports.push(intakeHttps(bot, d, n));
    await Promise.all(reports);
    await bot.monitor.deliver();
    // The outbox order, which is the order the alerts were queued: on SQLite the reports are stored one at a time, in
    // the order sent; on PostgreSQL several are stored at once, and their alerts queue in whatever order they commit.
    const queued = await bot.db.all<{ domain: string }>(
      sql`SELECT domain FROM outbox WHERE channel_id = 'CMANY' ORDER BY id`,
    );
    expect(postedTo('CMANY')).toEqual(queued.map((r) => r.domain));
    if (!onPostgres) expect(postedTo('CMANY')).toEqual(domains);
    expect(postsTo('CMANY')).toHaveLength(11);
    expect(slack.mostOpenPosts.get('CMANY')).toBe(1); // paced: never two posts to the channel at once
    expect(await bot.monitorStore.countByState()).toEqual({ sent: 11 });
  });

  test('110 concurrent deliver() calls share at most two rounds, never run side by side', async () => {
    const clock = new Clock();
    const bot = await openBot(newDbPath(), clock);
    const domains = Array.from({ length: 11 }, (_, i) => domainOf(i + 1));
    await watch(bot, clock, 'CCALLS-A', domains.slice(0, 6));
    await watch(bot, clock, 'CCALLS-B', domains.slice(6));
    for (const d of domains) await intakeEmail(bot, d);
    slack.answerDelayMs = 5;
    const calls = Array.from({ length: 110 }, () => bot.monitor.deliver());
    const rounds = new Set(calls);
    expect(rounds.size).toBe(2); // the round running now, and the one after it that every later call shares
    const summaries = await Promise.all(rounds);
    expect(summaries.reduce((n, s) => n + s.sent, 0)).toBe(11);
    expect(postedTo('CCALLS-A')).toEqual(domains.slice(0, 6));
    expect(postedTo('CCALLS-B')).toEqual(domains.slice(6));
    expect(slack.callsTo('chat.postMessage')).toHaveLength(11);
    expect(slack.mostOpenPosts.get('CCALLS-A')).toBe(1);
    expect(slack.mostOpenPosts.get('CCALLS-B')).toBe(1);
    // Once idle, a call starts a round of its own at once.
    const later = bot.monitor.deliver();
    expect(rounds.has(later)).toBe(false);
    expect((await later).sent).toBe(0);
  });
});

describe('claims shared through the database', () => {
  test('a worker that died mid-post: after a restart its claim holds until the lease runs out, then each alert is posted once', async () => {
    const clock = new Clock();
    const dbPath = newDbPath();
    const first = await openBot(dbPath, clock, {}, SLACK_TIMEOUT_MS);
    const domains = [1, 2, 3].map(domainOf);
    await watch(first, clock, 'CCRASH', domains);
    for (const d of domains) await intakeEmail(first, d);
    slack.holdNext('chat.postMessage'); // Slack takes the first post and never answers
    const dying = first.monitor.deliver();
    await slack.waitFor(() => postsTo('CCRASH').length === 1);
    const [claimed] = await first.monitorStore.entries();
    expect(claimed?.claimedBy).toMatch(/#/);
    expect(claimed?.claimedUntil).toBe(new Date(clock.now().getTime() + LEASE_MS).toISOString());
    // The process dies with the post in flight: its database goes away before it can store the outcome.
    await first.close();
    open.splice(open.indexOf(first), 1);
    await dying.catch(() => {});
    const second = await openBot(dbPath, clock, {}, SLACK_TIMEOUT_MS);
    expect((await second.monitor.deliver()).sent).toBe(0); // the claim is still live: nothing in that channel moves
    expect(postsTo('CCRASH')).toHaveLength(1);
    clock.advance(LEASE_MS);
    const after = await second.monitor.deliver();
    expect(after.sent).toBe(3);
    expect(postedTo('CCRASH')).toEqual(domains); // each alert answered once in total, in order
    expect(postsTo('CCRASH')).toHaveLength(4); // the abandoned first post, then the three
    expect((await second.monitorStore.entries()).map((e) => [e.state, e.claimedBy])).toEqual([
      ['sent', null],
      ['sent', null],
      ['sent', null],
    ]);
    await closeBot(second);
    const third = await openBot(dbPath, clock, {}, SLACK_TIMEOUT_MS);
    clock.advance(3600_000);
    expect((await third.monitor.deliver()).sent).toBe(0);
    expect(postsTo('CCRASH')).toHaveLength(4);
  });

  test('two workers over one database file (as two processes): each alert posted once', async () => {
    const clock = new Clock();
    const dbPath = newDbPath();
    // One channel at a time per worker, so that the second worker moves on to the channels the first has not reached.
    const a = await openBot(dbPath, clock, { parallelChannels: 1 });
    const b = await openBot(dbPath, clock, { parallelChannels: 1 });
    const channels = ['CTWO-1', 'CTWO-2', 'CTWO-3'];
    const domains = Array.from({ length: 4 }, (_, i) => domainOf(i + 1));
    for (const c of channels) await watch(a, clock, c, domains);
    for (const d of domains) await intakeEmail(a, d);
    slack.answerDelayMs = 5;
    const rounds: Promise<DeliverySummary>[] = [];
    for (let i = 0; i < 20; i++) rounds.push(a.monitor.deliver(), b.monitor.deliver());
    const summaries = await Promise.all(rounds);
    await Promise.all([a.monitor.deliver(), b.monitor.deliver()]);
    for (const c of channels) {
      expect(postedTo(c)).toEqual(domains);
      expect(slack.mostOpenPosts.get(c)).toBe(1);
    }
    expect(slack.callsTo('chat.postMessage')).toHaveLength(12);
    // Both posted: the second found the first channel claimed and took the next one.
    const sentBy = (from: number) =>
      [...new Set(summaries.filter((_, i) => i % 2 === from))].reduce((n, s) => n + s.sent, 0);
    expect(sentBy(0)).toBeGreaterThan(0);
    expect(sentBy(1)).toBeGreaterThan(0);
    expect(await a.monitorStore.countByState()).toEqual({ sent: 12 });
  });
});

describe('Slack that does not answer, or asks to wait', () => {
  test('a chat.postMessage that hangs times out, is retried later, and is never posted twice at once', async () => {
    const clock = new Clock();
    const dbPath = newDbPath();
    const bot = await openBot(dbPath, clock, {}, SLACK_TIMEOUT_MS);
    const otherProcess = await openBot(dbPath, clock, {}, SLACK_TIMEOUT_MS);
    await watch(bot, clock, 'CHANG', [domainOf(1), domainOf(2)]);
    await intakeEmail(bot, domainOf(1));
    await intakeEmail(bot, domainOf(2));
    slack.holdNext('chat.postMessage');
    const round = bot.monitor.deliver();
    await slack.waitFor(() => postsTo('CHANG').length === 1);
    // The minute tick and another process try while the post hangs: nothing else is posted to the channel.
    const meanwhile = [bot.monitor.deliver(), bot.monitor.deliver(), otherProcess.monitor.deliver()];
    expect((await meanwhile[2])?.sent).toBe(0);
    const first = await round;
    expect(first).toMatchObject({ sent: 0, retrying: 1, dead: 0 });
    await Promise.all(meanwhile);
    expect(postsTo('CHANG')).toHaveLength(1);
    await slack.waitFor(() => postsTo('CHANG')[0]?.abandoned === true); // the client gave up on it
    const [hung, behind] = await bot.monitorStore.entries();
    expect(hung).toMatchObject({ state: 'pending', attempts: 1, rateLimited: 0, claimedBy: null });
    expect(hung?.lastError).toBe(`no answer from Slack within ${SLACK_TIMEOUT_MS} ms`);
    expect(hung?.nextAttemptAt).toBe(new Date(clock.now().getTime() + 63_000).toISOString()); // 60 s + 5% jitter
    expect(behind).toMatchObject({ state: 'pending', attempts: 0 });
    clock.advance(62_000);
    expect((await otherProcess.monitor.deliver()).sent).toBe(0); // not yet due
    clock.advance(1_000);
    expect((await otherProcess.monitor.deliver()).sent).toBe(2);
    expect(postedTo('CHANG')).toEqual([domainOf(1), domainOf(2)]);
    expect(postsTo('CHANG')).toHaveLength(3);
    expect(logs.join('\n')).toContain(`no answer from Slack within ${SLACK_TIMEOUT_MS} ms; retrying in 63 s`);
  });

  test('429 for longer than maxAttempts rounds: no attempt used, waits grow from Retry-After, delivered once Slack recovers', async () => {
    const clock = new Clock();
    const bot = await openBot(newDbPath(), clock, { maxAttempts: 3 });
    await watch(bot, clock, 'C429', [domainOf(1), domainOf(2)]);
    await intakeEmail(bot, domainOf(1));
    await intakeEmail(bot, domainOf(2));
    const limited = {
      status: 429,
      headers: { 'Retry-After': '2' },
      json: { ok: false, error: 'ratelimited' },
    };
    slack.answerNext('chat.postMessage', 8, limited);
    const waits: number[] = [];
    for (let round = 1; round <= 8; round++) {
      const s = await bot.monitor.deliver();
      expect(s).toMatchObject({ sent: 0, retrying: 1, dead: 0 });
      const [entry] = await bot.monitorStore.entries();
      expect(entry).toMatchObject({ state: 'pending', attempts: 0, rateLimited: round, claimedBy: null });
      const wait = Date.parse(entry?.nextAttemptAt ?? '') - clock.now().getTime();
      waits.push(wait);
      clock.advance(wait - 1); // just before the time Slack gave: nothing is posted
      expect((await bot.monitor.deliver()).sent).toBe(0);
      expect(postsTo('C429')).toHaveLength(round);
      clock.advance(1);
    }
    // Retry-After 2 s, doubled for each 429 in a row, 5% jitter.
    expect(waits).toEqual([2100, 4200, 8400, 16800, 33600, 67200, 134400, 268800]);
    const s = await bot.monitor.deliver();
    expect(s).toMatchObject({ sent: 2, dead: 0 });
    expect(postedTo('C429')).toEqual([domainOf(1), domainOf(2)]);
    expect(postsTo('C429')).toHaveLength(10);
    expect((await bot.monitorStore.entries()).map((e) => [e.state, e.attempts])).toEqual([
      ['sent', 1],
      ['sent', 1],
    ]);
    expect(logs.join('\n')).not.toContain('given up');
  });

  test('500s grow the backoff and count; 429s between them do not; maxAttempts real failures give the alert up', async () => {
    const clock = new Clock();
    const bot = await openBot(newDbPath(), clock, { maxAttempts: 3 });
    await watch(bot, clock, 'C500', [domainOf(1), domainOf(2)]);
    await intakeEmail(bot, domainOf(1));
    await intakeEmail(bot, domainOf(2));
    const error = { status: 500, json: { ok: false, error: 'internal_error' } };
    const limited = {
      status: 429,
      headers: { 'Retry-After': '1' },
      json: { ok: false, error: 'ratelimited' },
    };
    for (const reply of [error, limited, limited, error, limited, error])
      slack.answerNext('chat.postMessage', 1, reply);
    const seen: [number, number, number][] = [];
    let last: DeliverySummary | undefined;
    for (let round = 0; round < 6; round++) {
      last = await bot.monitor.deliver();
      const [entry] = await bot.monitorStore.entries();
      const wait = Date.parse(entry?.nextAttemptAt ?? '') - clock.now().getTime();
      seen.push([entry?.attempts ?? -1, entry?.rateLimited ?? -1, wait]);
      clock.advance(Math.max(wait, 0));
    }
    expect(seen.slice(0, 5)).toEqual([
      [1, 0, 63_000], // 500: 60 s
      [1, 1, 1_050], // 429: Retry-After 1 s
      [1, 2, 2_100], // 429 again: twice that
      [2, 0, 126_000], // 500: 120 s
      [2, 1, 1_050],
    ]);
    // The third 500 is the third real failure: given up, and the alert behind it goes out.
    expect(last).toMatchObject({ sent: 1, dead: 1 });
    expect((await bot.monitorStore.entries()).map((e) => [e.state, e.attempts])).toEqual([
      ['dead', 3],
      ['sent', 1],
    ]);
    expect(logs.join('\n')).toContain(
      `alert tlsrpt-rate@2026-11-28 to C500 (team T1) given up after 3 attempt(s): HTTP 500`,
    );
  });
});
