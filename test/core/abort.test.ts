import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEngineConfig } from '../../src/config.js';
import { type CheckDeps, checkDomain, type Report } from '../../src/core/check.js';
import { type Domain, parseDomain } from '../../src/core/domain.js';
import { createDns } from '../../src/core/net/dns.js';
import { fetchPolicy } from '../../src/core/net/policy-fetch.js';
import { probeStarttls } from '../../src/core/net/starttls.js';
import { createEngine } from '../../src/engine.js';
import { openRuntime } from '../../src/runtime.js';
import { slackPoster } from '../../src/slack/poster.js';
import { Blackhole } from '../support/blackhole.js';
import { testConfig } from '../support/config.js';
import { FakeSlack } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';
import { SilentHttpsPeer, StallingPeer } from '../support/stalling-peer.js';

/** Every step's own timeout: far beyond the guard, so that only the abort can end a step within it. */
const STEP_TIMEOUT_MS = 60_000;
/** How long a check may take to settle after the abort: generous, and still far below the steps' timeout. */
const GUARD_MS = 10_000;

let lab: Lab;
const peers: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  await lab.stop();
});

function domain(name: string): Domain {
  const parsed = parseDomain(name);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.domain;
}

function start(name: string, signal: AbortSignal, deps = lab.deps(STEP_TIMEOUT_MS)): Promise<Report> {
  return checkDomain(domain(name), lab.options({ timeoutMs: STEP_TIMEOUT_MS }), deps, signal);
}

/** The lab's network, and a promise kept when the first SMTP probe starts (its connect is then under way). */
function watchedDeps(): { deps: CheckDeps; probing: Promise<void> } {
  const real = lab.deps(STEP_TIMEOUT_MS);
  let started = () => {};
  const probing = new Promise<void>((resolve) => {
    started = resolve;
  });
  const probeStarttls: CheckDeps['probeStarttls'] = (options) => {
    const probe = real.probeStarttls(options);
    started();
    return probe;
  };
  return { deps: { ...real, probeStarttls }, probing };
}

/** The promise's value if it settles within the guard, else 'still running'. */
async function withinGuard<T>(promise: Promise<T>): Promise<T | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => resolve('still running'), GUARD_MS);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (at most the guard) until `condition` holds: a DNS question has reached the server, say. */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > GUARD_MS) throw new Error('the condition never held');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stallingPeer(stall: 'accept' | 'starttls', port: number): Promise<StallingPeer> {
  const peer = await StallingPeer.start(stall, lab.newAddress(), port);
  peers.push(peer);
  return peer;
}

async function silentPolicyHost(name: string): Promise<SilentHttpsPeer> {
  const peer = await SilentHttpsPeer.start(lab.cert([`mta-sts.${name}`]), lab.newAddress(), lab.policyPort);
  peers.push(peer);
  return peer;
}

/** Publishes the records of `name`: its policy host and MX hosts at the given addresses, each record overridable. */
function publish(name: string, policyAddress: string, mx: string[]): void {
  lab.set(`_mta-sts.${name}`, { TXT: ['v=STSv1; id=20261129T000000'] });
  lab.set(`_smtp._tls.${name}`, { TXT: [`v=TLSRPTv1; rua=mailto:tls@${name}`] });
  lab.set(`mta-sts.${name}`, { A: [policyAddress] });
  lab.set(name, { MX: mx.map((_, i) => ({ preference: 10 * (i + 1), exchange: `mx${i + 1}.${name}` })) });
  mx.forEach((address, i) => {
    lab.set(`mx${i + 1}.${name}`, { A: [address] });
  });
}

describe('a check aborted while it runs', () => {
  test('a policy host that never answers, an MX that never greets, an MX stuck in the TLS handshake and a DNS question without answer all stop: the check settles long before any timeout, marked aborted, and no connection stays open', async () => {
    const name = 'stalled.abort.test';
    const policy = await silentPolicyHost(name);
    const mute = await stallingPeer('accept', lab.smtpPort);
    const handshake = await stallingPeer('starttls', lab.smtpPort);
    publish(name, policy.address, [mute.address, handshake.address]);
    lab.set(`_smtp._tls.${name}`, { drop: true });

    const controller = new AbortController();
    const check = start(name, controller.signal);
    let settledEarly = false;
    void check.then(() => {
      settledEarly = true;
    });
    await Promise.all([
      policy.requested(),
      mute.reached(),
      handshake.reached(),
      until(() => lab.dns.queries.includes(`TXT _smtp._tls.${name}`)),
    ]);
    expect(settledEarly).toBe(false); // every step was under way, none finished by itself
    controller.abort();
    const report = await withinGuard(check);
    if (report === 'still running') throw new Error('the aborted check did not settle');

    expect(report.aborted).toBe(true);
    // The step that had finished keeps its result; each unfinished one says it was aborted.
    expect(report.evidence.sts.records).toEqual(['v=STSv1; id=20261129T000000']);
    expect(report.evidence.tlsrpt.error).toBe(`TXT _smtp._tls.${name}: aborted`);
    expect(report.evidence.policy.fetch?.http).toBeNull();
    expect(report.evidence.policy.fetch?.attempts).toEqual([
      { address: policy.address, error: expect.objectContaining({ kind: 'aborted' }) },
    ]);
    const [mx1, mx2] = report.evidence.mx.hosts;
    expect(mx1?.probes).toEqual([
      expect.objectContaining({ connected: true, banner: null, failedAt: 'banner' }),
    ]);
    expect(mx1?.probes[0]?.error?.kind).toBe('aborted');
    expect(mx2?.probes).toEqual([
      expect.objectContaining({ connected: true, starttlsOffered: true, tls: null, failedAt: 'tls' }),
    ]);
    expect(mx2?.probes[0]?.error?.kind).toBe('aborted');

    // Every connection the check opened is closed at the peers' end, one connection each, none retried.
    expect(await withinGuard(Promise.all([policy.idle(), mute.idle(), handshake.idle()]))).not.toBe(
      'still running',
    );
    expect([policy.open, mute.open, handshake.open]).toEqual([0, 0, 0]);
    expect([policy.requests, mute.accepted, handshake.accepted]).toEqual([1, 1, 1]);
  });

  test('a policy host that never answers the ClientHello and an MX behind a firewall that drops SYNs: the handshake and the connect stop', async () => {
    const name = 'dropped.abort.test';
    const policy = await stallingPeer('accept', lab.policyPort);
    const firewall = await Blackhole.start(lab.newAddress(), lab.smtpPort);
    peers.push(firewall);
    publish(name, policy.address, [firewall.address]);

    const controller = new AbortController();
    const { deps, probing } = watchedDeps();
    const check = start(name, controller.signal, deps);
    await Promise.all([policy.reached(), probing]);
    controller.abort();
    const report = await withinGuard(check);
    if (report === 'still running') throw new Error('the aborted check did not settle');

    expect(report.aborted).toBe(true);
    expect(report.evidence.policy.fetch?.attempts).toEqual([
      { address: policy.address, error: expect.objectContaining({ kind: 'aborted' }) },
    ]);
    expect(report.evidence.mx.hosts[0]?.probes).toEqual([
      expect.objectContaining({ connected: false, failedAt: 'connect' }),
    ]);
    expect(report.evidence.mx.hosts[0]?.probes[0]?.error?.kind).toBe('aborted');
    // An aborted connect is not a blocked port 25.
    expect(report.findings.map((f) => f.code)).not.toContain('SMTP_PORT_BLOCKED');
    expect(await withinGuard(policy.idle())).not.toBe('still running');
    expect([policy.open, policy.accepted]).toEqual([0, 1]);
  });
});

describe('a signal that has already aborted', () => {
  test('the check asks no DNS question and makes no connection, and says so step by step', async () => {
    const name = 'early.abort.test';
    const policy = await stallingPeer('accept', lab.policyPort);
    const mx = await stallingPeer('accept', lab.smtpPort);
    publish(name, policy.address, [mx.address]);
    const asked = lab.dns.queries.length;

    const report = await start(name, AbortSignal.abort());

    expect(report.aborted).toBe(true);
    expect(lab.dns.queries.length).toBe(asked);
    expect([policy.accepted, mx.accepted]).toEqual([0, 0]);
    expect(report.evidence.sts.error).toBe(`TXT _mta-sts.${name}: aborted`);
    expect(report.evidence.tlsrpt.error).toBe(`TXT _smtp._tls.${name}: aborted`);
    expect(report.evidence.mx.error).toBe(`MX ${name}: aborted`);
    expect(report.evidence.policy.error).toBe(`A mta-sts.${name}: aborted`);
    expect(report.evidence.policy.fetch).toBeNull();
  });

  test('the probe, the policy fetch and the lookup each stop before touching the network', async () => {
    const name = 'net.abort.test';
    const policy = await stallingPeer('accept', lab.policyPort);
    const mx = await stallingPeer('accept', lab.smtpPort);
    publish(name, policy.address, [mx.address]);
    const asked = lab.dns.queries.length;
    const signal = AbortSignal.abort();

    const probe = await probeStarttls({
      host: `mx1.${name}`,
      address: mx.address,
      port: lab.smtpPort,
      ehloName: 'checker.test',
      timeoutMs: STEP_TIMEOUT_MS,
      now: new Date(),
      signal,
    });
    const fetched = await fetchPolicy({
      host: `mta-sts.${name}`,
      addresses: [policy.address],
      port: lab.policyPort,
      ca: [lab.ca.rootPem],
      timeoutMs: STEP_TIMEOUT_MS,
      now: new Date(),
      signal,
    });
    const dns = createDns({ servers: [lab.dns.address], timeoutMs: STEP_TIMEOUT_MS });
    const txt = await dns.txt(`_mta-sts.${name}`, signal);
    const addresses = await dns.addresses(`mx1.${name}`, signal);

    expect(probe).toMatchObject({ connected: false, failedAt: 'connect', error: { kind: 'aborted' } });
    expect(fetched).toMatchObject({ attempts: [], http: null, tls: null, error: { kind: 'aborted' } });
    expect(txt).toEqual({
      ok: false,
      kind: 'error',
      code: 'ABORT_ERR',
      message: `TXT _mta-sts.${name}: aborted`,
    });
    expect(addresses).toMatchObject({ ok: false, kind: 'error', code: 'ABORT_ERR' });
    expect([policy.accepted, mx.accepted, lab.dns.queries.length - asked]).toEqual([0, 0, 0]);
  });

  test("the engine's check passes the signal on", async () => {
    const name = 'engine.abort.test';
    const mx = await stallingPeer('accept', lab.smtpPort);
    publish(name, lab.newAddress(), [mx.address]);
    const engine = createEngine(
      loadEngineConfig({ MTASTS_DNS_SERVERS: lab.dns.address, MTASTS_ALLOW_PRIVATE_NETWORKS: '1' }),
      null,
      { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
    );
    const asked = lab.dns.queries.length;
    const report = await engine.check(domain(name), AbortSignal.abort());
    expect(report.aborted).toBe(true);
    expect([lab.dns.queries.length - asked, mx.accepted]).toEqual([0, 0]);
  });
});

describe("the monitor's stop()", () => {
  test('aborts the checks of the running pass: the pass ends at once, nothing is stored or alerted, no connection stays open, and the pass is left to resume', async () => {
    const slack = await FakeSlack.start();
    peers.push(slack);
    const policy = await silentPolicyHost('mon-a.abort.test');
    const mute = await stallingPeer('accept', lab.smtpPort);
    publish('mon-a.abort.test', policy.address, [mute.address]);
    publish('mon-b.abort.test', lab.newAddress(), [lab.newAddress()]);
    lab.set('_mta-sts.mon-b.abort.test', { drop: true });
    lab.set('mta-sts.mon-b.abort.test', { drop: true });
    lab.set('mon-b.abort.test', { drop: true });

    const dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-abort-')), 'm.sqlite');
    const config = testConfig({
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: dbPath,
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_TIMEOUT_MS: String(STEP_TIMEOUT_MS),
      MTASTS_MONITOR_CONCURRENCY: '4',
    });
    const runtime = await openRuntime(
      config,
      null,
      { info() {}, warn() {}, error() {} },
      {
        engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
        poster: slackPoster('xoxb-test', slack.apiUrl),
        monitor: { jitterMs: 0 },
      },
    );
    try {
      for (const watched of ['mon-a.abort.test', 'mon-b.abort.test']) {
        await runtime.subscriptions.watch('T1', 'C1', watched, 'U1', 100, new Date());
      }
      const pass = runtime.monitor.runPass();
      if (!pass) throw new Error('no pass started');
      await Promise.all([
        policy.requested(),
        mute.reached(),
        until(() => lab.dns.queries.includes('TXT _mta-sts.mon-b.abort.test')),
      ]);

      expect(await withinGuard(runtime.monitor.stop())).not.toBe('still running');
      const summary = await pass;

      expect(summary).toMatchObject({ domains: 0, events: 0, alerts: 0, failures: 0 });
      expect(await runtime.checks.last('mon-a.abort.test')).toBeNull();
      expect(await runtime.checks.last('mon-b.abort.test')).toBeNull();
      expect(await runtime.monitorStore.entries()).toEqual([]);
      expect(await runtime.monitorStore.hasUnfinishedPass()).toBe(true);
      expect(slack.calls).toEqual([]);
      expect(await withinGuard(Promise.all([policy.idle(), mute.idle()]))).not.toBe('still running');
      expect([policy.open, mute.open]).toEqual([0, 0]);
    } finally {
      await runtime.close();
    }
  });
});
