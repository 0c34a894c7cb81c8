import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CheckOptions, checkDomain, type Report } from '../../src/core/check.js';
import { parseDomain } from '../../src/core/domain.js';
import { FINDING_CODES, type FindingCode } from '../../src/core/findings.js';
import { Blackhole } from '../support/blackhole.js';
import { barrier, Lab } from '../support/lab.js';

let lab: Lab;
const extraServers: { close: () => unknown }[] = [];

beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(async () => {
  for (const s of extraServers) await s.close();
  await lab.stop();
});

async function check(
  domain: string,
  overrides: Partial<CheckOptions> = {},
  timeoutMs = 3000,
): Promise<Report> {
  const parsed = parseDomain(domain);
  if (!parsed.ok) throw new Error(parsed.error);
  return checkDomain(parsed.domain, lab.options({ timeoutMs, ...overrides }), lab.deps(timeoutMs));
}

/** The policy host `lab.domain` just started: a test whose setup cannot find it fails instead of skipping it. */
function newestPolicyHost() {
  const server = lab.https.at(-1);
  if (!server) throw new Error('the lab has started no policy host');
  return server;
}

const codes = (r: Report) => [...new Set(r.findings.map((f) => f.code))].sort();
const find = (r: Report, code: FindingCode) => r.findings.filter((f) => f.code === code);

/** A raw TCP server for peers smtp-server cannot imitate (a hostile banner, a broken TLS layer). */
async function rawServer(address: string, port: number, onConnection: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  extraServers.push({
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((r) => server.close(r));
    },
  });
  return server;
}

describe('a healthy domain', () => {
  test('passes with no findings and full evidence', async () => {
    await lab.domain('healthy.test');
    const r = await check('healthy.test');
    expect(r.findings).toEqual([]);
    expect(r.status).toBe('pass');
    expect(r.evidence.sts.id).toBe('20261129T000000');
    expect(r.evidence.tlsrpt.rua).toEqual(['mailto:tls-reports@healthy.test']);
    expect(r.evidence.policy.policy?.mode).toBe('enforce');
    expect(r.evidence.policy.fetch?.http?.status).toBe(200);
    expect(r.evidence.policy.fetch?.tls?.certificate?.names).toEqual(['mta-sts.healthy.test']);
    expect(r.evidence.mx.hosts.map((h) => [h.host, h.coveredBy])).toEqual([
      ['mx1.healthy.test', 'mx1.healthy.test'],
      ['mx2.healthy.test', 'mx2.healthy.test'],
    ]);
    for (const h of r.evidence.mx.hosts) {
      expect(h.probes[0]?.banner).toContain('ESMTP');
      expect(h.probes[0]?.tls?.protocol).toBe('TLSv1.3');
      // The lab's certificates end 90 days after they were made, moments before this check: 89 whole days left.
      expect(h.probes[0]?.tls?.certificate?.daysLeft).toBe(89);
    }
    // The policy was fetched as a sender does: SNI and Host name the policy host.
    const request = lab.https.at(-1)?.requests.at(-1);
    expect(request).toEqual({
      host: 'mta-sts.healthy.test',
      path: '/.well-known/mta-sts.txt',
      servername: 'mta-sts.healthy.test',
    });
  });

  test('CNAMEs are followed and multi-string TXT records joined', async () => {
    await lab.domain('cname.test');
    lab.set('_mta-sts.cname.test', { CNAME: '_mta-sts.provider.test' });
    lab.set('_mta-sts.provider.test', { TXT: [['v=STSv1; ', 'id=joined1']] });
    const policyAddress = lab.dns.zone['mta-sts.cname.test']?.A;
    lab.set('mta-sts.cname.test', { CNAME: 'sts-host.provider.test' });
    lab.set('sts-host.provider.test', { A: policyAddress ?? [] });
    const r = await check('cname.test');
    expect(r.findings).toEqual([]);
    expect(r.evidence.sts.id).toBe('joined1');
  });

  test('a long TXT answer is fetched over TCP after truncation', async () => {
    await lab.domain('bigtxt.test');
    lab.set('_mta-sts.bigtxt.test', {
      TXT: ['v=STSv1; id=big1', ...Array.from({ length: 6 }, (_, i) => `filler-${i}-${'x'.repeat(120)}`)],
    });
    const r = await check('bigtxt.test');
    expect(r.findings).toEqual([]);
    expect(lab.dns.queries).toContain('TXT _mta-sts.bigtxt.test (tcp)');
  });
});

describe('the _mta-sts record', () => {
  test('STS_RECORD_MISSING when no record starts with v=STSv1', async () => {
    await lab.domain('nosts.test');
    lab.set('_mta-sts.nosts.test', { TXT: ['v=spf1 -all'] });
    const r = await check('nosts.test');
    expect(codes(r)).toEqual(['STS_RECORD_MISSING']);
    expect(r.status).toBe('fail');
    expect(find(r, 'STS_RECORD_MISSING')[0]?.subject).toBe('_mta-sts.nosts.test');
  });

  test('STS_RECORD_MISSING when the name does not exist', async () => {
    await lab.domain('nosts2.test');
    delete lab.dns.zone['_mta-sts.nosts2.test'];
    expect(codes(await check('nosts2.test'))).toEqual(['STS_RECORD_MISSING']);
  });

  test('STS_RECORD_MULTIPLE', async () => {
    await lab.domain('multists.test');
    lab.set('_mta-sts.multists.test', { TXT: ['v=STSv1; id=1', 'v=STSv1; id=2'] });
    expect(codes(await check('multists.test'))).toEqual(['STS_RECORD_MULTIPLE']);
  });

  test('STS_RECORD_INVALID names the rule', async () => {
    await lab.domain('badsts.test');
    lab.set('_mta-sts.badsts.test', { TXT: ['v=STSv1; id=2026-11-29'] });
    const r = await check('badsts.test');
    expect(codes(r)).toEqual(['STS_RECORD_INVALID']);
    expect(find(r, 'STS_RECORD_INVALID')[0]?.message).toContain('1 to 32 letters and digits');
  });

  test('DNS_LOOKUP_FAILED on SERVFAIL, and the other checks still run', async () => {
    await lab.domain('servfail.test');
    lab.set('_mta-sts.servfail.test', { servfail: true });
    const r = await check('servfail.test');
    expect(codes(r)).toEqual(['DNS_LOOKUP_FAILED']);
    expect(find(r, 'DNS_LOOKUP_FAILED')[0]?.message).toContain('SERVFAIL');
    expect(r.evidence.policy.policy?.mode).toBe('enforce');
  });

  test('DNS_LOOKUP_FAILED on a timeout', async () => {
    await lab.domain('dnstimeout.test');
    lab.set('_smtp._tls.dnstimeout.test', { drop: true });
    const r = await check('dnstimeout.test', {}, 800);
    expect(codes(r)).toEqual(['DNS_LOOKUP_FAILED']);
    expect(find(r, 'DNS_LOOKUP_FAILED')[0]?.subject).toBe('_smtp._tls.dnstimeout.test');
  });
});

describe('the policy host', () => {
  test('ADDRESS_NOT_ALLOWED, also behind a CNAME, and nothing is contacted', async () => {
    await lab.domain('private.test');
    lab.set('mta-sts.private.test', { CNAME: 'internal.private.test' });
    lab.set('internal.private.test', { A: ['10.1.2.3'], AAAA: ['fd00::1'] });
    const server = newestPolicyHost();
    const before = server.requests.length;
    const r = await check('private.test', { allowPrivateNetworks: false });
    const notAllowed = find(r, 'ADDRESS_NOT_ALLOWED');
    expect(notAllowed.map((f) => f.subject)).toEqual([
      'mta-sts.private.test',
      'mx1.private.test',
      'mx2.private.test',
    ]);
    expect(notAllowed[0]?.message).toContain('10.1.2.3 is a private address');
    expect(notAllowed[0]?.message).toContain('fd00::1 is a private address');
    expect(notAllowed[1]?.message).toContain('loopback');
    expect(r.evidence.policy.fetch).toBeNull();
    expect(r.evidence.mx.hosts.map((h) => [h.host, h.probes])).toEqual([
      ['mx1.private.test', []],
      ['mx2.private.test', []],
    ]);
    expect(server.requests.length).toBe(before);
  });

  test('POLICY_HOST_UNRESOLVABLE', async () => {
    await lab.domain('nohost.test');
    delete lab.dns.zone['mta-sts.nohost.test'];
    const r = await check('nohost.test');
    expect(codes(r)).toEqual(['POLICY_HOST_UNRESOLVABLE']);
  });

  test('POLICY_FETCH_FAILED when the connection is refused', async () => {
    await lab.domain('refused.test');
    lab.set('mta-sts.refused.test', { A: [lab.newAddress()] });
    const r = await check('refused.test');
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
    expect(find(r, 'POLICY_FETCH_FAILED')[0]?.message).toContain('connection refused');
  });

  test('POLICY_FETCH_FAILED when the server does not speak TLS', async () => {
    await lab.domain('notls.test');
    const address = lab.newAddress();
    await rawServer(address, lab.policyPort, (socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    lab.set('mta-sts.notls.test', { A: [address] });
    const r = await check('notls.test');
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
  });

  test('POLICY_FETCH_FAILED when the server never answers the request (timeout)', async () => {
    await lab.domain('slowhttp.test', { policy: () => {} });
    const r = await check('slowhttp.test', {}, 700);
    expect(codes(r)).toEqual(['POLICY_FETCH_FAILED']);
    expect(find(r, 'POLICY_FETCH_FAILED')[0]?.message).toMatch(/within 700 ms/);
  });

  test('POLICY_CERT_EXPIRED', async () => {
    const cert = lab.cert(['mta-sts.expired.test'], { notBeforeDays: -100, notAfterDays: -2 });
    await lab.domain('expired.test', { policyCert: cert });
    const r = await check('expired.test');
    expect(codes(r)).toEqual(['POLICY_CERT_EXPIRED']);
    expect(r.evidence.policy.fetch?.tls?.certificate?.expired).toBe(true);
  });

  test('POLICY_CERT_NAME_MISMATCH', async () => {
    const cert = lab.cert(['www.wrongname.test']);
    await lab.domain('wrongname.test', { policyCert: cert });
    const r = await check('wrongname.test');
    expect(codes(r)).toEqual(['POLICY_CERT_NAME_MISMATCH']);
    expect(find(r, 'POLICY_CERT_NAME_MISMATCH')[0]?.message).toContain('www.wrongname.test');
  });

  test.each([
    ['self-signed', { selfSigned: true }, 'self-signed'],
    ['chain-less', { viaIntermediate: true, chain: false }, 'intermediate'],
    ['not yet valid', { notBeforeDays: 3, notAfterDays: 90 }, 'not valid yet'],
  ])('POLICY_CERT_UNTRUSTED: %s', async (name, options, words) => {
    const domain = `untrusted-${name.replace(/\W/g, '')}.test`;
    await lab.domain(domain, { policyCert: lab.cert([`mta-sts.${domain}`], options) });
    const r = await check(domain);
    expect(codes(r)).toEqual(['POLICY_CERT_UNTRUSTED']);
    expect(find(r, 'POLICY_CERT_UNTRUSTED')[0]?.message).toContain(words);
  });

  test('a full chain through an intermediate is trusted', async () => {
    await lab.domain('fullchain.test', {
      policyCert: lab.cert(['mta-sts.fullchain.test'], { viaIntermediate: true, chain: true }),
    });
    expect(codes(await check('fullchain.test'))).toEqual([]);
  });

  test('POLICY_CERT_EXPIRING inside the warning window only', async () => {
    await lab.domain('expiring.test', {
      policyCert: lab.cert(['mta-sts.expiring.test'], { notAfterDays: 5 }),
    });
    const r = await check('expiring.test');
    expect(codes(r)).toEqual(['POLICY_CERT_EXPIRING']);
    expect(r.status).toBe('warn');
    expect(codes(await check('expiring.test', { certWarnDays: 3 }))).toEqual([]);
  });

  test('POLICY_HTTP_STATUS', async () => {
    await lab.domain('status404.test', { policy: (_req, res) => res.writeHead(404).end('nope') });
    const r = await check('status404.test');
    expect(codes(r)).toEqual(['POLICY_HTTP_STATUS']);
    expect(find(r, 'POLICY_HTTP_STATUS')[0]?.message).toContain('HTTP 404');
  });

  test('POLICY_REDIRECT, and the redirect is not followed', async () => {
    await lab.domain('redirect.test', {
      policy: (req, res) => {
        if (req.url === '/.well-known/mta-sts.txt') res.writeHead(301, { Location: '/elsewhere.txt' }).end();
        else
          res
            .writeHead(200, { 'Content-Type': 'text/plain' })
            .end('version: STSv1\nmode: none\nmax_age: 1\n');
      },
    });
    const server = lab.https.at(-1);
    const r = await check('redirect.test');
    expect(codes(r)).toEqual(['POLICY_REDIRECT']);
    expect(find(r, 'POLICY_REDIRECT')[0]?.message).toContain('/elsewhere.txt');
    expect(server?.requests.map((q) => q.path)).toEqual(['/.well-known/mta-sts.txt']);
  });

  test('POLICY_CONTENT_TYPE', async () => {
    await lab.domain('html.test');
    const policy = 'version: STSv1\nmode: enforce\nmx: mx1.html.test\nmx: mx2.html.test\nmax_age: 1209600\n';
    newestPolicyHost().handler = (_req, res) =>
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(policy);
    const r = await check('html.test');
    expect(codes(r)).toEqual(['POLICY_CONTENT_TYPE']);
    expect(find(r, 'POLICY_CONTENT_TYPE')[0]?.message).toContain('"text/html"');
  });

  test('POLICY_TOO_LARGE by Content-Length', async () => {
    await lab.domain('large.test', {
      policy: (_req, res) =>
        res
          .writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '70000' })
          .end('x'.repeat(70000)),
    });
    const r = await check('large.test');
    expect(codes(r)).toEqual(['POLICY_TOO_LARGE']);
    expect(find(r, 'POLICY_TOO_LARGE')[0]?.message).toContain('70000 bytes declared');
  });

  test('POLICY_TOO_LARGE by the stream when no length is declared', async () => {
    await lab.domain('stream.test', {
      policy: (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        const chunk = `${'mx: a.stream.test\n'.repeat(500)}`;
        let sent = 0;
        const pump = () => {
          while (sent < 200 && res.write(chunk)) sent++;
          if (sent < 200) res.once('drain', pump);
          else res.end();
        };
        pump();
      },
    });
    const r = await check('stream.test');
    expect(codes(r)).toEqual(['POLICY_TOO_LARGE']);
    expect(r.evidence.policy.fetch?.http?.contentLength).toBeNull();
    expect(r.evidence.policy.fetch?.http?.bytesRead).toBeLessThan(200 * 9000);
  });

  test('POLICY_SYNTAX, with every other check still reported', async () => {
    await lab.domain('syntax.test', {
      policy: 'version: STSv1\nmode: enforcing\nmx: mx1.syntax.test\nmax_age: 86400\n',
    });
    const r = await check('syntax.test');
    expect(codes(r)).toEqual(['POLICY_SYNTAX']);
    expect(r.evidence.policy.valid).toBe(false);
    expect(find(r, 'POLICY_SYNTAX')[0]?.message).toContain('"enforcing"');
  });

  test('POLICY_DUPLICATE_FIELD', async () => {
    await lab.domain('dup.test', {
      policy:
        'version: STSv1\nmode: enforce\nmode: testing\nmx: mx1.dup.test\nmx: mx2.dup.test\nmax_age: 1209600\n',
    });
    expect(codes(await check('dup.test'))).toEqual(['POLICY_DUPLICATE_FIELD']);
  });

  test('POLICY_UNKNOWN_FIELD', async () => {
    await lab.domain('unknown.test', {
      policy:
        'version: STSv1\nmode: enforce\nmx: mx1.unknown.test\nmx: mx2.unknown.test\nmax-age: 1209600\nmax_age: 1209600\n',
    });
    const r = await check('unknown.test');
    expect(codes(r)).toEqual(['POLICY_UNKNOWN_FIELD']);
    expect(find(r, 'POLICY_UNKNOWN_FIELD')[0]?.message).toContain('did you mean "max_age"');
  });

  test('POLICY_MODE_TESTING', async () => {
    await lab.domain('testing.test', { mode: 'testing' });
    const r = await check('testing.test');
    expect(codes(r)).toEqual(['POLICY_MODE_TESTING']);
    expect(r.status).toBe('warn');
  });

  test('POLICY_MODE_NONE', async () => {
    await lab.domain('modenone.test', { policy: 'version: STSv1\nmode: none\nmax_age: 86400\n' });
    expect(codes(await check('modenone.test'))).toEqual(['POLICY_MODE_NONE']);
  });

  test('POLICY_MAX_AGE_SHORT in enforce only', async () => {
    await lab.domain('short.test', {
      policy: 'version: STSv1\nmode: enforce\nmx: mx1.short.test\nmx: mx2.short.test\nmax_age: 86400\n',
    });
    const r = await check('short.test');
    expect(codes(r)).toEqual(['POLICY_MAX_AGE_SHORT']);
    expect(find(r, 'POLICY_MAX_AGE_SHORT')[0]?.message).toContain('86400 seconds (24 hours)');
  });

  test('POLICY_MX_UNUSED', async () => {
    await lab.domain('unused.test', {
      policy:
        'version: STSv1\nmode: enforce\nmx: mx1.unused.test\nmx: mx2.unused.test\nmx: old.unused.test\nmax_age: 1209600\n',
    });
    const r = await check('unused.test');
    expect(codes(r)).toEqual(['POLICY_MX_UNUSED']);
    expect(find(r, 'POLICY_MX_UNUSED')[0]?.message).toContain('old.unused.test');
  });
});

describe('the MX hosts', () => {
  test('MX_MISSING without MX records', async () => {
    await lab.domain('nomx.test');
    lab.set('nomx.test', { A: ['127.0.0.1'] });
    const r = await check('nomx.test');
    expect(codes(r)).toContain('MX_MISSING');
    expect(find(r, 'MX_MISSING')[0]?.message).toContain('implicit MX');
  });

  test('MX_MISSING with a null MX', async () => {
    await lab.domain('nullmx.test', { policy: 'version: STSv1\nmode: none\nmax_age: 86400\n' });
    lab.set('nullmx.test', { MX: [{ preference: 0, exchange: '.' }] });
    const r = await check('nullmx.test');
    expect(codes(r)).toEqual(['MX_MISSING', 'POLICY_MODE_NONE']);
    expect(r.evidence.mx.nullMx).toBe(true);
  });

  test('MX_NOT_IN_POLICY is an error in enforce; a wildcard covers one label only', async () => {
    await lab.domain('notcovered.test', {
      mxHosts: ['mx1.notcovered.test', 'a.b.notcovered.test'],
      policy: 'version: STSv1\nmode: enforce\nmx: *.notcovered.test\nmax_age: 1209600\n',
    });
    const r = await check('notcovered.test');
    expect(codes(r)).toEqual(['MX_NOT_IN_POLICY']);
    const f = find(r, 'MX_NOT_IN_POLICY');
    expect(f.map((x) => [x.subject, x.severity])).toEqual([['a.b.notcovered.test', 'error']]);
    expect(r.evidence.mx.hosts.map((h) => h.coveredBy)).toEqual(['*.notcovered.test', null]);
  });

  test('MX_NOT_IN_POLICY is a warning in testing', async () => {
    await lab.domain('notcovered2.test', {
      mxHosts: ['mx1.notcovered2.test', 'evilmx1.notcovered2.test'],
      policy: 'version: STSv1\nmode: testing\nmx: mx1.notcovered2.test\nmax_age: 86400\n',
    });
    const r = await check('notcovered2.test');
    expect(codes(r)).toEqual(['MX_NOT_IN_POLICY', 'POLICY_MODE_TESTING']);
    expect(find(r, 'MX_NOT_IN_POLICY')[0]?.severity).toBe('warning');
    expect(r.status).toBe('warn');
  });

  test('MX_UNREACHABLE for one host, the other still judged', async () => {
    await lab.domain('unreach.test');
    lab.set('mx2.unreach.test', { A: [lab.newAddress()] });
    const r = await check('unreach.test');
    expect(codes(r)).toEqual(['MX_UNREACHABLE']);
    expect(find(r, 'MX_UNREACHABLE')[0]?.subject).toBe('mx2.unreach.test');
    expect(find(r, 'MX_UNREACHABLE')[0]?.message).toContain('connection refused');
  });

  test('MX_UNREACHABLE when an MX host has no address', async () => {
    await lab.domain('noaddr.test');
    delete lab.dns.zone['mx2.noaddr.test'];
    const r = await check('noaddr.test');
    expect(codes(r)).toEqual(['MX_UNREACHABLE']);
  });

  test('MX_STARTTLS_MISSING', async () => {
    await lab.domain('nostarttls.test', { mx: { 'mx1.nostarttls.test': { starttls: false } } });
    const r = await check('nostarttls.test');
    expect(codes(r)).toEqual(['MX_STARTTLS_MISSING']);
    expect(find(r, 'MX_STARTTLS_MISSING')[0]?.subject).toBe('mx1.nostarttls.test');
  });

  test('MX_TLS_FAILED when the server offers only TLS 1.1 or lower', async () => {
    await lab.domain('oldtls.test', {
      mx: {
        'mx1.oldtls.test': {
          tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' },
        },
      },
    });
    const r = await check('oldtls.test');
    expect(codes(r)).toEqual(['MX_TLS_FAILED']);
    expect(find(r, 'MX_TLS_FAILED')[0]?.message).toMatch(/TLSv1\.1|TLS handshake failed/);
  });

  test('MX_TLS_FAILED when the TLS handshake breaks after STARTTLS', async () => {
    await lab.domain('brokentls.test');
    const address = lab.newAddress();
    await rawServer(address, lab.smtpPort, (socket) => {
      socket.on('error', () => {});
      socket.write('220 broken.test ESMTP\r\n');
      socket.on('data', (d) => {
        const line = d.toString();
        if (line.startsWith('EHLO')) socket.write('250-broken.test\r\n250 STARTTLS\r\n');
        else if (line.startsWith('STARTTLS')) socket.write('220 go ahead\r\n');
        else socket.end('this is not TLS\r\n');
      });
    });
    lab.set('mx2.brokentls.test', { A: [address] });
    const r = await check('brokentls.test');
    expect(codes(r)).toEqual(['MX_TLS_FAILED']);
    expect(find(r, 'MX_TLS_FAILED')[0]?.subject).toBe('mx2.brokentls.test');
  });

  test('MX_SMTP_ERROR when the server refuses the session', async () => {
    await lab.domain('refuse554.test');
    const address = lab.newAddress();
    await rawServer(address, lab.smtpPort, (socket) => {
      socket.on('error', () => {});
      socket.end('554 go away\r\n');
    });
    lab.set('mx2.refuse554.test', { A: [address] });
    const r = await check('refuse554.test');
    expect(codes(r)).toEqual(['MX_SMTP_ERROR']);
    expect(find(r, 'MX_SMTP_ERROR')[0]?.message).toContain('554');
  });

  test('MX_CERT_EXPIRED', async () => {
    await lab.domain('mxexpired.test', {
      mx: {
        'mx1.mxexpired.test': {
          cert: lab.cert(['mx1.mxexpired.test'], { notBeforeDays: -400, notAfterDays: -10 }),
        },
      },
    });
    const r = await check('mxexpired.test');
    expect(codes(r)).toEqual(['MX_CERT_EXPIRED']);
    expect(find(r, 'MX_CERT_EXPIRED')[0]?.message).toContain('10 days ago');
  });

  test('MX_CERT_NAME_MISMATCH', async () => {
    await lab.domain('mxname.test', { mx: { 'mx2.mxname.test': { cert: lab.cert(['mail.other.test']) } } });
    const r = await check('mxname.test');
    expect(codes(r)).toEqual(['MX_CERT_NAME_MISMATCH']);
    expect(find(r, 'MX_CERT_NAME_MISMATCH')[0]?.subject).toBe('mx2.mxname.test');
  });

  test('MX_CERT_UNTRUSTED', async () => {
    await lab.domain('mxself.test', {
      mx: { 'mx1.mxself.test': { cert: lab.cert(['mx1.mxself.test'], { selfSigned: true }) } },
    });
    const r = await check('mxself.test');
    expect(codes(r)).toEqual(['MX_CERT_UNTRUSTED']);
    expect(find(r, 'MX_CERT_UNTRUSTED')[0]?.message).toContain('self-signed');
  });

  test('MX_CERT_EXPIRING', async () => {
    await lab.domain('mxexpiring.test', {
      mx: { 'mx1.mxexpiring.test': { cert: lab.cert(['mx1.mxexpiring.test'], { notAfterDays: 3 }) } },
    });
    const r = await check('mxexpiring.test');
    expect(codes(r)).toEqual(['MX_CERT_EXPIRING']);
    expect(find(r, 'MX_CERT_EXPIRING')[0]?.message).toMatch(/in [23] day/);
  });

  test('SMTP_PORT_BLOCKED instead of a wall of MX_UNREACHABLE when every MX times out', async () => {
    await lab.domain('blocked.test');
    const holes = await Promise.all(
      [lab.newAddress(), lab.newAddress()].map((a) => Blackhole.start(a, lab.smtpPort)),
    );
    extraServers.push(...holes.map((h) => ({ close: () => h.stop() })));
    lab.set('mx1.blocked.test', { A: [holes[0]?.address ?? ''] });
    lab.set('mx2.blocked.test', { A: [holes[1]?.address ?? ''] });
    const r = await check('blocked.test', {}, 600);
    expect(codes(r)).toEqual(['SMTP_PORT_BLOCKED']);
    expect(r.status).toBe('warn');
    expect(r.evidence.mx.hosts.flatMap((h) => h.probes.map((p) => p.error?.kind))).toEqual([
      'timeout',
      'timeout',
    ]);
  });

  test('MX_PROBE_SKIPPED when the SMTP probe is off', async () => {
    await lab.domain('skipped.test');
    const r = await check('skipped.test', { smtpProbe: false });
    expect(codes(r)).toEqual(['MX_PROBE_SKIPPED']);
    expect(r.status).toBe('pass');
    expect(r.evidence.smtpProbe).toBe('off');
  });
});

describe('IPv6', () => {
  test('an MX host reached over IPv6 is probed like any other; ::1 is refused unless private networks are allowed', async () => {
    await lab.domain('six.test', { mxHosts: ['mx1.six.test'] });
    const { TestSmtpServer } = await import('../support/smtp-server.js');
    const v6 = await TestSmtpServer.start({ cert: lab.cert(['mx6.six.test']) }, '::1', lab.smtpPort);
    extraServers.push({ close: () => v6.stop() });
    lab.set('six.test', {
      MX: [
        { preference: 10, exchange: 'mx1.six.test' },
        { preference: 20, exchange: 'mx6.six.test' },
      ],
    });
    lab.set('mx6.six.test', { AAAA: ['::1'] });
    newestPolicyHost().handler = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/plain' })
        .end('version: STSv1\nmode: enforce\nmx: *.six.test\nmax_age: 1209600\n');
    const r = await check('six.test');
    expect(r.findings).toEqual([]);
    const probe = r.evidence.mx.hosts.find((h) => h.host === 'mx6.six.test')?.probes[0];
    expect(probe).toMatchObject({ address: '::1', starttlsOffered: true, tls: { protocol: 'TLSv1.3' } });
    const guarded = await check('six.test', { allowPrivateNetworks: false });
    expect(find(guarded, 'ADDRESS_NOT_ALLOWED').find((f) => f.subject === 'mx6.six.test')?.message).toContain(
      '::1 is a loopback address',
    );
  });
});

describe('the TLS-RPT record', () => {
  test('TLSRPT_MISSING', async () => {
    await lab.domain('notlsrpt.test');
    delete lab.dns.zone['_smtp._tls.notlsrpt.test'];
    const r = await check('notlsrpt.test');
    expect(codes(r)).toEqual(['TLSRPT_MISSING']);
    expect(r.status).toBe('warn');
  });

  test('TLSRPT_MULTIPLE', async () => {
    await lab.domain('multirpt.test');
    lab.set('_smtp._tls.multirpt.test', {
      TXT: ['v=TLSRPTv1; rua=mailto:a@multirpt.test', 'v=TLSRPTv1; rua=mailto:b@multirpt.test'],
    });
    expect(codes(await check('multirpt.test'))).toEqual(['TLSRPT_MULTIPLE']);
  });

  test('TLSRPT_INVALID', async () => {
    await lab.domain('badrpt.test');
    lab.set('_smtp._tls.badrpt.test', { TXT: ['v=TLSRPTv1; rua=http://badrpt.test/reports'] });
    const r = await check('badrpt.test');
    expect(codes(r)).toEqual(['TLSRPT_INVALID']);
    expect(find(r, 'TLSRPT_INVALID')[0]?.message).toContain('mailto: or https:');
  });
});

describe('the check as a whole', () => {
  test('one broken domain reports every fault at once', async () => {
    await lab.domain('broken.test', {
      mxHosts: ['mx1.broken.test', 'mx9.broken.test'],
      policy: 'version: STSv1\nmode: enforce\nmx: mx1.broken.test\nmax_age: 3600\n',
      policyCert: lab.cert(['mta-sts.broken.test'], { notAfterDays: 2 }),
      mx: {
        'mx1.broken.test': { cert: lab.cert(['mx1.broken.test'], { notBeforeDays: -100, notAfterDays: -1 }) },
      },
    });
    lab.set('_smtp._tls.broken.test', { TXT: [] });
    lab.set('_mta-sts.broken.test', { TXT: ['v=STSv1; id=x', 'v=STSv1; id=y'] });
    const r = await check('broken.test');
    expect(codes(r)).toEqual([
      'MX_CERT_EXPIRED',
      'MX_NOT_IN_POLICY',
      'POLICY_CERT_EXPIRING',
      'POLICY_MAX_AGE_SHORT',
      'STS_RECORD_MULTIPLE',
      'TLSRPT_MISSING',
    ]);
    // Errors come first.
    const severities = r.findings.map((f) => f.severity);
    expect(severities).toEqual(
      [...severities].sort((a, b) => (a === b ? 0 : a === 'error' ? -1 : b === 'error' ? 1 : 0)),
    );
  });

  test('the policy fetch and every MX probe run at once', async () => {
    // Each peer holds its answer until all five have been contacted: a check that ran them one after another would
    // deadlock until its timeouts and report failures. No clock is read.
    const allContacted = barrier(5);
    const mxHosts = ['mx1.slow.test', 'mx2.slow.test', 'mx3.slow.test', 'mx4.slow.test'];
    const policy = `version: STSv1\nmode: enforce\n${mxHosts.map((h) => `mx: ${h}\n`).join('')}max_age: 1209600\n`;
    await lab.domain('slow.test', {
      mxHosts,
      policy: (_req, res) => {
        allContacted().then(() => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(policy));
      },
      mx: Object.fromEntries(mxHosts.map((h) => [h, { onConnect: allContacted }])),
    });
    const r = await check('slow.test', {}, 4000);
    expect(r.findings).toEqual([]);
  });

  test('every contract code except the monitor-only one has a test that produces it, here or beside', async () => {
    // A code with a test file of its own (the probe limits) is found there; the check tests hold the rest.
    const fs = await import('node:fs/promises');
    const files = ['check.test.ts', 'probe-limits.test.ts', 'truthful.test.ts'];
    const texts = await Promise.all(files.map((f) => fs.readFile(new URL(f, import.meta.url), 'utf8')));
    const file = texts.join('\n');
    const monitorOnly = ['STS_ID_NOT_UPDATED'];
    for (const code of FINDING_CODES) {
      if (monitorOnly.includes(code)) continue;
      expect(file, code).toMatch(new RegExp(`test(\\.each\\([^]*?\\))?\\('${code}`));
    }
  });
});
