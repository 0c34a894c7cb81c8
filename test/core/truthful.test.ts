import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import {
  type CheckOptions,
  checkDomain,
  defaultDeps,
  impactNow,
  impactText,
  policyInForce,
  type Report,
} from '../../src/core/check.js';
import { parseDomain } from '../../src/core/domain.js';
import type { FindingCode } from '../../src/core/findings.js';
import { Lab } from '../support/lab.js';

/**
 * Findings and impact that are true in every state: a name that does not exist, a resolver that refuses, SERVFAIL
 * that may be anyone's, an invalid policy (which no sender applies), a policy body dripped after a prompt head, and
 * what senders do meanwhile. Each through the real check against loopback peers, and through the real CLI.
 */

let lab: Lab;
let refusing: RefusingResolver;

beforeAll(async () => {
  [lab, refusing] = await Promise.all([Lab.start(), RefusingResolver.start()]);
});
afterAll(async () => {
  await Promise.all([lab.stop(), refusing.stop()]);
});

/** A resolver on loopback that answers every question REFUSED, as one does to a client it does not serve. */
class RefusingResolver {
  questions = 0;
  private constructor(private readonly socket: UdpSocket) {}

  static async start(): Promise<RefusingResolver> {
    const socket = createSocket('udp4');
    const resolver = new RefusingResolver(socket);
    socket.on('message', (msg, from) => {
      let query: dnsPacket.Packet;
      try {
        query = dnsPacket.decode(msg);
      } catch {
        return;
      }
      resolver.questions++;
      const reply = dnsPacket.encode({
        type: 'response',
        id: query.id ?? 0,
        flags: dnsPacket.RECURSION_DESIRED | 5, // rcode 5: REFUSED
        questions: query.questions ?? [],
      });
      socket.send(reply, from.port, from.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return resolver;
  }

  get address(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

async function check(
  domain: string,
  overrides: Partial<CheckOptions> = {},
  dnsServer = lab.dns.address,
): Promise<Report> {
  const parsed = parseDomain(domain);
  if (!parsed.ok) throw new Error(parsed.error);
  return checkDomain(
    parsed.domain,
    lab.options({ timeoutMs: 2000, ...overrides }),
    defaultDeps({ dnsServers: [dnsServer], timeoutMs: 2000 }),
  );
}

const codes = (r: Report) => r.findings.map((f) => f.code);
const find = (r: Report, code: FindingCode) => r.findings.filter((f) => f.code === code);
const utc = (iso: string) => iso.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');

describe('DNS: a name that does not exist, and failures told apart', () => {
  test('DOMAIN_NOT_FOUND is the one finding for a domain that does not exist (NXDOMAIN)', async () => {
    await lab.domain('real.test');
    const r = await check('reel.test'); // a typo: nothing of it is in the zone
    expect(codes(r)).toEqual(['DOMAIN_NOT_FOUND']);
    expect(r.status).toBe('fail');
    const [f] = r.findings;
    expect(f?.subject).toBe('reel.test');
    expect(f?.message).toContain('The DNS answers that reel.test does not exist (NXDOMAIN).');
    expect(f?.message).not.toContain('implicit MX');
    expect(f?.fix).toContain('Check the spelling of reel.test');
    expect(impactNow(r).text).toBe(
      'reel.test does not exist in DNS: mail to it bounces, whatever MTA-STS says.',
    );
  });

  test('a domain that exists without MX records is still MX_MISSING, not DOMAIN_NOT_FOUND', async () => {
    await lab.domain('nomx-truth.test');
    lab.set('nomx-truth.test', { A: ['127.0.0.1'] });
    const r = await check('nomx-truth.test');
    expect(codes(r)).toContain('MX_MISSING');
    expect(codes(r)).not.toContain('DOMAIN_NOT_FOUND');
  });

  test('DNS_RESOLVER_FAILED once for a resolver that refuses every question, none blamed on the domain', async () => {
    await lab.domain('refused-dns.test');
    const before = refusing.questions;
    const r = await check('refused-dns.test', {}, refusing.address);
    expect(refusing.questions).toBeGreaterThan(before);
    expect(codes(r)).toEqual(['DNS_RESOLVER_FAILED']);
    const [f] = r.findings;
    expect(f?.subject).toBe('DNS resolver');
    // Each name once, the address lookup (A and AAAA) as one.
    expect(f?.message).toMatch(/^The resolver this check asks refused to answer for /);
    for (const name of [
      '_mta-sts.refused-dns.test (TXT)',
      '_smtp._tls.refused-dns.test (TXT)',
      'refused-dns.test (MX)',
      'mta-sts.refused-dns.test (A/AAAA)',
    ]) {
      expect(f?.message.split(name)).toHaveLength(2);
    }
    expect(f?.message).toContain("not refused-dns.test's name servers");
    expect(f?.fix).toContain('MTASTS_DNS_SERVERS');
    expect(impactNow(r).text).toContain('Not known: the resolver of this check failed');
  });

  test('DNS_RESOLVER_FAILED when the resolver cannot be reached at all', async () => {
    const closed = createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${closed.address().port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await check('real.test', {}, address);
    expect(codes(r)).toEqual(['DNS_RESOLVER_FAILED']);
    expect(r.findings[0]?.message).toContain('could not be reached (connection refused) for');
  });

  test('SERVFAIL for every name: once per name, saying it may be the domain or the resolver', async () => {
    await lab.domain('servfail-all.test');
    for (const name of [
      'servfail-all.test',
      '_mta-sts.servfail-all.test',
      '_smtp._tls.servfail-all.test',
      'mta-sts.servfail-all.test',
    ])
      lab.set(name, { servfail: true });
    const r = await check('servfail-all.test');
    expect(codes(r)).toEqual([
      'DNS_LOOKUP_FAILED',
      'DNS_LOOKUP_FAILED',
      'DNS_LOOKUP_FAILED',
      'DNS_LOOKUP_FAILED',
    ]);
    expect(r.findings.map((f) => f.subject).sort()).toEqual([
      '_mta-sts.servfail-all.test',
      '_smtp._tls.servfail-all.test',
      'mta-sts.servfail-all.test',
      'servfail-all.test',
    ]);
    const mx = r.findings.find((f) => f.subject === 'servfail-all.test');
    expect(mx?.message).toContain(
      'The resolver answered SERVFAIL for servfail-all.test (MX): either the name servers of servfail-all.test failed (or its DNSSEC does not validate), or the resolver did.',
    );
    expect(mx?.fix).toContain('dig @<server> servfail-all.test');
  });
});

describe('an invalid policy is only invalid', () => {
  test('enforce without mx: POLICY_SYNTAX naming the lines to add, no MX_NOT_IN_POLICY, no mode warning', async () => {
    await lab.domain('nomxlines.test', { policy: 'version: STSv1\nmode: enforce\nmax_age: 86400\n' });
    const r = await check('nomxlines.test');
    expect(codes(r)).toEqual(['POLICY_SYNTAX']);
    expect(r.evidence.policy.valid).toBe(false);
    expect(find(r, 'POLICY_SYNTAX')[0]?.fix).toBe(
      'Add one line per MX host: `mx: mx1.nomxlines.test`, `mx: mx2.nomxlines.test`. Then publish a new id in the _mta-sts record, so that senders fetch the mended policy.',
    );
    // Coverage is still recorded as evidence of what the text says.
    expect(r.evidence.mx.hosts.map((h) => h.coveredBy)).toEqual([null, null]);
    expect(policyInForce(r)).toBeNull();
  });

  test('a policy in testing with a bad max_age gets no POLICY_MODE_TESTING: senders discard it', async () => {
    await lab.domain('badage.test', {
      policy: 'version: STSv1\nmode: testing\nmx: mx1.badage.test\nmx: mx2.badage.test\nmax_age: 2 weeks\n',
    });
    const r = await check('badage.test');
    expect(codes(r)).toEqual(['POLICY_SYNTAX']);
    expect(r.findings[0]?.fix).toMatch(/^Change line 5 to `max_age: 604800`\. Then publish a new id/);
  });

  test.each([
    ['mode: enforcing', 2, 'Change line 2 to `mode: enforce`.'],
    ['mode: Enforce', 2, 'Change line 2 to `mode: enforce`.'],
    ['mode: test', 2, 'Change line 2 to `mode: testing`.'],
    ['mode=enforce', 2, 'Change line 2 to `mode: enforce`.'],
    ['mode: strict', 2, 'Change line 2 to one of `mode: enforce`, `mode: testing` or `mode: none`.'],
  ])('POLICY_SYNTAX names the line to write: "%s"', async (line, n, fix) => {
    const domain = `syntaxfix${n}${line.length}${line.charCodeAt(6)}.test`;
    await lab.domain(domain, {
      policy: `version: STSv1\n${line}\nmx: mx1.${domain}\nmx: mx2.${domain}\nmax_age: 1209600\n`,
    });
    const r = await check(domain);
    expect(codes(r)).toContain('POLICY_SYNTAX');
    expect(codes(r)).not.toContain('MX_NOT_IN_POLICY');
    expect(find(r, 'POLICY_SYNTAX')[0]?.fix).toBe(
      `${fix} Then publish a new id in the _mta-sts record, so that senders fetch the mended policy.`,
    );
  });

  test('POLICY_SYNTAX for a mode that needs mx lines in a policy without any: both changes at once', async () => {
    await lab.domain('modenomx.test', { policy: 'version: STSv1\nmode: enforcing\nmax_age: 86400\n' });
    const r = await check('modenomx.test');
    expect(find(r, 'POLICY_SYNTAX').map((f) => f.fix.split(' Then')[0])).toEqual([
      'Change line 2 to `mode: enforce`, and add one `mx:` line per MX host.',
    ]);
  });

  test('POLICY_SYNTAX for other lines: version, a trailing dot in mx, a missing field', async () => {
    await lab.domain('lines.test', {
      policy: 'version: STSv2\nmode: enforce\nmx: mx1.lines.test.\nmx: mx2.lines.test\n',
    });
    const r = await check('lines.test');
    expect(find(r, 'POLICY_SYNTAX').map((f) => f.fix.split(' Then')[0])).toEqual([
      'Change line 1 to `version: STSv1`.',
      'Change line 3 to `mx: mx1.lines.test`.',
      'Add the line `max_age: 604800`.',
    ]);
  });
});

describe('a policy body dripped after a prompt answer', () => {
  test('POLICY_FETCH_FAILED speaks of an incomplete body, with the causes to look for', async () => {
    await lab.domain('drip.test', {
      policy: (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.flushHeaders();
        const drip = setInterval(() => {
          if (res.destroyed) clearInterval(drip);
          else res.write('v');
        }, 100);
        res.on('close', () => clearInterval(drip));
      },
    });
    const r = await check('drip.test', { timeoutMs: 800 });
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
    const [f] = r.findings;
    expect(f?.message).toContain('began to answer, but the body of the policy did not arrive in full');
    expect(f?.message).toContain('policy body not received within 800 ms');
    expect(f?.message).not.toContain('no HTTP answer');
    expect(f?.fix).toContain('rate limiting, a proxy or CDN that buffers or throttles the response');
  });

  test('a server that completes TLS and never answers is told apart from one that drips', async () => {
    await lab.domain('silent-http.test', { policy: () => {} });
    const r = await check('silent-http.test', { timeoutMs: 800 });
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
    expect(r.findings[0]?.message).toContain('accepted the TLS connection but did not answer the request');
    expect(r.findings[0]?.fix).toContain('completes TLS and then stalls');
  });
});

describe('impact now, from the senders side', () => {
  test('a policy in force: which MX hosts enforcing senders refuse, and which they use', async () => {
    await lab.domain('oneexpired.test', {
      mx: { 'mx2.oneexpired.test': { cert: lab.cert(['mx2.oneexpired.test'], { notAfterDays: -1 }) } },
    });
    const r = await check('oneexpired.test');
    expect(codes(r)).toEqual(['MX_CERT_EXPIRED']);
    expect(impactNow(r).text).toBe(
      'mode is enforce: senders that apply MTA-STS do not deliver to mx2.oneexpired.test and use mx1.oneexpired.test instead.',
    );
  });

  test('no policy in force, no history: cached copies last until their max_age, however long that is', async () => {
    await lab.domain('gone.test');
    lab.set('mta-sts.gone.test', { A: [lab.newAddress()] }); // nothing listens there
    const r = await check('gone.test');
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
    expect(impactNow(r).text).toBe(
      'Any sender that cached a policy earlier keeps applying it until its max_age runs out (this check keeps no history, so when is not known); senders without a cached copy find no policy and deliver without verified TLS.',
    );
  });

  test('no policy in force, the last one known: cached senders keep enforcing it until about seen + max_age', async () => {
    await lab.domain('cached.test');
    const good = await check('cached.test');
    const last = policyInForce(good);
    expect(last).toEqual({ mode: 'enforce', maxAge: 1209600, id: '20261129T000000', seenAt: good.checkedAt });
    lab.set('mta-sts.cached.test', { A: [lab.newAddress()] });
    const broken = { ...(await check('cached.test')), lastPolicy: last };
    const until = new Date(Date.parse(good.checkedAt) + 1209600_000).toISOString();
    expect(impactText(impactNow(broken), utc)).toBe(
      `Senders that cached the policy (mode enforce, max_age 1209600 (14 days), last seen ${utc(good.checkedAt)}) keep enforcing it until about ${utc(until)}; senders without a cached copy find no policy and deliver without verified TLS.`,
    );
    // Once max_age has run out, no sender holds it any more.
    const later = { ...broken, checkedAt: new Date(Date.parse(until) + 1000).toISOString() };
    expect(impactText(impactNow(later), utc)).toBe(
      `The last policy in force (mode enforce, max_age 1209600 (14 days), last seen ${utc(good.checkedAt)}) has run out of every cache since about ${utc(until)}: senders find no policy and deliver without verified TLS.`,
    );
  });

  test('a policy served with the wrong media type is not in force, though its text is valid', async () => {
    await lab.domain('html.test', {
      policy: (_req, res) =>
        res
          .writeHead(200, { 'Content-Type': 'text/html' })
          .end('version: STSv1\nmode: enforce\nmx: mx1.html.test\nmx: mx2.html.test\nmax_age: 1209600\n'),
    });
    const r = await check('html.test');
    expect(codes(r)).toEqual(['POLICY_CONTENT_TYPE']);
    expect(r.evidence.policy.valid).toBe(true);
    expect(policyInForce(r)).toBeNull();
    expect(impactNow(r).text).toContain('senders without a cached copy find no policy');
  });
});

describe('through the real CLI', () => {
  test('a typo: one error saying the name does not exist, exit 1', async () => {
    const t = lab.cliIo();
    expect(await main(['check', 'reel.test'], t.value)).toBe(1);
    const out = t.out();
    expect(out).toMatch(/^reel\.test: FAIL \(1 error\)\n/);
    expect(out).toContain('Impact now: reel.test does not exist in DNS: mail to it bounces');
    expect(out).toContain('x DOMAIN_NOT_FOUND  reel.test');
    expect(out).not.toContain('MX_MISSING');
    expect(out).not.toContain('STS_RECORD_MISSING');
    for (const line of out.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  test('a refusing resolver: one DNS_RESOLVER_FAILED, exit 1', async () => {
    const t = lab.cliIo({ MTASTS_DNS_SERVERS: refusing.address });
    expect(await main(['check', 'real.test', '--json'], t.value)).toBe(1);
    const report = JSON.parse(t.out()) as Report;
    expect(codes(report)).toEqual(['DNS_RESOLVER_FAILED']);
  });

  test('a policy host down: the impact speaks of cached copies, not of "no policy in force"', async () => {
    await lab.domain('down-cli.test');
    lab.set('mta-sts.down-cli.test', { A: [lab.newAddress()] }); // nothing listens there
    const t = lab.cliIo();
    expect(await main(['check', 'down-cli.test'], t.value)).toBe(1);
    const out = t.out().replace(/\n +/g, ' ');
    expect(out).toContain(
      'Impact now: Any sender that cached a policy earlier keeps applying it until its max_age',
    );
    expect(out).toContain('x POLICY_FETCH_FAILED');
  });
});
