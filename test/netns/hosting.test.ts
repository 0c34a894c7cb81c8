import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Report } from '../../src/core/check.js';
import { buildIfStale, Netns, netnsUnavailable } from '../support/netns.js';
import {
  HostingRig,
  type PolicyAnswer,
  type RigStarted,
  type SlackSeen,
} from '../support/netns-hosting-rig.js';
import { pebbleMissing } from '../support/pebble.js';

/**
 * Hosted MTA-STS on the path a production user runs, with the DEFAULT network settings (private networks refused):
 * npm start's own process (dist/main.js) configured only by its environment, Slack's signed slash commands, Debian's
 * pebble validating over tls-alpn-01 on the real port 443 of the bot's public address, and the real `mtasts` binary
 * checking the hosted domain; everything inside a network namespace made for this test, on public addresses of its
 * `lo` (DNS on 53, the bot's policy listener on 443, the MX host on 25), so nothing leaves the machine.
 */

const unavailable = netnsUnavailable() ?? pebbleMissing();
if (unavailable) {
  console.warn(
    `SKIPPED test/netns/hosting.test.ts: ${unavailable}; the production-path test of hosted MTA-STS needs root, "ip netns" and Debian's pebble (CI has all three).`,
  );
}

const DNS = '11.2.0.53';
const BOT = '11.2.0.43';
const MX = '11.2.0.25';
const BOT_NAME = 'policy.bot.example';
const DOMAIN = 'hosted.test';
const POLICY_HOST = `mta-sts.${DOMAIN}`;
const MX_HOST = `mx.${DOMAIN}`;
const SECRET = 'netns-hosting-secret';
const CHANNEL = 'C1';
/** Generous bounds for outcomes that take a pebble order or a few monitor passes. */
const LONG = 120_000;

let ns: Netns | undefined;
let rig: HostingRig | undefined;
let started: RigStarted;
let dir = '';
let appEnv: Record<string, string> = {};
let cliEnv: Record<string, string> = {};

beforeAll(async () => {
  if (unavailable) return;
  buildIfStale();
  ns = Netns.create([DNS, BOT, MX]);
  const made = await HostingRig.start(ns.name, {
    dns: DNS,
    zone: {
      [DOMAIN]: { SOA: true, MX: [{ preference: 10, exchange: MX_HOST }] },
      [MX_HOST]: { A: [MX] },
      [`_smtp._tls.${DOMAIN}`]: { TXT: [`v=TLSRPTv1; rua=mailto:tls-reports@${DOMAIN}`] },
      [BOT_NAME]: { A: [BOT] },
    },
    mx: { address: MX, names: [MX_HOST] },
  });
  rig = made.rig;
  started = made.started;
  dir = mkdtempSync(join(tmpdir(), 'mtasts-netns-hosting-'));
  // The app trusts pebble's HTTPS listener (its ACME directory), the MX host's CA, and pebble's issuing root (as a
  // production host trusts Let's Encrypt's); the CLI only the last two, as on any machine.
  writeFileSync(
    join(dir, 'app-ca.pem'),
    [started.pebbleListenerPem, started.testCaPem, started.pebbleRootPem].join('\n'),
  );
  writeFileSync(join(dir, 'cli-ca.pem'), [started.testCaPem, started.pebbleRootPem].join('\n'));
  appEnv = {
    SLACK_BOT_TOKEN: 'xoxb-netns-hosting',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: started.slackApiUrl,
    PORT: '0',
    DATABASE_PATH: join(dir, 'db', 'bot.sqlite'),
    MTASTS_DNS_SERVERS: DNS,
    MTASTS_HOSTING_NAME: BOT_NAME,
    MTASTS_HOSTING_LISTEN: `${BOT}:443`,
    MTASTS_ACME_DIRECTORY: started.directoryUrl,
    MTASTS_ACME_EMAIL: `hostmaster@${DOMAIN}`,
    NODE_EXTRA_CA_CERTS: join(dir, 'app-ca.pem'),
    // A pass every second and a certificate look every 10 s (the least allowed), so that things happen in seconds.
    MTASTS_SCHEDULE: '* * * * * *',
    MTASTS_ACME_INTERVAL_SECONDS: '10',
  };
  cliEnv = { MTASTS_DNS_SERVERS: DNS, NODE_EXTRA_CA_CERTS: join(dir, 'cli-ca.pem') };
}, LONG);

afterAll(async () => {
  await rig?.stop();
  ns?.delete();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const reason = unavailable ? ` (skipped: ${unavailable})` : '';

function theRig(): HostingRig {
  if (!rig) throw new Error('no rig');
  return rig;
}

/** A signed `/mtasts <text>` from channel C1 of workspace T1; resolves to what its response_url received. */
async function slash(app: number, text: string, responseId: string): Promise<string> {
  const ack = (await theRig().call('slash', { app, secret: SECRET, text, responseId })) as { status: number };
  expect(ack.status).toBe(200);
  const answer = await until(
    async () => (await theRig().slack()).responses.find((r) => r.id === responseId),
    `an answer to "/mtasts ${text}" at its response_url`,
  );
  return JSON.stringify(answer.body);
}

/** The channel's posts (chat.postMessage to C1), each as its JSON text. */
async function channelPosts(): Promise<string[]> {
  const seen: SlackSeen = await theRig().slack();
  return seen.posts.filter((p) => p.body.channel === CHANNEL).map((p) => JSON.stringify(p.body));
}

/** Polls `get` until it yields a value (not undefined, null or false); fails after `ms` naming `what`. */
async function until<T>(
  get: () => Promise<T | undefined | null | false>,
  what: string,
  ms = LONG,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await get();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() - start > ms) throw new Error(`not in time: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function policy(path?: string, name = POLICY_HOST): Promise<PolicyAnswer> {
  return theRig().call('policy', {
    address: BOT,
    name,
    ca: started.pebbleRootPem,
    ...(path ? { path } : {}),
  }) as Promise<PolicyAnswer>;
}

async function orders(): Promise<number> {
  return ((await theRig().call('pebble')) as { orders: number }).orders;
}

/** Monitor passes the app finished, from its database (read only). */
function finishedPasses(): number {
  const db = new Database(appEnv.DATABASE_PATH, { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare('SELECT COUNT(*) AS n FROM monitor_passes WHERE finished_at IS NOT NULL')
      .get() as {
      n: number;
    };
    return row.n;
  } finally {
    db.close();
  }
}

describe('hosted MTA-STS on the production path, default settings, in a network namespace', () => {
  test.skipIf(unavailable)(
    `/mtasts host -> CNAME -> pebble certificate -> mtasts check finds the hosted policy valid; a change bumps the id and the reminder ends; a restart serves the stored certificate${reason}`,
    { timeout: 600_000 },
    async () => {
      const r = theRig();
      const first = (await r.call('startApp', appEnv)) as number;
      await r.call('appLogged', {
        app: first,
        text: `hosting: serving policies for ${BOT_NAME.replace(/\./g, '\\.')} on ${BOT.replace(/\./g, '\\.')}:443`,
        ms: 30000,
      });

      // 1. Enrollment from Slack: the records to publish, nothing served yet (the CNAME is missing).
      const enrolled = await slash(first, `host ${DOMAIN}`, 'enroll');
      expect(enrolled).toContain('enrolled hosted.test for hosting');
      expect(enrolled).toContain(POLICY_HOST);
      expect(enrolled).toContain(BOT_NAME);
      expect(enrolled).toMatch(/CNAME/);
      const id = /v=STSv1; id=([A-Za-z0-9]+)/.exec(enrolled)?.[1];
      expect(id, enrolled).toBeTruthy();
      expect(await orders()).toBe(0);

      // 2. The owner publishes the CNAME and the TXT: the bot takes the name, pebble validates over tls-alpn-01 on
      // port 443, and the channel is told hosting is live and the certificate issued.
      // Each enrollment has its own CNAME target, <token>.<hosting name>, under the operator's wildcard (the bot's
      // address); only that target proves the domain's owner asked for this enrollment.
      const target = new RegExp(`CNAME ([a-z2-7]{20}\\.${BOT_NAME.replace(/\./g, '\\.')})\\.`).exec(
        enrolled,
      )?.[1];
      expect(target, enrolled).toBeTruthy();
      await r.setZone(target ?? '', { A: [BOT] });
      await r.setZone(POLICY_HOST, { CNAME: target ?? '' });
      await r.setZone(`_mta-sts.${DOMAIN}`, { TXT: [`v=STSv1; id=${id}`] });
      const issued = await until(
        async () => (await channelPosts()).find((p) => p.includes(`certificate issued for ${POLICY_HOST}`)),
        'the channel told the certificate is issued',
      ).catch(async (err: Error) => {
        const log = ((await r.call('pebble')) as { log: string }).log;
        const out = (await r.call('appOutput', { app: first })) as string;
        throw new Error(`${err.message}\n--- app ---\n${out}\n--- pebble ---\n${log}`);
      });
      expect(issued).toContain(DOMAIN);
      const posts = await channelPosts();
      expect(posts.some((p) => p.includes(`${DOMAIN}: hosted MTA-STS is live`))).toBe(true);
      expect(await orders()).toBe(1);

      // 3. The real CLI, configured only by where DNS is and which roots to trust, finds the hosted policy valid.
      const served = await policy();
      expect(served.status).toBe(200);
      expect(served.contentType).toMatch(/^text\/plain/);
      expect(served.body).toContain('mode: testing');
      expect((await policy('/.well-known/other.txt')).status).toBe(404);
      // An unknown name: the handshake is refused (alert unrecognized_name), no certificate shown.
      await expect(policy(undefined, 'mta-sts.unknown.test')).rejects.toThrow(/unrecognized name/);
      if (!ns) throw new Error('no namespace');
      const check = await ns.run([process.execPath, 'bin/mtasts.js', 'check', DOMAIN, '--json'], cliEnv);
      expect(check.stderr).toBe('');
      const report = JSON.parse(check.stdout) as Report;
      // Nothing wrong but the mode: testing is a warning by the check contract (exit 0 for pass or warn).
      expect(
        report.findings.map((f) => f.code),
        check.stdout,
      ).toEqual(['POLICY_MODE_TESTING']);
      expect(report.status).toBe('warn');
      expect(check.code).toBe(0);
      expect(report.evidence.sts.id).toBe(id);
      expect(report.evidence.policy.fetch?.address).toBe(BOT);
      expect(report.evidence.policy.text).toBe(served.body);
      expect(report.evidence.policy.policy?.mode).toBe('testing');
      expect(report.evidence.policy.policy?.mx).toEqual([MX_HOST]);
      expect(report.evidence.mx.hosts.map((h) => h.host)).toEqual([MX_HOST]);

      // 4. A change from Slack: a new id, the new text served at once; once DNS carries the id, the channel is told
      // so, and no reminder to publish it follows.
      const changed = await slash(first, `host ${DOMAIN} max-age 86400`, 'max-age');
      expect(changed).toContain('changed the hosted policy (max_age 86400)');
      const newId = /with the new id `([^`]+)` \(was `([^`]+)`\)/.exec(changed);
      expect(newId?.[2]).toBe(id);
      const next = newId?.[1] ?? '';
      expect(next).not.toBe(id);
      const after = await policy();
      expect(after.status).toBe(200);
      expect(after.body).toContain('max_age: 86400');
      expect(after.body).toContain(`mx: ${MX_HOST}`);
      expect(after.fingerprint).toBe(served.fingerprint);
      await r.setZone(`_mta-sts.${DOMAIN}`, { TXT: [`v=STSv1; id=${next}`] });
      await until(
        async () =>
          (await channelPosts()).find((p) => p.includes(`${DOMAIN}: DNS now carries id`) && p.includes(next)),
        'the channel told DNS carries the new id',
      );
      const passes = finishedPasses();
      await until(async () => finishedPasses() >= passes + 2, 'two more passes after DNS carried the id');
      const all = await channelPosts();
      expect(all.filter((p) => p.includes('publish the new id'))).toEqual([]);
      expect(all.filter((p) => p.includes('DNS now carries id'))).toHaveLength(1);

      // 5. SIGTERM ends the app with 0; a restart on the same database serves the policy at once with the stored
      // certificate, and orders nothing from the CA.
      const stopped = (await r.call('stopApp', { app: first })) as { code: number; output: string };
      expect(stopped.code, stopped.output).toBe(0);
      expect(stopped.output).toContain('mtasts-bot: stopped (exit 0)');
      const second = (await r.call('startApp', appEnv)) as number;
      await r.call('appLogged', { app: second, text: 'hosting: serving policies for', ms: 30000 });
      const again = await policy();
      expect(again.status).toBe(200);
      expect(again.body).toBe(after.body);
      expect(again.fingerprint).toBe(served.fingerprint);
      const before = finishedPasses();
      await until(async () => finishedPasses() > before, 'a pass of the restarted app');
      // Stopping waits for a certificate pass in progress: any order it made is at pebble by then.
      const restopped = (await r.call('stopApp', { app: second })) as { code: number; output: string };
      expect(restopped.code, restopped.output).toBe(0);
      expect(restopped.output).not.toMatch(/hosting certificates:|certificate-failed/);
      expect(await orders()).toBe(1);
    },
  );
});
