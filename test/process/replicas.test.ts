import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Db, openPostgres, sql } from '../../src/store/db.js';
import { PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { type AppProcess, eventually, startApp } from '../support/app-process.js';
import { postgresUrlFor } from '../support/config.js';
import { FakeSlack } from '../support/fake-slack.js';
import { servePolicy, TestHttpsServer } from '../support/https-server.js';
import { Lab } from '../support/lab.js';
import { TestSmtpServer } from '../support/smtp-server.js';

/**
 * Two replicas of npm start's own process (dist/main.js) on one PostgreSQL database, configured only by their
 * environment, over 300 watched domains whose policy hosts and MX are real servers on loopback (ports 443 and 25 of
 * addresses of their own: root, as this project's machines and CI are). One replica runs in a UTS namespace under
 * another host name, so that it stands for a replica on another machine: its pages are taken over only when their lease
 * runs out. The policy host can hold its answers (a gate) so that the test decides when each replica's checks end.
 */
const isRoot = process.getuid?.() === 0;
const N = 300;
const name = (i: number) => `r${String(i).padStart(3, '0')}.test`;
const indexOf = (domain: string) => Number(/^r(\d{3})\.test$/.exec(domain)?.[1] ?? -1);
const POLICY_ONE = 'version: STSv1\nmode: enforce\nmx: mx.replicas.test\nmax_age: 1209600\n';
// The same id in DNS with another policy text: every domain's check finds "policy changed without a new id".
const POLICY_TWO = 'version: STSv1\nmode: enforce\nmx: mx.replicas.test\nmax_age: 604800\n';
/** A schedule that does not fire during the test: passes are begun by the test, and taken up at start. */
const YEARLY = '0 0 1 1 *';
const MIGRATIONS = readdirSync(new URL('../../db/migrations', import.meta.url)).filter((f) =>
  f.endsWith('.sql'),
).length;

let lab: Lab;
let slack: FakeSlack;
let https: TestHttpsServer;
let smtp: TestSmtpServer;
let db: Db;
let url: string;
const dir = mkdtempSync(join(tmpdir(), 'mtasts-replicas-'));
const caFile = join(dir, 'ca.pem');

let policy = POLICY_ONE;
/** Policy requests per domain since the last reset: each check fetches its domain's policy once. */
const requests = new Map<string, number>();
/** Which domains' policy requests are answered now; the others wait until it lets them through. */
let gate: (i: number) => boolean = () => true;
let held: { i: number; answer: () => void }[] = [];

function flush(): void {
  const now = held.filter((h) => gate(h.i));
  held = held.filter((h) => !gate(h.i));
  for (const h of now) h.answer();
}

function policyHost(req: IncomingMessage, res: ServerResponse): void {
  const domain = String(req.headers.host ?? '')
    .replace(/:\d+$/, '')
    .replace(/^mta-sts\./, '');
  requests.set(domain, (requests.get(domain) ?? 0) + 1);
  const text = policy;
  const answer = () => {
    if (!res.destroyed) servePolicy(text)(req, res);
  };
  const i = indexOf(domain);
  if (gate(i)) answer();
  else held.push({ i, answer });
}

beforeAll(async () => {
  if (!isRoot) return;
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  writeFileSync(caFile, lab.ca.rootPem);
  const policyAddress = lab.newAddress();
  const mxAddress = lab.newAddress();
  const names = Array.from({ length: N }, (_, i) => name(i));
  https = await TestHttpsServer.start(
    lab.cert(names.map((d) => `mta-sts.${d}`)),
    policyHost,
    policyAddress,
    443,
  );
  smtp = await TestSmtpServer.start({ cert: lab.cert(['mx.replicas.test']) }, mxAddress, 25);
  lab.set('mx.replicas.test', { A: [mxAddress] });
  for (const d of names) {
    lab.set(d, { MX: [{ preference: 10, exchange: 'mx.replicas.test' }] });
    lab.set(`mta-sts.${d}`, { A: [policyAddress] });
    lab.set(`_mta-sts.${d}`, { TXT: ['v=STSv1; id=replicas1'] });
    lab.set(`_smtp._tls.${d}`, { TXT: ['v=TLSRPTv1; rua=mailto:tls@replicas.test'] });
  }
  url = postgresUrlFor(join(dir, 'replicas'));
});
afterAll(async () => {
  if (!isRoot) return;
  gate = () => true;
  flush();
  await db?.close();
  await Promise.all([https.stop(), smtp.stop(), slack.stop(), lab.stop()]);
});

function env(schedule: string): Record<string, string> {
  return {
    SLACK_BOT_TOKEN: 'xoxb-replicas',
    SLACK_SIGNING_SECRET: 'replicas-secret',
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    DATABASE_URL: url,
    MTASTS_DNS_SERVERS: lab.dns.address,
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    NODE_EXTRA_CA_CERTS: caFile,
    MTASTS_SCHEDULE: schedule,
    MTASTS_MONITOR_PAGE_LEASE_MS: '3000',
    // Longer than the gate holds a check: a held check must not end as a failure of its own.
    MTASTS_TIMEOUT_MS: '60000',
    TZ: 'UTC',
  };
}

/** The processes holding a page of the open pass, and how many domains each has stored in it. */
async function holders(): Promise<Map<string, number>> {
  const rows = await db.all<{ holder: string; stored: number }>(
    sql`SELECT p.claimed_by AS holder,
          (SELECT COUNT(*) FROM monitor_pass_checks c WHERE c.pass_id = p.pass_id AND c.checked_by = p.claimed_by) AS stored
        FROM monitor_pages p JOIN monitor_passes s ON s.id = p.pass_id
        WHERE s.is_open = 1 AND p.done_at IS NULL AND p.claimed_by IS NOT NULL`,
  );
  return new Map(rows.map((r) => [r.holder, Number(r.stored)]));
}

async function openPasses(): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM monitor_passes WHERE is_open = 1`);
  return Number(row?.n ?? 0);
}

/** The line each replica logs at the end of its share of a pass: domains it checked, pages, whether it ended it. */
function shareOf(app: AppProcess, passId: number): { domains: number; pages: number; ended: boolean } | null {
  const m = new RegExp(
    `monitor: pass ${passId}: (\\d+) domain\\(s\\) checked here in (\\d+) page\\(s\\)(, pass ended)?`,
  ).exec(app.output());
  return m ? { domains: Number(m[1]), pages: Number(m[2]), ended: m[3] !== undefined } : null;
}

const alertPosts = () =>
  slack.callsTo('chat.postMessage').filter((c) => /^C\d{3}$/.test(String(c.body.channel)));

describe.runIf(isRoot)('two replicas on one PostgreSQL database', () => {
  let passOne = 0;

  test('started at the same moment on an empty database, they migrate it once', async () => {
    const a = startApp(env(YEARLY), { hostname: 'replica-a' });
    const b = startApp(env(YEARLY));
    try {
      await Promise.all([a.port(30_000), b.port(30_000)]);
      const applied = [a, b].filter((p) => p.output().includes('database: applied'));
      expect(applied).toHaveLength(1);
      expect(applied[0]?.output()).toContain(`database: applied ${MIGRATIONS} migration(s)`);
      expect(`${a.output()}${b.output()}`).not.toMatch(/error|failed/i);
      db = await openPostgres(url);
      const versions = await db.all<{ version: number }>(sql`SELECT version FROM schema_migrations`);
      expect(versions).toHaveLength(MIGRATIONS);
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    }
  }, 120_000);

  test("the cron tick's pass is shared by both replicas, each domain checked once", async () => {
    expect(db).toBeDefined();
    const subscriptions = new SubscriptionStore(db);
    for (let i = 0; i < N; i++)
      await subscriptions.watch('T1', `C${String(i).padStart(3, '0')}`, name(i), 'U1', N, new Date());
    // One tick, 15 seconds from now (node-cron, to the second, in UTC): both replicas fire for it.
    const tick = new Date(Math.ceil((Date.now() + 15_000) / 1000) * 1000);
    const schedule = `${tick.getUTCSeconds()} ${tick.getUTCMinutes()} ${tick.getUTCHours()} * * *`;
    gate = () => false; // every check waits at the policy host until both replicas hold a page
    const a = startApp(env(schedule), { hostname: 'replica-a' });
    const b = startApp(env(schedule));
    try {
      await eventually(async () => (await holders()).size === 2, 'both replicas hold a page', 60_000);
      const who = [...(await holders()).keys()].sort();
      expect(who).toEqual([
        expect.stringMatching(/^replica-a:\d+(:\d+)?$/),
        expect.stringMatching(/^[^:]+:\d+(:\d+)?$/),
      ]);
      gate = () => true;
      flush();
      await eventually(async () => (await openPasses()) === 0, 'the pass ended', 60_000);
      const pass = await db.get<{ id: number; domains: number; slot: string }>(
        sql`SELECT p.id, p.domains, t.slot FROM monitor_passes p JOIN monitor_pass_ticks t ON t.pass_id = p.id
            WHERE p.domains > 0`,
      );
      expect(pass).toEqual({ id: expect.any(Number), domains: N, slot: tick.toISOString() });
      passOne = Number(pass?.id);
      // Each domain's policy was fetched once: checked once, by one replica or the other.
      expect(requests.size).toBe(N);
      expect([...requests.values()].every((n) => n === 1)).toBe(true);
      await eventually(
        async () => shareOf(a, passOne) !== null && shareOf(b, passOne) !== null,
        'both logged',
      );
      const shares = [shareOf(a, passOne), shareOf(b, passOne)];
      expect(shares.map((s) => s?.domains ?? 0).reduce((x, y) => x + y)).toBe(N);
      expect(shares.every((s) => (s?.domains ?? 0) > 0)).toBe(true);
      expect(shares.filter((s) => s?.ended)).toHaveLength(1);
      expect(alertPosts()).toHaveLength(0); // a first pass over healthy domains is a silent baseline
    } finally {
      gate = () => true;
      flush();
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    }
  }, 180_000);

  test('one replica killed with SIGKILL mid-page: the other takes its page over when the lease runs out, skips what it stored, and every alert is posted once', async () => {
    expect(passOne).toBeGreaterThan(0);
    policy = POLICY_TWO;
    requests.clear();
    // The first 40 domains of each page are answered; the rest wait: each replica stores 40, then waits.
    gate = (i) => i % 100 < 40;
    const runner = new PassStore(db, 'test-runner:1');
    const begun = await runner.begin(new Date(), null);
    if (begun.kind !== 'open' || begun.resumed) throw new Error(`no new pass: ${JSON.stringify(begun)}`);
    await runner.plan(begun.id, 100);
    const a = startApp(env(YEARLY), { hostname: 'replica-a' });
    const b = startApp(env(YEARLY));
    try {
      await Promise.all([
        a.logged('monitor: resuming the pass', 30_000),
        b.logged('monitor: resuming the pass', 30_000),
      ]);
      await eventually(
        async () => {
          const h = await holders();
          return h.size === 2 && [...h.values()].every((n) => n === 40);
        },
        'each replica stored the 40 answered domains of its page',
        60_000,
      );
      const killed = [...(await holders()).keys()].find((h) => h.startsWith('replica-a:')) as string;
      expect(killed).toMatch(new RegExp(`^replica-a:${a.child.pid}(:\\d+)?$`));
      const stored = (
        await db.all<{ domain: string }>(
          sql`SELECT domain FROM monitor_pass_checks WHERE pass_id = ${begun.id} AND checked_by = ${killed}`,
        )
      ).map((r) => r.domain);
      expect(stored).toHaveLength(40);
      a.child.kill('SIGKILL');
      await a.exited;
      gate = () => true;
      flush();
      await eventually(async () => (await openPasses()) === 0, 'the survivor ended the pass', 60_000);
      await eventually(async () => shareOf(b, begun.id) !== null, 'the survivor logged its share');
      // The survivor checked everything the killed one had not stored: its own page, the free one, the taken one.
      expect(shareOf(b, begun.id)).toEqual({ domains: N - 40, pages: 3, ended: true });
      // The pass counts what every replica stored, the killed one's 40 included.
      expect(await db.get(sql`SELECT domains FROM monitor_passes WHERE id = ${begun.id}`)).toEqual({
        domains: N,
      });
      // What the killed replica stored was not checked again; a check it had under way was (its result was lost).
      for (const d of stored) expect(requests.get(d), d).toBe(1);
      const page = Math.floor(indexOf(stored[0] as string) / 100);
      for (let i = 0; i < N; i++) {
        const n = requests.get(name(i)) ?? 0;
        if (Math.floor(i / 100) === page && i % 100 >= 40) expect([1, 2], name(i)).toContain(n);
        else expect(n, name(i)).toBe(1);
      }
      // Every domain's alert (the killed replica's 40 included, from the outbox it wrote) reaches Slack once.
      // The survivor posts them after its pass; one whose post failed (a slow answer under load) is tried again at its
      // next round (a minute at most).
      await eventually(async () => alertPosts().length >= N, `${N} alerts posted`, 100_000).catch(
        async (err) => {
          const states = await db.all(
            sql`SELECT state, claimed_by, COUNT(*) AS n FROM outbox GROUP BY state, claimed_by`,
          );
          const tail = b.output().split('\n').slice(-15).join('\n');
          throw new Error(
            `${(err as Error).message}: ${alertPosts().length} posted; outbox ${JSON.stringify(states)}; survivor:\n${tail}`,
          );
        },
      );
      await new Promise((r) => setTimeout(r, 2000));
      const posts = alertPosts();
      expect(posts).toHaveLength(N);
      for (let i = 0; i < N; i++) {
        const mine = posts.filter((p) => p.body.channel === `C${String(i).padStart(3, '0')}`);
        expect(mine, name(i)).toHaveLength(1);
        expect(String(mine[0]?.body.text)).toContain(name(i));
      }
      const outbox = await db.all<{ state: string; n: number }>(
        sql`SELECT state, COUNT(*) AS n FROM outbox GROUP BY state`,
      );
      expect(outbox).toEqual([{ state: 'sent', n: N }]);
    } finally {
      gate = () => true;
      flush();
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    }
  }, 300_000);
});
