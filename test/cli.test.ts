import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../src/cli.js';
import type { Report } from '../src/core/check.js';
import { Lab } from './support/lab.js';

const BIN = fileURLToPath(new URL('../bin/mtasts.js', import.meta.url));

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.start();
  await lab.domain('good.test');
  await lab.domain('bad.test', {
    mode: 'testing',
    policyCert: lab.cert(['mta-sts.bad.test'], { notAfterDays: 4 }),
  });
  delete lab.dns.zone['_smtp._tls.bad.test'];
  lab.set('_mta-sts.bad.test', { TXT: ['v=STSv1; id=not-valid!'] });
  await lab.domain('xn--bcher-kva.test');
});
afterAll(() => lab.stop());

const io = (env: Record<string, string> = {}) => lab.cliIo(env);

describe('mtasts check (in process)', () => {
  test('a healthy domain: human text, exit 0', async () => {
    const t = io();
    expect(await main(['check', 'good.test'], t.value)).toBe(0);
    const text = t.out();
    expect(text).toMatch(/^good\.test: PASS/);
    expect(text).toContain('No problems found');
    expect(text).toContain('mx: mx1.good.test');
    expect(text).toContain('TLSv1.3');
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(t.err()).toBe('');
  });

  test('a broken domain: --json report, exit 1', async () => {
    const t = io();
    expect(await main(['check', 'bad.test', '--json'], t.value)).toBe(1);
    const report = JSON.parse(t.out()) as Report;
    expect(report.domain).toBe('bad.test');
    expect(report.status).toBe('fail');
    expect(Number.isNaN(Date.parse(report.checkedAt))).toBe(false);
    expect(report.findings.map((f) => f.code).sort()).toEqual([
      'POLICY_CERT_EXPIRING',
      'POLICY_MODE_TESTING',
      'STS_RECORD_INVALID',
      'TLSRPT_MISSING',
    ]);
    for (const f of report.findings) {
      expect(Object.keys(f).sort()).toEqual(['code', 'fix', 'message', 'severity', 'subject']);
    }
  });

  test('the human report groups by severity, errors first, each with its fix', async () => {
    const t = io();
    await main(['check', 'bad.test'], t.value);
    const text = t.out();
    expect(text.indexOf('Errors:')).toBeLessThan(text.indexOf('Warnings:'));
    expect(text).toContain('x STS_RECORD_INVALID  _mta-sts.bad.test');
    expect(text).toContain('Fix: Publish the record as');
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  test('a Unicode name is checked as its A-label and shown in both forms', async () => {
    const t = io();
    expect(await main(['check', 'bücher.test', '--json'], t.value)).toBe(0);
    const report = JSON.parse(t.out()) as Report;
    expect(report.domain).toBe('xn--bcher-kva.test');
    expect(report.domainUnicode).toBe('bücher.test');
    const human = io();
    await main(['check', 'BÜCHER.test.'], human.value);
    expect(human.out()).toMatch(/^bücher\.test \(xn--bcher-kva\.test\): PASS/);
  });

  test('MTASTS_SMTP_PROBE=off skips the MX probes and says so', async () => {
    const t = io({ MTASTS_SMTP_PROBE: 'off' });
    expect(await main(['check', 'good.test', '--json'], t.value)).toBe(0);
    const report = JSON.parse(t.out()) as Report;
    expect(report.findings.map((f) => f.code)).toEqual(['MX_PROBE_SKIPPED']);
  });

  test('without MTASTS_ALLOW_PRIVATE_NETWORKS loopback hosts are not contacted', async () => {
    const t = io({ MTASTS_ALLOW_PRIVATE_NETWORKS: '' });
    expect(await main(['check', 'good.test', '--json'], t.value)).toBe(1);
    const report = JSON.parse(t.out()) as Report;
    expect(new Set(report.findings.map((f) => f.code))).toEqual(new Set(['ADDRESS_NOT_ALLOWED']));
  });

  test.each([
    ['MTASTS_TIMEOUT_MS', 'soon', 'MTASTS_TIMEOUT_MS must be a whole number'],
    ['MTASTS_DNS_SERVERS', 'dns.example', 'MTASTS_DNS_SERVERS "dns.example" is not an ip or ip:port'],
    ['MTASTS_ALLOW_PRIVATE_NETWORKS', 'maybe', 'MTASTS_ALLOW_PRIVATE_NETWORKS must be 1/on or 0/off'],
    ['MTASTS_CERT_WARN_DAYS', '0', 'MTASTS_CERT_WARN_DAYS must be a whole number from 1 to 365'],
  ])('a bad %s is one line and exit 2', async (name, value, message) => {
    const t = io({ [name]: value });
    expect(await main(['check', 'good.test'], t.value)).toBe(2);
    expect(t.err()).toBe(`mtasts: ${message}${t.err().slice(`mtasts: ${message}`.length)}`);
    expect(t.err().trim().split('\n')).toHaveLength(1);
  });

  test('two bad engine settings are two lines, one naming each, and exit 2', async () => {
    const t = io({ MTASTS_TIMEOUT_MS: 'soon', MTASTS_MAX_MX_HOSTS: '0' });
    expect(await main(['check', 'good.test'], t.value)).toBe(2);
    expect(t.out()).toBe('');
    expect(t.err().trim().split('\n')).toEqual([
      'mtasts: MTASTS_TIMEOUT_MS must be a whole number from 100 to 120000, got "soon"',
      'MTASTS_MAX_MX_HOSTS must be a whole number from 1 to 100, got "0"',
    ]);
  });
});

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('the mtasts binary', () => {
  test.each([
    [['check', ''], 'no domain given'],
    [['check', 'foo bar'], 'white space'],
    [['check', 'foo', 'bar'], 'give one domain'],
    [['check', '-rf'], 'is not an option or a domain'],
    [['check', 'a..b.com'], 'empty label'],
    [['check', '192.0.2.1'], 'IP address'],
    [['check', '::1'], 'IP address'],
    [['check', 'localhost'], 'localhost is not a mail domain'],
    [['check', 'https://example.com/'], 'not a URL'],
    [['check', `${'a'.repeat(64)}.com`], 'at most 63'],
    [['check', `${'abcdefgh.'.repeat(30)}com`], 'at most 253'],
    [['check', 'exa$mple.com'], 'cannot hold'],
    [['check'], 'no domain given'],
    [['check', 'example.com', '--jsn'], 'unknown option "--jsn"'],
    [['frobnicate'], 'unknown command'],
    [
      ['records', 'example.com', '--max-age', '99999999999'],
      '--max-age 99999999999 is out of range: give 1 to 31557600 seconds (365.25 days)',
    ],
    [
      ['records', 'example.com', '--max-age', 'week'],
      '--max-age must be a whole number of seconds, not "week"',
    ],
    [['records', 'example.com', '--rua', 'mailto:tls x@example.com'], 'does not hold an e-mail address'],
  ])('%j: one plain line on stderr, exit 2', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\bat .*:\d+:\d+/); // no stack trace
  });

  test('mtasts check with two bad engine settings: two plain lines on stderr, exit 2', async () => {
    const r = await run(['check', 'example.com'], {
      MTASTS_DNS_SERVERS: 'dns.example',
      MTASTS_CERT_WARN_DAYS: '0',
    });
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'mtasts: MTASTS_DNS_SERVERS "dns.example" is not an ip or ip:port (IPv6 as [ip]:port)\n' +
        'MTASTS_CERT_WARN_DAYS must be a whole number from 1 to 365, got "0"\n',
    });
  });

  test('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const r = await run(['--version']);
    expect(r).toEqual({ code: 0, stdout: `mtasts-bot ${version}\n`, stderr: '' });
  });

  test('help prints usage and exits 0', async () => {
    const r = await run(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('mtasts check <domain> [--json]');
  });

  // A sender's view, end to end: the real binary, configured only by the environment the contract names
  // (MTASTS_DNS_SERVERS, NODE_EXTRA_CA_CERTS, MTASTS_ALLOW_PRIVATE_NETWORKS), against peers on the real ports 443 and
  // 25 of loopback addresses. Binding those ports needs root, which this project's machines and CI have.
  test.runIf(process.getuid?.() === 0)(
    'checks a domain served on ports 443 and 25, configured by the environment',
    async () => {
      const { TestHttpsServer, servePolicy } = await import('./support/https-server.js');
      const { TestSmtpServer } = await import('./support/smtp-server.js');
      const policyAddress = lab.newAddress();
      const mxAddress = lab.newAddress();
      const policy = 'version: STSv1\nmode: enforce\nmx: mail.e2e.test\nmax_age: 1209600\n';
      const https = await TestHttpsServer.start(
        lab.cert(['mta-sts.e2e.test']),
        servePolicy(policy),
        policyAddress,
        443,
      );
      const smtp = await TestSmtpServer.start({ cert: lab.cert(['mail.e2e.test']) }, mxAddress, 25);
      try {
        lab.set('e2e.test', { MX: [{ preference: 10, exchange: 'mail.e2e.test' }] });
        lab.set('mail.e2e.test', { A: [mxAddress] });
        lab.set('mta-sts.e2e.test', { A: [policyAddress] });
        lab.set('_mta-sts.e2e.test', { TXT: ['v=STSv1; id=e2e1'] });
        lab.set('_smtp._tls.e2e.test', { TXT: ['v=TLSRPTv1; rua=mailto:tls@e2e.test'] });
        const dir = await mkdtemp(join(tmpdir(), 'mtasts-ca-'));
        const caFile = join(dir, 'ca.pem');
        writeFileSync(caFile, lab.ca.rootPem);
        const env = {
          MTASTS_DNS_SERVERS: lab.dns.address,
          MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
          NODE_EXTRA_CA_CERTS: caFile,
        };
        const r = await run(['check', 'e2e.test', '--json'], env);
        expect(r.stderr).toBe('');
        const report = JSON.parse(r.stdout) as Report;
        expect(report.findings).toEqual([]);
        expect(report.status).toBe('pass');
        expect(r.code).toBe(0);
        expect(report.evidence.mx.hosts[0]?.probes[0]?.port).toBe(25);
        // Without the lab CA the same check names both certificates as untrusted.
        const untrusted = await run(['check', 'e2e.test', '--json'], { ...env, NODE_EXTRA_CA_CERTS: '' });
        expect(untrusted.code).toBe(1);
        expect((JSON.parse(untrusted.stdout) as Report).findings.map((f) => f.code).sort()).toEqual([
          'MX_CERT_UNTRUSTED',
          'POLICY_CERT_UNTRUSTED',
        ]);
      } finally {
        await Promise.all([https.stop(), smtp.stop()]);
      }
    },
  );
});
