import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import { loadEngineConfig } from '../../src/config.js';
import { type CheckOptions, checkDomain, type Report } from '../../src/core/check.js';
import { parseDomain } from '../../src/core/domain.js';
import { Lab } from '../support/lab.js';
import { TestSmtpServer } from '../support/smtp-server.js';

/**
 * What one check may connect to: a bounded number of MX hosts and addresses whatever a domain publishes, counted at
 * the SMTP peers; and, with the default settings, nothing at all on loopback.
 */

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(() => lab.stop());

async function check(domain: string, overrides: Partial<CheckOptions> = {}): Promise<Report> {
  const parsed = parseDomain(domain);
  if (!parsed.ok) throw new Error(parsed.error);
  return checkDomain(parsed.domain, lab.options(overrides), lab.deps());
}

const fresh = (count: number) => Array.from({ length: count }, () => lab.newAddress());

/** SMTP peers on `addresses`, one certificate for all `names`, each counting the connections it gets. */
async function countingMxPeers(names: string[], addresses: string[]) {
  const cert = lab.cert(names);
  const connections = new Map<string, number>();
  for (const address of addresses) {
    connections.set(address, 0);
    const server = await TestSmtpServer.start(
      {
        cert,
        onConnect: async () => {
          connections.set(address, (connections.get(address) ?? 0) + 1);
        },
      },
      address,
      lab.smtpPort,
    );
    lab.smtp.push(server);
  }
  const total = () => [...connections.values()].reduce((a, b) => a + b, 0);
  return { addresses, connections, total };
}

/** TXT records and a policy covering every MX host of `domain`. */
async function publishPolicy(domain: string): Promise<void> {
  lab.set(`_mta-sts.${domain}`, { TXT: ['v=STSv1; id=limits1'] });
  lab.set(`_smtp._tls.${domain}`, { TXT: [`v=TLSRPTv1; rua=mailto:tls@${domain}`] });
  await lab.policyHost(domain, `version: STSv1\nmode: enforce\nmx: *.${domain}\nmax_age: 1209600\n`);
}

describe('per-check probe limits', () => {
  test('the defaults are 10 MX hosts and 8 addresses per MX host', () => {
    expect(loadEngineConfig({})).toMatchObject({ maxMxHosts: 10, maxAddressesPerMx: 8 });
    expect(loadEngineConfig({ MTASTS_MAX_MX_HOSTS: '3', MTASTS_MAX_ADDRESSES_PER_MX: '2' })).toMatchObject({
      maxMxHosts: 3,
      maxAddressesPerMx: 2,
    });
  });

  test('MX_PROBE_LIMITED: a hostile domain (14 MX hosts of 12 addresses) gets 10 x 8 connections, by preference', async () => {
    const domain = 'hostile.test';
    // Published out of order; preferences 10 (mx01) to 140 (mx14).
    const order = [9, 3, 14, 1, 12, 7, 2, 11, 5, 13, 4, 8, 6, 10];
    const names = order.map((n) => `mx${String(n).padStart(2, '0')}.${domain}`);
    const peers = await countingMxPeers(names, fresh(12));
    lab.set(domain, { MX: order.map((n, i) => ({ preference: n * 10, exchange: names[i] ?? '' })) });
    for (const name of names) lab.set(name, { A: peers.addresses });
    await publishPolicy(domain);
    const queriesBefore = lab.dns.queries.length;

    const r = await check(domain);

    // Counted at the peers: the 10 most preferred hosts, each at its first 8 addresses in DNS order.
    expect(peers.total()).toBe(80);
    expect(peers.addresses.map((a) => peers.connections.get(a))).toEqual([
      10, 10, 10, 10, 10, 10, 10, 10, 0, 0, 0, 0,
    ]);
    const kept = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => `mx${String(n).padStart(2, '0')}.${domain}`);
    const skipped = [`mx11.${domain}`, `mx12.${domain}`, `mx13.${domain}`, `mx14.${domain}`];
    expect(r.evidence.mx.hosts.map((h) => h.host)).toEqual([...kept, ...skipped]);
    for (const h of r.evidence.mx.hosts.slice(0, 10)) {
      expect(h.probes.map((p) => p.address)).toEqual(peers.addresses.slice(0, 8));
      expect(h.probes.every((p) => p.tls?.protocol === 'TLSv1.3')).toBe(true);
    }
    for (const h of r.evidence.mx.hosts.slice(10)) {
      expect(h).toMatchObject({
        addresses: [],
        probes: [],
        error: 'not checked: beyond the 10 most preferred MX hosts',
      });
      expect(h.coveredBy).toBe(`*.${domain}`);
    }
    // The hosts beyond the limit are not even looked up.
    const asked = lab.dns.queries.slice(queriesBefore);
    for (const host of skipped) expect(asked.filter((q) => q.endsWith(` ${host}`))).toEqual([]);
    expect(r.evidence.mx.limited).toEqual({
      maxMxHosts: 10,
      maxAddressesPerMx: 8,
      hostsNotChecked: skipped,
      addressesNotProbed: kept.map((host) => ({ host, addresses: peers.addresses.slice(8) })),
    });

    expect(r.findings.map((f) => [f.code, f.severity, f.subject])).toEqual([
      ['MX_PROBE_LIMITED', 'info', domain],
    ]);
    expect(r.status).toBe('pass');
    const message = r.findings[0]?.message ?? '';
    expect(message).toContain(
      `${domain} lists 14 MX hosts; only the 10 most preferred were checked, not mx11.${domain}, mx12.${domain}, mx13.${domain}, mx14.${domain}.`,
    );
    const [a8, a9, a10, a11] = peers.addresses.slice(8);
    expect(message).toContain(
      `mx01.${domain} has 12 addresses; only the first 8 were probed, not ${a8}, ${a9}, ${a10}, ${a11}.`,
    );
    expect(message.match(/ has 12 addresses;/g)).toHaveLength(10);
    expect(message).toContain('the MX hosts and addresses beyond the limit were not checked');
    expect(r.findings[0]?.fix).toBe(
      `Publish only the MX hosts and addresses in use for ${domain}; an installation that must check more raises MTASTS_MAX_MX_HOSTS or MTASTS_MAX_ADDRESSES_PER_MX.`,
    );
  });

  test('the settings set the limits; equal preferences are kept by name; a long list is shortened', async () => {
    const domain = 'many.test';
    const names = ['mx-c', 'mx-a', 'mx-b'].map((n) => `${n}.${domain}`);
    const peers = await countingMxPeers(names, fresh(7));
    lab.set(domain, { MX: names.map((exchange) => ({ preference: 10, exchange })) });
    for (const name of names) lab.set(name, { A: peers.addresses });
    await publishPolicy(domain);

    const t = lab.cliIo({ MTASTS_MAX_MX_HOSTS: '2', MTASTS_MAX_ADDRESSES_PER_MX: '1' });
    expect(await main(['check', domain, '--json'], t.value)).toBe(0);
    const r = JSON.parse(t.out()) as Report;

    expect(peers.total()).toBe(2);
    expect(peers.connections.get(peers.addresses[0] ?? '')).toBe(2);
    expect(r.evidence.mx.hosts.map((h) => [h.host, h.probes.length])).toEqual([
      [`mx-a.${domain}`, 1],
      [`mx-b.${domain}`, 1],
      [`mx-c.${domain}`, 0],
    ]);
    expect(r.findings.map((f) => f.code)).toEqual(['MX_PROBE_LIMITED']);
    expect(r.findings[0]?.message).toContain(
      `${domain} lists 3 MX hosts; only the 2 most preferred were checked, not mx-c.${domain}.`,
    );
    const rest = peers.addresses.slice(1);
    expect(r.findings[0]?.message).toContain(
      `mx-a.${domain} has 7 addresses; only the first 1 were probed, not ${rest.slice(0, 5).join(', ')} and 1 more.`,
    );
  });

  test('within the limits nothing is reported', async () => {
    const domain = 'few.test';
    const names = [`mx1.${domain}`, `mx2.${domain}`];
    const peers = await countingMxPeers(names, fresh(2));
    lab.set(domain, { MX: names.map((exchange, i) => ({ preference: i, exchange })) });
    for (const name of names) lab.set(name, { A: peers.addresses });
    await publishPolicy(domain);
    const r = await check(domain, { maxMxHosts: 2, maxAddressesPerMx: 2 });
    expect(peers.total()).toBe(4);
    expect(r.findings).toEqual([]);
    expect(r.evidence.mx.limited).toBeUndefined();
  });

  test("the policy host: its addresses are tried in order, at most as many as an MX host's", async () => {
    // Twelve addresses where nothing listens (each refuses at once): a check tries the first 8 and no more.
    const dead = fresh(12);
    lab.set('deadpolicy.test', { MX: [{ preference: 10, exchange: 'mx1.deadpolicy.test' }] });
    lab.set('mx1.deadpolicy.test', { A: [lab.newAddress()] });
    lab.set('_mta-sts.deadpolicy.test', { TXT: ['v=STSv1; id=1'] });
    lab.set('mta-sts.deadpolicy.test', { A: dead });
    const r = await check('deadpolicy.test', { smtpProbe: false });
    expect(r.evidence.policy.addresses).toEqual(dead);
    expect(r.evidence.policy.fetch?.attempts.map((a) => a.address)).toEqual(dead.slice(0, 8));
    expect(r.findings.map((f) => f.code)).toContain('POLICY_FETCH_FAILED');
    const fewer = await check('deadpolicy.test', { smtpProbe: false, maxAddressesPerMx: 3 });
    expect(fewer.evidence.policy.fetch?.attempts.map((a) => a.address)).toEqual(dead.slice(0, 3));
  });

  test('with the SMTP probe off, only the host limit applies and no connection is made', async () => {
    const domain = 'quiet.test';
    const names = [`mx1.${domain}`, `mx2.${domain}`];
    const peers = await countingMxPeers(names, fresh(3));
    lab.set(domain, { MX: names.map((exchange, i) => ({ preference: i, exchange })) });
    for (const name of names) lab.set(name, { A: peers.addresses });
    await publishPolicy(domain);
    const r = await check(domain, { smtpProbe: false, maxMxHosts: 1, maxAddressesPerMx: 1 });
    expect(peers.total()).toBe(0);
    expect(r.evidence.mx.hosts.map((h) => h.addresses.length)).toEqual([3, 0]);
    expect(r.evidence.mx.limited).toEqual({
      maxMxHosts: 1,
      maxAddressesPerMx: 1,
      hostsNotChecked: [`mx2.${domain}`],
      addressesNotProbed: [],
    });
    expect(r.findings.map((f) => f.code).sort()).toEqual(['MX_PROBE_LIMITED', 'MX_PROBE_SKIPPED']);
  });

  test.each([
    ['MTASTS_MAX_MX_HOSTS', '0', 'MTASTS_MAX_MX_HOSTS must be a whole number from 1 to 100, got "0"'],
    ['MTASTS_MAX_MX_HOSTS', 'many', 'MTASTS_MAX_MX_HOSTS must be a whole number from 1 to 100, got "many"'],
    [
      'MTASTS_MAX_ADDRESSES_PER_MX',
      '65',
      'MTASTS_MAX_ADDRESSES_PER_MX must be a whole number from 1 to 64, got "65"',
    ],
  ])('a bad %s=%s is one line and exit 2', async (name, value, message) => {
    const t = lab.cliIo({ [name]: value });
    expect(await main(['check', 'few.test'], t.value)).toBe(2);
    expect(t.err()).toBe(`mtasts: ${message}\n`);
  });
});

describe('the default settings on the loopback lab', () => {
  test('nothing is contacted: not directly, through a CNAME, an IPv4-mapped AAAA or an address literal', async () => {
    const domain = 'refused.test';
    const [direct = '', behindCname = '', mapped = '', literal = ''] = fresh(4);
    const names = [`mx1.${domain}`, `mx2.${domain}`, `mx3.${domain}`, literal];
    const peers = await countingMxPeers(names, [direct, behindCname, mapped, literal]);
    lab.set(domain, { MX: names.map((exchange, i) => ({ preference: i, exchange })) });
    lab.set(`mx1.${domain}`, { A: [direct] });
    lab.set(`mx2.${domain}`, { CNAME: `inner.${domain}` });
    lab.set(`inner.${domain}`, { A: [behindCname] });
    lab.set(`mx3.${domain}`, { AAAA: [`::ffff:${mapped}`] });
    await publishPolicy(domain);
    const policyHost = lab.https.at(-1);

    // The lab's settings without MTASTS_ALLOW_PRIVATE_NETWORKS: the production default.
    const t = lab.cliIo({ MTASTS_ALLOW_PRIVATE_NETWORKS: '' });
    expect(await main(['check', domain, '--json'], t.value)).toBe(1);
    const r = JSON.parse(t.out()) as Report;

    expect(peers.total()).toBe(0);
    expect(policyHost?.requests).toEqual([]);
    expect(r.evidence.policy.fetch).toBeNull();
    expect(r.evidence.mx.hosts.flatMap((h) => h.probes)).toEqual([]);
    const refused = Object.fromEntries(r.findings.map((f) => [f.subject, f.code]));
    expect(refused).toEqual({
      [`mta-sts.${domain}`]: 'ADDRESS_NOT_ALLOWED',
      [`mx1.${domain}`]: 'ADDRESS_NOT_ALLOWED',
      [`mx2.${domain}`]: 'ADDRESS_NOT_ALLOWED',
      [`mx3.${domain}`]: 'ADDRESS_NOT_ALLOWED',
      [literal]: 'ADDRESS_NOT_ALLOWED',
    });
    const about = (subject: string) => r.findings.find((f) => f.subject === subject)?.message;
    expect(about(`mx1.${domain}`)).toContain(`${direct} is a loopback address; it was not contacted.`);
    expect(about(`mx2.${domain}`)).toContain(`${behindCname} is a loopback address`);
    expect(about(`mx3.${domain}`)).toContain(
      `::ffff:${mapped} is a loopback address (IPv4-mapped ${mapped})`,
    );
    expect(about(literal)).toContain(`${literal} is a loopback address`);
  });
});
