import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli.js';
import type { AppConfig } from '../../src/config.js';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import type { MonitorSettings, PassSummary } from '../../src/monitor/monitor.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { slackPoster } from '../../src/slack/poster.js';
import { sql } from '../../src/store/db.js';
import { PassStore } from '../../src/store/passes.js';
import { cliEnv, testConfig } from '../support/config.js';
import type { ApiCall } from '../support/fake-slack.js';
import { FakeSlack } from '../support/fake-slack.js';
import { servePolicy, type TestHttpsServer } from '../support/https-server.js';
import { Lab } from '../support/lab.js';

const DAY = 86_400_000;
let lab: Lab;
let slack: FakeSlack;
const logs: string[] = [];
const logger = {
  info: (m: string) => logs.push(`info ${m}`),
  warn: (m: string) => logs.push(`warn ${m}`),
  error: (m: string) => logs.push(`error ${m}`),
};

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
});
afterAll(async () => {
  await Promise.all([lab.stop(), slack.stop()]);
});

function config(databasePath: string): AppConfig {
  return testConfig({
    SLACK_API_URL: slack.apiUrl,
    DATABASE_PATH: databasePath,
    MTASTS_DNS_SERVERS: lab.dns.address,
    MTASTS_TIMEOUT_MS: '2000',
    MTASTS_MONITOR_CONCURRENCY: '4',
  });
}

/** A monitor with its own database and a clock the test moves. */
class Rig {
  clock = new Date();
  runtime!: Runtime;
  readonly dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-mon-')), 'm.sqlite');
  static async create(): Promise<Rig> {
    const rig = new Rig();
    rig.runtime = await rig.open();
    return rig;
  }
  open(monitor: Partial<MonitorSettings> = {}): Promise<Runtime> {
    return openRuntime(config(this.dbPath), null, logger, {
      engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
      poster: slackPoster('xoxb-test', slack.apiUrl),
      now: () => this.clock,
      monitor: {
        jitterMs: 0,
        delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0, backoffMs: 60_000 },
        ...monitor,
      },
    });
  }
  async watch(domain: string, channel: string, team = 'T1'): Promise<void> {
    const r = await this.runtime.subscriptions.watch(team, channel, domain, 'U1', 100, this.clock);
    expect(r.kind).toBe('added');
  }
  async pass(): Promise<PassSummary> {
    const p = await this.runtime.monitor.runPass();
    if (!p) throw new Error('pass already running');
    return p;
  }
  advance(ms: number): void {
    this.clock = new Date(this.clock.getTime() + ms);
  }
  async restart(): Promise<void> {
    await this.runtime.close();
    this.runtime = await this.open();
  }
}

const posts = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel);
const textOf = (c: ApiCall | undefined) => `${String(c?.body.text)} ${JSON.stringify(c?.body.blocks)}`;

/** The policy host that served `domain`: a test whose setup cannot find it fails here instead of skipping it. */
function policyHostOf(domain: string): TestHttpsServer {
  const server = lab.https.find((s) => s.requests.some((r) => r.host === `mta-sts.${domain}`));
  if (!server) throw new Error(`no policy host has served mta-sts.${domain}`);
  return server;
}

describe('monitoring passes against loopback peers', () => {
  test('a healthy domain: the first pass is a silent baseline, later passes stay silent', async () => {
    await lab.domain('quiet.test');
    const rig = await Rig.create();
    await rig.watch('quiet.test', 'CQUIET');
    const first = await rig.pass();
    expect(first.domains).toBe(1);
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CQUIET')).toHaveLength(0);
    expect((await rig.runtime.checks.last('quiet.test'))?.status).toBe('pass');
    await rig.runtime.close();
  });

  test('certificate expiry: one alert per threshold, in one thread, then replaced closes it', async () => {
    await lab.domain('certs.test', {
      mx: { 'mx1.certs.test': { cert: lab.cert(['mx1.certs.test'], { notAfterDays: 40 }) } },
    });
    const mx1 = lab.smtp.at(-2);
    const rig = await Rig.create();
    await rig.watch('certs.test', 'CCERT1');
    await rig.watch('certs.test', 'CCERT2');
    await rig.pass(); // 40 days left: nothing
    rig.advance(15 * DAY); // 25 left: the 30-day threshold
    await rig.pass();
    await rig.pass(); // same clock again: no repeat
    expect(posts('CCERT1')).toHaveLength(1);
    expect(posts('CCERT2')).toHaveLength(1);
    const opener = posts('CCERT1')[0];
    expect(textOf(opener)).toContain('MX certificate expires within 30 days');
    expect(opener?.body.thread_ts).toBeUndefined();
    rig.advance(12 * DAY); // 13 left: 14-day threshold
    await rig.pass();
    rig.advance(7 * DAY); // 6 left: 7-day threshold
    await rig.pass();
    const c1 = posts('CCERT1');
    expect(c1.map((c) => String(c.body.text))).toEqual([
      expect.stringContaining('MX certificate expires within 30 days'),
      expect.stringContaining('within 14 days'),
      expect.stringContaining('within 7 days'),
    ]);
    // Follow-ups sit in the thread of the first alert of that channel.
    const firstTs = threadRootTs('CCERT1');
    expect(c1[1]?.body.thread_ts).toBe(firstTs);
    expect(c1[2]?.body.thread_ts).toBe(firstTs);
    // The certificate is replaced: the condition closes in its thread, with the new expiry.
    mx1?.setCertificate(lab.cert(['mx1.certs.test'], { notAfterDays: 200 }));
    await rig.pass();
    const last = posts('CCERT1').at(-1);
    expect(String(last?.body.text)).toContain('recovered');
    expect(textOf(last)).toContain('replaced: the new certificate expires');
    expect(last?.body.thread_ts).toBe(firstTs);
    await rig.pass();
    expect(posts('CCERT1')).toHaveLength(4);
    await rig.runtime.close();
  });

  test('MX changes: the change and the new host it leaves uncovered are one alert, and the policy fix recovers it in its thread', async () => {
    await lab.domain('mxmove.test');
    const rig = await Rig.create();
    await rig.watch('mxmove.test', 'CMX');
    await rig.pass();
    await lab.mxHost('mx3.mxmove.test');
    lab.edit('mxmove.test', {
      MX: [
        { preference: 10, exchange: 'mx1.mxmove.test' },
        { preference: 20, exchange: 'mx2.mxmove.test' },
        { preference: 30, exchange: 'mx3.mxmove.test' },
      ],
    });
    rig.advance(3600_000);
    await rig.pass();
    const texts = posts('CMX').map(textOf);
    expect(texts).toHaveLength(1); // one message about the move, the uncovered host in it
    expect(texts.join('\n')).toContain('MX hosts changed');
    expect(texts.join('\n')).toContain('added mx3.mxmove.test');
    expect(texts.join('\n')).toContain('MX host not covered by the policy');
    expect(texts.join('\n')).toContain('mode is *enforce*');
    // The policy now covers mx3, with a new id.
    policyHostOf('mxmove.test').handler = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/plain' })
        .end(
          'version: STSv1\nmode: enforce\nmx: mx1.mxmove.test\nmx: mx2.mxmove.test\nmx: mx3.mxmove.test\nmax_age: 1209600\n',
        );
    lab.set('_mta-sts.mxmove.test', { TXT: ['v=STSv1; id=20261130T000000'] });
    rig.advance(3600_000);
    await rig.pass();
    const last = posts('CMX').at(-1);
    expect(String(last?.body.text)).toContain('recovered: MX host not covered by the policy');
    // In the thread of the alert that opened it.
    const opener = posts('CMX').find((c) =>
      String(c.body.text).includes('MX host not covered by the policy'),
    );
    expect(opener?.ts).toMatch(/^\d+\.\d+$/);
    expect(last?.body.thread_ts).toBe(opener?.ts);
    await rig.runtime.close();
  });

  test('a policy edited without a new id: STS_ID_NOT_UPDATED, until the id changes', async () => {
    await lab.domain('stuckid.test', { mode: 'enforce' });
    const rig = await Rig.create();
    await rig.watch('stuckid.test', 'CID');
    await rig.pass();
    policyHostOf('stuckid.test').handler = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/plain' })
        .end('version: STSv1\nmode: enforce\nmx: mx1.stuckid.test\nmx: mx2.stuckid.test\nmax_age: 2419200\n');
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CID').map(textOf).join()).toContain('Policy changed but the id did not');
    expect((await rig.runtime.checks.last('stuckid.test'))?.findings.map((f) => f.code)).toContain(
      'STS_ID_NOT_UPDATED',
    );
    rig.advance(3600_000);
    await rig.pass(); // still stuck: no repeat
    expect(posts('CID')).toHaveLength(1);
    lab.set('_mta-sts.stuckid.test', { TXT: ['v=STSv1; id=20261201T000000'] });
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CID')).toHaveLength(2);
    expect(textOf(posts('CID')[1])).toContain('the id changed to 20261201T000000');
    await rig.runtime.close();
  });

  test('the policy host down for one pass is a blip; down for two alerts; back up recovers with the duration', async () => {
    await lab.domain('flaky.test');
    const rig = await Rig.create();
    await rig.watch('flaky.test', 'CFLAKY');
    await rig.pass();
    const server = policyHostOf('flaky.test');
    const healthy = server.handler;
    const down = (_req: unknown, res: { socket: { destroy(): void } | null }) => res.socket?.destroy();
    server.handler = down as never;
    rig.advance(3600_000);
    await rig.pass();
    server.handler = healthy;
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CFLAKY')).toHaveLength(0);
    server.handler = down as never;
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CFLAKY')).toHaveLength(0);
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CFLAKY')).toHaveLength(1);
    expect(textOf(posts('CFLAKY')[0])).toContain('Policy could not be fetched');
    // A day later it is still down: a reminder in the thread, broadcast to the channel.
    rig.advance(25 * 3600_000);
    await rig.pass();
    expect(posts('CFLAKY')).toHaveLength(2);
    expect(String(posts('CFLAKY')[1]?.body.text)).toContain('still');
    expect(posts('CFLAKY')[1]?.body.reply_broadcast).toBe('true');
    server.handler = healthy;
    rig.advance(3600_000);
    await rig.pass();
    const recovered = posts('CFLAKY')[2];
    expect(textOf(recovered)).toContain('recovered: Policy could not be fetched');
    expect(textOf(recovered)).toContain('after 27 hours'); // first seen 27 h before the pass that saw it fixed
    expect(recovered?.body.thread_ts).toBe(threadRootTs('CFLAKY'));
    await rig.runtime.close();
  });

  test('testing with no errors for 14 days: ready to enforce, with the records', async () => {
    await lab.domain('ready.test', { mode: 'testing' });
    const rig = await Rig.create();
    await rig.watch('ready.test', 'CREADY');
    await rig.pass();
    rig.advance(7 * DAY);
    await rig.pass();
    expect(posts('CREADY')).toHaveLength(0);
    rig.advance(7 * DAY + 3600_000);
    await rig.pass();
    await rig.pass();
    expect(posts('CREADY')).toHaveLength(1);
    const text = textOf(posts('CREADY')[0]);
    expect(text).toContain('Ready to move from testing to enforce');
    expect(text).toContain('mode: enforce');
    expect(text).toContain('_mta-sts.ready.test.');
    await rig.runtime.close();
  });

  test('muted channels hear nothing until unmuted', async () => {
    await lab.domain('muted.test');
    const rig = await Rig.create();
    await rig.watch('muted.test', 'CMUTED');
    await rig.watch('muted.test', 'CLOUD');
    await rig.pass();
    await rig.runtime.subscriptions.setMute(
      'T1',
      'CMUTED',
      'muted.test',
      new Date(rig.clock.getTime() + DAY),
    );
    lab.set('_mta-sts.muted.test', { TXT: ['v=STSv1; id=bad-id'] });
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CLOUD')).toHaveLength(1);
    expect(posts('CMUTED')).toHaveLength(0);
    // A day later the mute has run out: the reminder reaches both channels.
    rig.advance(DAY);
    await rig.pass();
    expect(posts('CLOUD')).toHaveLength(2);
    expect(posts('CMUTED')).toHaveLength(1);
    expect(String(posts('CMUTED')[0]?.body.text)).toContain('still');
    await rig.runtime.close();
  });
});

test('one-off checks of unwatched domains, delivered alerts and old passes are forgotten after 30 days', async () => {
  await lab.domain('kept.test');
  const rig = await Rig.create();
  await rig.watch('kept.test', 'CKEPT');
  const oneOff = await rig.runtime.engine.check({ ascii: 'kept.test', unicode: 'kept.test' });
  await rig.runtime.checks.save({ ...oneOff, domain: 'oneoff.test', domainUnicode: 'oneoff.test' });
  await rig.pass();
  expect((await rig.runtime.checks.last('oneoff.test'))?.domain).toBe('oneoff.test');
  rig.advance(31 * DAY);
  await rig.pass();
  expect(await rig.runtime.checks.last('oneoff.test')).toBeNull();
  expect((await rig.runtime.checks.last('kept.test'))?.checkedAt).toBe(rig.clock.toISOString());
  await rig.runtime.close();
});

describe('delivery that loses nothing', () => {
  test('429 and 500 for a while: retried later, each alert posted exactly once, in order', async () => {
    await lab.domain('retry.test');
    const rig = await Rig.create();
    await rig.watch('retry.test', 'CRETRY');
    await rig.pass();
    let failures = 0;
    slack.handlers.set('chat.postMessage', (call) => {
      if (call.body.channel !== 'CRETRY') return { json: { ok: true, ts: `${Date.now()}.1` } };
      failures++;
      return failures % 2 === 1
        ? { status: 429, headers: { 'Retry-After': '30' }, json: { ok: false, error: 'ratelimited' } }
        : { status: 500, json: { ok: false, error: 'internal_error' } };
    });
    lab.set('_mta-sts.retry.test', { TXT: ['v=STSv1; id=x-1'] });
    delete lab.dns.zone['_smtp._tls.retry.test'];
    rig.advance(3600_000);
    const s = await rig.pass();
    expect(s.alerts).toBe(2);
    expect(s.delivery.retrying).toBe(1); // the first alert; the second waits behind it
    for (let i = 0; i < 3; i++) {
      rig.advance(2 * 3600_000);
      await rig.runtime.monitor.deliver();
    }
    expect(await rig.runtime.monitorStore.countByState()).toEqual({ pending: 2 });
    slack.handlers.delete('chat.postMessage');
    rig.advance(2 * 3600_000);
    const d = await rig.runtime.monitor.deliver();
    expect(d.sent).toBe(2);
    const sent = posts('CRETRY').filter((c) => c.body.channel === 'CRETRY');
    // Every attempt reached the API; exactly two succeeded, and none is posted again.
    const delivered = sent.slice(-2).map((c) => String(c.body.text));
    expect(delivered[0]).toContain('MTA-STS record is malformed');
    expect(delivered[1]).toContain('No TLS-RPT record');
    rig.advance(3600_000);
    expect((await rig.runtime.monitor.deliver()).sent).toBe(0);
    expect(await rig.runtime.monitorStore.countByState()).toEqual({ sent: 2 });
    await rig.runtime.close();
  });

  test('a restart between writing and posting sends each alert once', async () => {
    await lab.domain('crash.test');
    const rig = await Rig.create();
    await rig.watch('crash.test', 'CCRASH');
    await rig.runtime.monitor.checkOne('crash.test');
    lab.set('_mta-sts.crash.test', { TXT: ['v=STSv1; id=no-good'] });
    rig.advance(3600_000);
    // The state change and its alert are committed, then the process "dies" before delivering.
    await rig.runtime.monitor.checkOne('crash.test');
    expect(posts('CCRASH')).toHaveLength(0);
    await rig.restart();
    expect((await rig.runtime.monitor.deliver()).sent).toBe(1);
    expect((await rig.runtime.monitor.deliver()).sent).toBe(0);
    rig.advance(3600_000);
    await rig.pass();
    expect(posts('CCRASH')).toHaveLength(1);
    await rig.runtime.close();
  });

  test("a pass interrupted by a crash is taken up where it stopped: the dead process's page at once, its stored domains not again", async () => {
    const rig = await Rig.create();
    for (const d of ['resume-a.test', 'resume-b.test', 'resume-c.test']) {
      await lab.domain(d);
      await rig.watch(d, 'CRES');
    }
    // A process of this host that is no longer running began a pass in pages of 2, stored resume-a.test, and died.
    const dead = new PassStore(rig.runtime.db, `${hostname()}:2147483646`);
    const open = await dead.begin(rig.clock, null);
    if (open.kind !== 'open') throw new Error('no pass');
    await dead.plan(open.id, 2);
    const claim = await dead.claim(open.id, rig.clock, 60_000);
    expect(claim).toMatchObject({ seq: 0, after: '', upto: 'resume-b.test' });
    if (!claim) throw new Error('no page');
    await rig.runtime.db.transaction(() => dead.record(claim, 'resume-a.test'));
    await rig.restart();
    const s = await rig.pass();
    expect(s).toMatchObject({ passId: open.id, resumed: true, domains: 2, pages: 2, ended: true });
    expect(await rig.runtime.checks.last('resume-a.test')).toBeNull();
    expect((await rig.runtime.checks.last('resume-b.test'))?.domain).toBe('resume-b.test');
    expect((await rig.runtime.checks.last('resume-c.test'))?.domain).toBe('resume-c.test');
    const next = await rig.pass();
    expect(next).toMatchObject({ resumed: false, domains: 3, ended: true });
    await rig.runtime.close();
  });

  test('a channel the bot was removed from: logged, its subscriptions paused, not retried', async () => {
    await lab.domain('gone.test');
    const rig = await Rig.create();
    await rig.watch('gone.test', 'CGONE');
    await rig.pass();
    slack.handlers.set('chat.postMessage', (call) =>
      call.body.channel === 'CGONE'
        ? { json: { ok: false, error: 'not_in_channel' } }
        : { json: { ok: true, ts: '1.1' } },
    );
    lab.set('_mta-sts.gone.test', { TXT: [] });
    rig.advance(3600_000);
    const s = await rig.pass();
    slack.handlers.delete('chat.postMessage');
    expect(s.delivery.channelsPaused).toBe(1);
    expect(logs.join('\n')).toContain('alerts to channel CGONE (team T1) stopped: not_in_channel');
    expect(await rig.runtime.subscriptions.get('T1', 'CGONE', 'gone.test')).toMatchObject({
      pausedAt: rig.clock.toISOString(),
    });
    const attempts = posts('CGONE').length;
    rig.advance(3 * 3600_000);
    await rig.pass();
    expect(posts('CGONE')).toHaveLength(attempts);
    await rig.runtime.close();
  });
});

test('mtasts sweep runs one pass and reports it', async () => {
  await lab.domain('sweep.test');
  const rig = await Rig.create();
  await rig.watch('sweep.test', 'CSWEEP');
  await rig.runtime.close();
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['sweep'], {
    env: cliEnv({
      SLACK_BOT_TOKEN: 'xoxb-test',
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: rig.dbPath,
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    }),
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    engine: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort },
  });
  expect(err.join('')).toBe('');
  expect(code).toBe(0);
  expect(out.join('')).toMatch(/^sweep: ran pass 1: 1 domain\(s\) checked here, 0 could not be/);
});

test('mtasts sweep without any Slack setting runs the watch list and writes its alerts to the log', async () => {
  await lab.domain('logonly.test', { mode: 'enforce' });
  lab.set('mta-sts.logonly.test', { A: [lab.newAddress()] }); // nothing serves the policy
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-sweep-'));
  const env = cliEnv({
    DATABASE_PATH: join(dir, 'db.sqlite'),
    MTASTS_DNS_SERVERS: lab.dns.address,
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
  });
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, {
      env,
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      engine: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort },
    });
    return { code, out: out.join(''), err: err.join('') };
  };
  expect((await run(['watch', 'add', 'logonly.test'])).code).toBe(0);
  const first = await run(['sweep']);
  expect(first.code).toBe(0);
  expect(first.out).toMatch(/^sweep: ran pass 1: 1 domain\(s\) checked here, 0 could not be/);
  expect(first.err).not.toContain('SLACK_BOT_TOKEN');
  // A failed policy fetch alerts at its second pass in a row: the alert goes to the log.
  const second = await run(['sweep']);
  expect(second.code).toBe(0);
  expect(second.err).toContain('logonly.test');
  expect(second.err).toContain('Policy could not be fetched');
});

/** The ts Slack gave the first message posted to a channel: the root of its alert thread. */
function threadRootTs(channel: string): string | undefined {
  return posts(channel)[0]?.ts;
}

describe('a pass at scale', () => {
  test('each distinct MX endpoint is probed once per pass, and DNS answers are reused', async () => {
    const rig = await Rig.create();
    await lab.mxHost('mx1.shared-provider.test');
    await lab.mxHost('mx2.shared-provider.test');
    for (const d of ['s1.test', 's2.test', 's3.test']) {
      await lab.domain(d, {
        mxHosts: [],
        policy: 'version: STSv1\nmode: enforce\nmx: *.shared-provider.test\nmax_age: 1209600\n',
      });
    }
    for (const d of ['s1.test', 's2.test', 's3.test']) {
      lab.set(d, {
        MX: [
          { preference: 10, exchange: 'mx1.shared-provider.test' },
          { preference: 20, exchange: 'mx2.shared-provider.test' },
        ],
      });
      await rig.watch(d, 'CSCALE');
    }
    const s = await rig.pass();
    expect(s.domains).toBe(3);
    expect(s.network.probes).toBe(2);
    expect(s.network.probeHits).toBe(4);
    // Each MX host's address was asked once, and reused for the other 2 domains: 2 hosts x 2 domains.
    expect(s.network.dnsHits).toBe(4);
    // The time spent in SQLite is wall time: only that it was measured is asserted, not how much.
    expect(s.sqliteMs).toBeGreaterThan(0);
    expect((await rig.runtime.checks.last('s1.test'))?.findings).toEqual([]);
    await rig.runtime.close();
  });

  test('at most the configured number of SMTP connections to one address at a time', async () => {
    let open = 0;
    let most = 0;
    const slowGreeting = async () => {
      open++;
      most = Math.max(most, open);
      await new Promise((r) => setTimeout(r, 50));
      open--;
    };
    await lab.mxHost('pool.busy-provider.test', { onConnect: slowGreeting });
    const address = lab.dns.zone['pool.busy-provider.test']?.A ?? [];
    const rig = await Rig.create();
    await rig.runtime.close();
    rig.runtime = await rig.open({
      concurrency: 16,
      cache: { smtpPerAddress: 2, smtpConcurrency: 64, defaultTtlMs: 60_000 },
    });
    // Eight domains, each with its own MX name, all on the one address of a busy provider.
    for (let i = 0; i < 8; i++) {
      const d = `busy${i}.test`;
      lab.set(d, { MX: [{ preference: 10, exchange: `mx.busy${i}.test` }] });
      lab.set(`mx.busy${i}.test`, { A: address });
      await rig.watch(d, 'CBUSY');
    }
    const s = await rig.pass();
    expect(s.network.probes).toBe(8);
    expect(most).toBe(2);
    await rig.runtime.close();
  });
});

describe('one pass shared by the processes on the database', () => {
  test('a page held by a live process on another host is left to it until its lease runs out, then taken over', async () => {
    const rig = await Rig.create();
    for (const d of ['share-a.test', 'share-b.test']) {
      await lab.domain(d);
      await rig.watch(d, 'CSHARE');
    }
    const { other, open, claim } = await anotherHoldsFirstPage(rig, 1);
    expect(claim).toMatchObject({ seq: 0, upto: 'share-a.test' });
    const running = rig.runtime.monitor.runPass();
    // This process takes the free page, then waits for the other one's: the pass is not over.
    await until(async () => (await rig.runtime.checks.last('share-b.test')) !== null);
    expect(await rig.runtime.monitor.runPass()).toBeNull(); // one pass at a time in a process
    await new Promise((r) => setTimeout(r, 300));
    expect(await rig.runtime.checks.last('share-a.test')).toBeNull();
    expect(await rig.runtime.monitorStore.hasUnfinishedPass()).toBe(true);
    rig.advance(60_001); // the other host's lease runs out
    const s = await running;
    expect(s).toMatchObject({ passId: open.id, resumed: true, domains: 2, pages: 2, ended: true });
    expect((await rig.runtime.checks.last('share-a.test'))?.domain).toBe('share-a.test');
    expect(await rig.runtime.monitorStore.hasUnfinishedPass()).toBe(false);
    // The late process finds its page taken and stores nothing of it.
    const late = await other.renew(
      { passId: open.id, seq: 0, after: '', upto: 'share-a.test' },
      rig.clock,
      60_000,
    );
    expect(late).toBe(false);
    await rig.runtime.close();
  });

  test('replicas firing for the same tick share its pass; one firing after it ended does nothing', async () => {
    await lab.domain('tick.test');
    const rig = await Rig.create();
    await rig.watch('tick.test', 'CTICK');
    const slot = '2026-11-29T20:00:00.000Z';
    const first = await rig.runtime.monitor.runPass(slot);
    expect(first).toMatchObject({ domains: 1, ended: true });
    const again = await rig.runtime.monitor.runPass(slot);
    expect(again).toMatchObject({ passId: first?.passId, alreadyRun: true, domains: 0 });
    const next = await rig.runtime.monitor.runPass('2026-11-29T21:00:00.000Z');
    expect(next).toMatchObject({ domains: 1, ended: true });
    expect(next?.passId).not.toBe(first?.passId);
    await rig.runtime.close();
  });

  test('mtasts sweep joins the pass under way and checks the pages nobody holds', async () => {
    const rig = await Rig.create();
    for (const d of ['sweep-a.test', 'sweep-b.test']) {
      await lab.domain(d);
      await rig.watch(d, 'CSWEEP');
    }
    const { claim } = await anotherHoldsFirstPage(rig, 1);
    await rig.runtime.close();
    const out: string[] = [];
    const swept = main(['sweep'], {
      env: cliEnv({
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_API_URL: slack.apiUrl,
        DATABASE_PATH: rig.dbPath,
        MTASTS_DNS_SERVERS: lab.dns.address,
      }),
      stdout: (t) => out.push(t),
      stderr: () => {},
      engine: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort },
    });
    // The other process finishes its page meanwhile: the sweep then ends the pass.
    rig.runtime = await rig.open();
    await until(async () => (await rig.runtime.checks.last('sweep-b.test')) !== null);
    const again = new PassStore(rig.runtime.db, 'another-host:4242');
    await rig.runtime.db.transaction(() => again.record(claim, 'sweep-a.test'));
    expect(await again.pageDone(claim, new Date())).toBe(true);
    expect(await swept).toBe(0);
    expect(out.join('')).toMatch(/^sweep: resumed pass \d+: 1 domain\(s\) checked here, 0 could not be/);
    expect(await rig.runtime.monitorStore.hasUnfinishedPass()).toBe(false);
    await rig.runtime.close();
  });
});

/** A process of another host begins a pass in pages of `pageSize` and holds its first page (lease 60 s by the rig's clock). */
async function anotherHoldsFirstPage(rig: Rig, pageSize: number) {
  const other = new PassStore(rig.runtime.db, 'another-host:4242');
  const open = await other.begin(rig.clock, null);
  if (open.kind !== 'open') throw new Error('no pass');
  await other.plan(open.id, pageSize);
  const claim = await other.claim(open.id, rig.clock, 60_000);
  if (!claim) throw new Error('no page');
  return { other, open, claim };
}

/** A domain whose policy host holds every request until `release()`; `asked()` counts them. */
async function heldDomain(domain: string): Promise<{ asked: () => number; release: () => void }> {
  const text = `version: STSv1\nmode: enforce\nmx: mx1.${domain}\nmx: mx2.${domain}\nmax_age: 1209600\n`;
  let asked = 0;
  let open = false;
  const waiting: (() => void)[] = [];
  await lab.domain(domain, {
    policy: (req, res) => {
      asked++;
      const answer = () => servePolicy(text)(req, res);
      if (open) answer();
      else waiting.push(answer);
    },
  });
  return {
    asked: () => asked,
    release: () => {
      open = true;
      for (const answer of waiting.splice(0)) answer();
    },
  };
}

/** The open pass's id, and who holds its pages. */
async function openPass(rig: Rig): Promise<{ id: number; holders: (string | null)[] }> {
  const pass = await rig.runtime.db.get<{ id: number }>(sql`SELECT id FROM monitor_passes WHERE is_open = 1`);
  const pages = await rig.runtime.db.all<{ claimed_by: string | null }>(
    sql`SELECT claimed_by FROM monitor_pages WHERE pass_id = ${pass?.id ?? 0} ORDER BY seq`,
  );
  return { id: Number(pass?.id), holders: pages.map((p) => p.claimed_by) };
}

describe('a page in the hands of one process', () => {
  test('its lease is renewed while its checks run: another process cannot take it, whatever the clock says', async () => {
    const rig = await Rig.create();
    await rig.runtime.close();
    rig.runtime = await rig.open({ pageLeaseMs: 300 });
    const slow = await heldDomain('beat.test');
    await rig.watch('beat.test', 'CBEAT');
    const running = rig.pass();
    await until(async () => slow.asked() > 0);
    rig.advance(10_000); // thirty leases later by the clock: only the renewals keep the page
    await new Promise((r) => setTimeout(r, 400));
    const { id } = await openPass(rig);
    expect(await new PassStore(rig.runtime.db, 'another-host:1').claim(id, rig.clock, 300)).toBeNull();
    slow.release();
    expect(await running).toMatchObject({ domains: 1, pages: 1, pagesLost: 0, ended: true });
    await rig.runtime.close();
  });

  test('taken over by another process meanwhile: nothing of it is stored here and its other domains are not checked', async () => {
    const rig = await Rig.create();
    await rig.runtime.close();
    rig.runtime = await rig.open({ concurrency: 1 });
    const first = await heldDomain('lost-a.test');
    await lab.domain('lost-b.test');
    await rig.watch('lost-a.test', 'CLOST');
    await rig.watch('lost-b.test', 'CLOST');
    const running = rig.pass();
    await until(async () => first.asked() > 0);
    // This process stalls past its lease (the clock jumps; the renewal is 20 s away): another takes the page.
    rig.advance(120_000);
    const { id } = await openPass(rig);
    const other = new PassStore(rig.runtime.db, 'another-host:1');
    const taken = await other.claim(id, rig.clock, 60_000);
    expect(taken?.seq).toBe(0);
    first.release();
    if (!taken) throw new Error('no page');
    expect(await other.pageDone(taken, rig.clock)).toBe(true);
    const s = await running;
    expect(s).toMatchObject({ domains: 0, pages: 0, pagesLost: 1, ended: true });
    expect(await rig.runtime.checks.last('lost-a.test')).toBeNull();
    // lost-b.test (after lost-a.test in the page) was never checked here: its policy host was not asked.
    expect(lab.https.some((h) => h.requests.some((r) => r.host === 'mta-sts.lost-b.test'))).toBe(false);
    await rig.runtime.close();
  });

  test("waiting for another process's page, a process looks less and less often instead of hammering the database", async () => {
    const rig = await Rig.create();
    await lab.domain('wait-a.test');
    await rig.watch('wait-a.test', 'CWAIT');
    const { other, claim: page } = await anotherHoldsFirstPage(rig, 100);
    const claims = vi.spyOn(PassStore.prototype, 'claim');
    try {
      const running = rig.pass();
      await new Promise((r) => setTimeout(r, 2000));
      // 250 ms, then 500, 1000…: a handful of looks in two seconds (a loop without its pause makes thousands).
      expect(claims.mock.calls.length).toBeGreaterThanOrEqual(2);
      expect(claims.mock.calls.length).toBeLessThanOrEqual(8);
      await other.pageDone(page, rig.clock);
      expect(await running).toMatchObject({ domains: 0, pages: 0, ended: true });
    } finally {
      claims.mockRestore();
    }
    await rig.runtime.close();
  });

  test('stopping gives the page back: the next process takes it up at once', async () => {
    const rig = await Rig.create();
    const slow = await heldDomain('stop-a.test');
    await rig.watch('stop-a.test', 'CSTOP');
    const running = rig.pass();
    await until(async () => slow.asked() > 0);
    expect((await openPass(rig)).holders).toEqual([expect.stringContaining(hostname())]);
    await rig.runtime.monitor.stop();
    expect(await running).toMatchObject({ interrupted: true, domains: 0 });
    const { id, holders } = await openPass(rig);
    expect(holders).toEqual([null]);
    expect((await new PassStore(rig.runtime.db, 'another-host:1').claim(id, rig.clock, 60_000))?.seq).toBe(0);
    slow.release();
    await rig.runtime.close();
  });
});

async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
