import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Report } from '../../src/core/check.js';
import { buildIfStale, Netns, netnsUnavailable, type Peers } from '../support/netns.js';
import { type PeerPlan, where } from '../support/netns-peers.js';

/**
 * The real `mtasts` binary with the production settings (private networks refused), configured only by
 * MTASTS_DNS_SERVERS and NODE_EXTRA_CA_CERTS, checking domains served on public addresses, on the real ports 53, 443
 * and 25, inside a network namespace made for this test; and the same settings refusing hosts that resolve to
 * loopback, private, NAT64 and IPv4-compatible forms, counted at listeners on those very addresses.
 */

const unavailable = netnsUnavailable();
if (unavailable) {
  console.warn(
    `SKIPPED test/netns/default-settings.test.ts: ${unavailable}; the end-to-end check with the default settings needs root and "ip netns" (CI has both).`,
  );
}

const DNS = '11.1.0.53';
const POLICY_V4 = '11.1.0.43';
const POLICY_V6 = '2a01:4f8:1::443';
const MX_V4 = '11.1.0.25';
const MX_V6 = '2a01:4f8:1::25';
/** Non-public addresses carried by the namespace's `lo`, each with a listener that counts on 25 and 443. */
const PRIVATE_V4 = '10.20.0.25';
const NAT64_LOOPBACK = '64:ff9b::7f00:1';
const COMPAT_LOOPBACK = '::7f00:1';
const REFUSED = ['127.0.0.1', PRIVATE_V4, NAT64_LOOPBACK, COMPAT_LOOPBACK];

const txt = (domain: string) => ({
  [`_mta-sts.${domain}`]: { TXT: [`v=STSv1; id=${domain.split('.')[0]}1`] },
  [`_smtp._tls.${domain}`]: { TXT: [`v=TLSRPTv1; rua=mailto:tls-reports@${domain}`] },
});

const plan: PeerPlan = {
  dns: DNS,
  zone: {
    // Policy over IPv4, one MX over both families.
    'good.example': { MX: [{ preference: 10, exchange: 'mail.good.example' }] },
    'mta-sts.good.example': { A: [POLICY_V4] },
    'mail.good.example': { A: [MX_V4], AAAA: [MX_V6] },
    ...txt('good.example'),
    // IPv6 only.
    'six.example': { MX: [{ preference: 10, exchange: 'mail.six.example' }] },
    'mta-sts.six.example': { AAAA: [POLICY_V6] },
    'mail.six.example': { AAAA: [MX_V6] },
    ...txt('six.example'),
    // Every host non-public, some behind a CNAME or an IPv6 form of a loopback address; an address literal as MX.
    'bad.example': {
      SOA: true,
      MX: ['mx1', 'mx2', 'mx3', 'mx4', 'mx5', 'mx6']
        .map((n, i) => ({ preference: i, exchange: `${n}.bad.example` }))
        .concat([{ preference: 9, exchange: PRIVATE_V4 }]),
    },
    'mta-sts.bad.example': { A: [PRIVATE_V4], AAAA: [NAT64_LOOPBACK] },
    'mx1.bad.example': { A: ['127.0.0.1'] },
    'mx2.bad.example': { A: [PRIVATE_V4] },
    'mx3.bad.example': { AAAA: [NAT64_LOOPBACK] },
    'mx4.bad.example': { AAAA: ['::127.0.0.1'] },
    'mx5.bad.example': { AAAA: ['::ffff:127.0.0.1'] },
    'mx6.bad.example': { CNAME: 'inner.bad.example' },
    'inner.bad.example': { A: [PRIVATE_V4], AAAA: [NAT64_LOOPBACK] },
    ...txt('bad.example'),
    // Domain Connect discovery pointed at the same addresses.
    '_domainconnect.bad.example': { TXT: ['dc.bad.example'] },
    'dc.bad.example': { A: ['127.0.0.1', PRIVATE_V4], AAAA: [NAT64_LOOPBACK, COMPAT_LOOPBACK] },
  },
  policyHosts: [
    {
      address: POLICY_V4,
      names: ['mta-sts.good.example'],
      policy: 'version: STSv1\nmode: enforce\nmx: mail.good.example\nmax_age: 1209600\n',
    },
    {
      address: POLICY_V6,
      names: ['mta-sts.six.example'],
      policy: 'version: STSv1\nmode: enforce\nmx: mail.six.example\nmax_age: 1209600\n',
    },
  ],
  mxHosts: [
    { address: MX_V4, names: ['mail.good.example'] },
    { address: MX_V6, names: ['mail.good.example', 'mail.six.example'] },
  ],
  listeners: REFUSED.flatMap((address) => [25, 443].map((port) => ({ address, port }))),
};

let ns: Netns | undefined;
let peers: Peers | undefined;
let env: Record<string, string> = {};
let caDir = '';

beforeAll(async () => {
  if (unavailable) return;
  buildIfStale();
  ns = Netns.create([DNS, POLICY_V4, POLICY_V6, MX_V4, MX_V6, PRIVATE_V4, NAT64_LOOPBACK, COMPAT_LOOPBACK]);
  peers = await ns.startPeers(plan);
  caDir = mkdtempSync(join(tmpdir(), 'mtasts-netns-ca-'));
  writeFileSync(join(caDir, 'ca.pem'), peers.rootPem);
  // The production settings: only where DNS is and which extra root to trust.
  env = { MTASTS_DNS_SERVERS: DNS, NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem') };
}, 120000);

afterAll(async () => {
  await peers?.stop();
  ns?.delete();
  if (caDir) rmSync(caDir, { recursive: true, force: true });
});

async function mtasts(...args: string[]) {
  if (!ns) throw new Error('no namespace');
  return ns.run([process.execPath, 'bin/mtasts.js', ...args], env);
}

const reason = unavailable ? ` (skipped: ${unavailable})` : '';

describe('the default settings, in a network namespace on public addresses', () => {
  test.skipIf(unavailable)(`a healthy domain over IPv4 and IPv6 passes${reason}`, async () => {
    const before = (await peers?.counts()) ?? {};
    const r = await mtasts('check', 'good.example', '--json');
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.findings).toEqual([]);
    expect(report.status).toBe('pass');
    expect(r.code).toBe(0);
    expect(report.evidence.policy.fetch?.address).toBe(POLICY_V4);
    expect(report.evidence.policy.fetch?.http?.status).toBe(200);
    const probes = report.evidence.mx.hosts[0]?.probes ?? [];
    expect(probes.map((p) => [p.address, p.port, p.tls?.protocol, p.tls?.certificate?.trusted])).toEqual([
      [MX_V4, 25, 'TLSv1.3', true],
      [MX_V6, 25, 'TLSv1.3', true],
    ]);
    const after = (await peers?.counts()) ?? {};
    const seen = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    expect([seen(where(POLICY_V4, 443)), seen(where(MX_V4, 25)), seen(where(MX_V6, 25))]).toEqual([1, 1, 1]);
  });

  test.skipIf(unavailable)(`an IPv6-only domain passes${reason}`, async () => {
    const r = await mtasts('check', 'six.example', '--json');
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.findings).toEqual([]);
    expect(r.code).toBe(0);
    expect(report.evidence.policy.fetch?.address).toBe(POLICY_V6);
    expect(report.evidence.mx.hosts[0]?.probes.map((p) => [p.address, p.tls?.protocol])).toEqual([
      [MX_V6, 'TLSv1.3'],
    ]);
  });

  test.skipIf(unavailable)(
    `hosts on loopback, private, NAT64 and IPv4-compatible addresses get ADDRESS_NOT_ALLOWED and no connection${reason}`,
    async () => {
      const r = await mtasts('check', 'bad.example', '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout) as Report;
      expect(new Set(report.findings.map((f) => f.code))).toEqual(new Set(['ADDRESS_NOT_ALLOWED']));
      expect(report.findings.map((f) => f.subject).sort()).toEqual([
        PRIVATE_V4,
        'mta-sts.bad.example',
        'mx1.bad.example',
        'mx2.bad.example',
        'mx3.bad.example',
        'mx4.bad.example',
        'mx5.bad.example',
        'mx6.bad.example',
      ]);
      const about = (subject: string) => report.findings.find((f) => f.subject === subject)?.message ?? '';
      expect(about('mx1.bad.example')).toContain('127.0.0.1 is a loopback address');
      expect(about('mx2.bad.example')).toContain(`${PRIVATE_V4} is a private address`);
      expect(about('mx3.bad.example')).toContain(
        `${NAT64_LOOPBACK} is a loopback address (NAT64 of 127.0.0.1)`,
      );
      expect(about('mx4.bad.example')).toMatch(
        /::(7f00:1|127\.0\.0\.1) is an IPv4-compatible address \(deprecated\)/,
      );
      expect(about('mx5.bad.example')).toMatch(
        /::ffff:(7f00:1|127\.0\.0\.1) is a loopback address \(IPv4-mapped 127\.0\.0\.1\)/,
      );
      expect(about('mx6.bad.example')).toContain(
        `${NAT64_LOOPBACK} is a loopback address (NAT64 of 127.0.0.1)`,
      );
      expect(about(PRIVATE_V4)).toContain(`${PRIVATE_V4} is a private address`);
      expect(report.evidence.policy.fetch).toBeNull();
      expect(report.evidence.mx.hosts.flatMap((h) => h.probes)).toEqual([]);
      expect(await refusedConnections()).toEqual(zeroes());
    },
  );

  test.skipIf(unavailable)(
    `Domain Connect discovery does not connect to such addresses either${reason}`,
    async () => {
      const r = await mtasts('records', 'bad.example', '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { domainConnect: { supported: boolean; message: string } };
      expect(out.domainConnect).toMatchObject({
        supported: false,
        message:
          "Not available: the provider's settings: dc.bad.example resolves only to non-public addresses. Publish the records by hand.",
      });
      expect(await refusedConnections()).toEqual(zeroes());
    },
  );

  test.skipIf(unavailable)(`the listeners on those addresses do count connections${reason}`, async () => {
    const before = await refusedConnections();
    const script = `const net = require('node:net');
      const targets = ${JSON.stringify(plan.listeners)};
      Promise.all(targets.map((t) => new Promise((resolve, reject) => {
        const s = net.connect(t.port, t.address, () => { s.destroy(); resolve(); });
        s.on('error', reject);
      }))).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`;
    if (!ns) throw new Error('no namespace');
    const r = await ns.run([process.execPath, '-e', script], {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Each listener sees the one connection made to it (counted when accepted, so wait for the last).
    await expect
      .poll(refusedConnections)
      .toEqual(Object.fromEntries(Object.entries(before).map(([key, n]) => [key, (n ?? 0) + 1])));
  });
});

/** The counts of the listeners on the non-public addresses. */
async function refusedConnections(): Promise<Record<string, number | undefined>> {
  const counts = (await peers?.counts()) ?? {};
  return Object.fromEntries(
    plan.listeners.map((l) => [where(l.address, l.port), counts[where(l.address, l.port)]]),
  );
}

function zeroes(): Record<string, number> {
  return Object.fromEntries(plan.listeners.map((l) => [where(l.address, l.port), 0]));
}
