import { createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import { checkDomain, type Report } from '../../src/core/check.js';
import { httpsGet } from '../../src/core/net/https-get.js';
import { formatPolicy, parsePolicy } from '../../src/core/policy.js';
import { parseStsRecord } from '../../src/core/sts-record.js';
import { parseTlsRptRecord } from '../../src/core/tlsrpt-record.js';
import {
  applyUrl,
  discover,
  loadTemplate,
  templateSchema,
  templateVariables,
} from '../../src/generate/domain-connect.js';
import { freshId, planRecords, relativeName } from '../../src/generate/records.js';
import { TestHttpsServer } from '../support/https-server.js';
import { Lab } from '../support/lab.js';
import { reportOf } from '../support/report.js';

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(() => lab.stop());

// No database unless a test gives one: a stray db/mtasts.sqlite in the project must not change what records says.
const NO_DATABASE = join(mkdtempSync(join(tmpdir(), 'mtasts-records-')), 'none.sqlite');
const io = (env: Record<string, string> = {}) => lab.cliIo({ DATABASE_PATH: NO_DATABASE, ...env });

interface RecordsJson {
  plan: ReturnType<typeof planRecords>;
  domainConnect: { supported: boolean; provider: string | null; applyUrl: string | null; message: string };
}

async function records(args: string[], env: Record<string, string> = {}): Promise<RecordsJson> {
  const t = io(env);
  const code = await main(['records', ...args, '--json'], t.value);
  expect(t.err()).toBe('');
  expect(code).toBe(0);
  return JSON.parse(t.out()) as RecordsJson;
}

/** A domain with mail servers but no MTA-STS yet. */
async function newDomain(domain: string): Promise<void> {
  const mx = [`mx1.${domain}`, `mx2.${domain}`];
  lab.set(domain, { SOA: true, MX: mx.map((exchange, i) => ({ preference: 10 * (i + 1), exchange })) });
  for (const h of mx) await lab.mxHost(h);
}

describe('mtasts records for a domain without MTA-STS', () => {
  test('starts in testing with the real MX hosts, a fresh id and a placeholder rua', async () => {
    await newDomain('fresh.test');
    const { plan } = await records(['fresh.test']);
    expect(plan.steps).toHaveLength(1);
    const [{ bind, snippets, notBefore, policyText, id }] = plan.steps as [(typeof plan.steps)[0]];
    expect([notBefore, policyText, id]).toEqual([null, plan.policyText, plan.id]);
    expect(plan.mode).toBe('testing');
    expect(plan.maxAge).toBe(86400);
    expect(plan.mx).toEqual(['mx1.fresh.test', 'mx2.fresh.test']);
    expect(plan.id).toMatch(/^\d{8}T\d{6}$/);
    expect(plan.rua).toEqual(['mailto:tls-reports@fresh.test']);
    expect(plan.ruaPlaceholder).toBe(true);
    expect(plan.warnings.join(' ')).toContain('placeholder');
    expect(plan.zone).toBe('fresh.test');
    expect(plan.records.map((r) => [r.host, r.type, r.value])).toEqual([
      ['_mta-sts', 'TXT', `v=STSv1; id=${plan.id}`],
      ['_smtp._tls', 'TXT', 'v=TLSRPTv1; rua=mailto:tls-reports@fresh.test'],
    ]);
    expect(bind).toMatch(
      new RegExp(`^_mta-sts\\.fresh\\.test\\. +3600 +IN TXT +"v=STSv1; id=${plan.id}"$`, 'm'),
    );
    expect(plan.change).toBeNull();
    expect(snippets.nginx).toContain('server_name mta-sts.fresh.test;');
    expect(snippets.nginx).toContain('default_type text/plain;');
    expect(snippets.apache).toContain('ForceType text/plain');
    expect(snippets.caddy).toContain(plan.policyText);
  });

  test('what it generates, published and served for real, passes mtasts check', async () => {
    await newDomain('roundtrip.test');
    const { plan } = await records(['roundtrip.test', '--rua', 'mailto:tlsrpt@roundtrip.test']);
    for (const r of plan.records) lab.set(r.name, { TXT: [r.value] });
    await lab.policyHost('roundtrip.test', plan.policyText);
    const t = io();
    expect(await main(['check', 'roundtrip.test', '--json'], t.value)).toBe(0);
    const report = JSON.parse(t.out()) as Report;
    expect(report.findings.map((f) => f.code)).toEqual(['POLICY_MODE_TESTING']);
  });

  test('the text output holds every piece', async () => {
    await newDomain('text.test');
    const t = io();
    expect(await main(['records', 'text.test'], t.value)).toBe(0);
    const text = t.out();
    for (const piece of [
      'mode testing, max_age 86400 (1 day)',
      'One step, safe now.',
      'Step 1 of 1 (now): Publish the policy, then the records',
      'Name: _mta-sts   Type: TXT   TTL: 3600',
      'Value: v=TLSRPTv1; rua=mailto:tls-reports@text.test',
      'https://mta-sts.text.test/.well-known/mta-sts.txt',
      'version: STSv1',
      'Served by nginx:',
      'or Apache:',
      'or Caddy:',
      'One-click setup (Domain Connect):',
      'does not announce Domain Connect',
    ]) {
      expect(text).toContain(piece);
    }
  });

  test('a subdomain gets names relative to its zone', async () => {
    lab.set('zone.test', { SOA: true });
    await newDomain('mail.zone.test');
    delete lab.dns.zone['mail.zone.test']?.SOA;
    const { plan } = await records(['mail.zone.test']);
    expect(plan.zone).toBe('zone.test');
    expect(plan.records.map((r) => r.host)).toEqual(['_mta-sts.mail', '_smtp._tls.mail']);
  });
});

describe('mtasts records for a domain that publishes a policy', () => {
  test('testing with a clean check but no monitoring history stays in testing, saying what enforce needs', async () => {
    await lab.domain('ready.test', { mode: 'testing' });
    const { plan } = await records(['ready.test']);
    expect(plan.mode).toBe('testing');
    expect(plan.rollout).toEqual({
      ready: false,
      since: null,
      readyAt: null,
      missing: ['14 days in testing with no errors, counted by the monitor from its first clean pass'],
    });
    expect(plan.reasons[0]).toContain('mode testing: kept; enforce needs 14 days in testing with no errors');
    expect(plan.reasons[0]).toContain('no monitoring history here');
    expect(plan.rua).toEqual(['mailto:tls-reports@ready.test']);
    expect(plan.ruaPlaceholder).toBe(false);
    expect(plan.change?.differences).toEqual([]);
    expect(plan.id).toBe('20261129T000000');
  });

  test('--mode enforce still gives enforce on request, with max_age of at least a week and a warning', async () => {
    const { plan } = await records(['ready.test', '--mode', 'enforce']);
    expect(plan.mode).toBe('enforce');
    expect(plan.maxAge).toBe(1209600);
    expect(plan.change?.differences).toEqual(['mode: testing -> enforce']);
    expect(plan.change?.idMustChange).toBe(true);
    expect(plan.id).not.toBe('20261129T000000');
    expect(plan.warnings.join(' ')).toContain('enforce before the rollout rule is met');
  });

  test('testing with problems stays in testing', async () => {
    await lab.domain('notready.test', {
      mode: 'testing',
      mx: { 'mx2.notready.test': { cert: lab.cert(['mx2.notready.test'], { selfSigned: true }) } },
    });
    const { plan } = await records(['notready.test']);
    expect(plan.mode).toBe('testing');
    expect(plan.reasons[0]).toContain('mode testing: kept; enforce needs');
  });

  test('an unchanged policy keeps its id', async () => {
    await lab.domain('same.test');
    const { plan } = await records(['same.test']);
    expect(plan.change?.differences).toEqual([]);
    expect(plan.id).toBe('20261129T000000');
  });

  test('an MX migration gets the safe order, with an interim policy', async () => {
    await lab.domain('move.test');
    const { plan } = await records([
      'move.test',
      '--mx',
      'mx1.move.test',
      '--mx',
      'mx3.move.test',
      '--mode',
      'testing',
    ]);
    expect(plan.change?.differences).toEqual([
      'mode: enforce -> testing',
      'max_age: 1209600 (14 days) -> 86400 (1 day)',
      '+ mx: mx3.move.test',
      '- mx: mx2.move.test',
    ]);
    expect(plan.steps.map((s) => s.title)).toEqual([
      'Publish the interim policy (old and new hosts), then a new id',
      'Move mail: MX records to mx3.move.test',
      'Drop mx2.move.test from the policy, then a new id',
    ]);
    expect(plan.steps[1]?.notBefore).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(plan.steps[0]?.policyText).toContain('mx: mx2.move.test\nmx: mx3.move.test');
    expect(plan.warnings.join(' ')).toContain('this is a migration');
  });

  test('an enforce migration is planned in the safe order, never as one step', async () => {
    await lab.domain('enforcemove.test');
    const { plan } = await records([
      'enforcemove.test',
      '--mx',
      'mx1.enforcemove.test',
      '--mx',
      'new.enforcemove.test',
    ]);
    expect(plan.mode).toBe('enforce');
    expect(plan.steps[0]?.policyText).toBe(
      'version: STSv1\nmode: enforce\nmx: mx1.enforcemove.test\nmx: mx2.enforcemove.test\nmx: new.enforcemove.test\nmax_age: 1209600\n',
    );
    expect(plan.steps[2]?.policyText).toBe(
      'version: STSv1\nmode: enforce\nmx: mx1.enforcemove.test\nmx: new.enforcemove.test\nmax_age: 1209600\n',
    );
    expect(plan.warnings.join(' ')).toContain('follow the steps in order');
  });

  test('refuses an enforce policy that would leave an MX host uncovered', async () => {
    await newDomain('strict.test');
    const t = io();
    expect(
      await main(['records', 'strict.test', '--mx', 'mx1.strict.test', '--mode', 'enforce'], t.value),
    ).toBe(2);
    expect(t.err()).toContain('--mx leaves mx2.strict.test uncovered while MX records point to it');
    expect(t.err()).toContain('in enforce mode senders would refuse to deliver to it');
  });
});

describe('bad input names the flag and exits 2', () => {
  test.each([
    [['--mode', 'strict'], '--mode must be testing, enforce or none'],
    [['--max-age', '0'], '--max-age 0 is out of range: give 1 to 31557600 seconds (365.25 days)'],
    [['--max-age', '31557601'], '--max-age 31557601 is out of range: give 1 to 31557600 seconds'],
    [['--max-age', '99999999999'], '--max-age 99999999999 is out of range: give 1 to 31557600 seconds'],
    [['--max-age', '1.5'], '--max-age must be a whole number of seconds, not "1.5"'],
    [
      ['--rua', 'mailto:tls x@example.com'],
      '--rua "mailto:tls x@example.com" does not hold an e-mail address',
    ],
    [['--max-age', 'week'], '--max-age must be a whole number'],
    [['--mx', 'mx1.example.com:25'], '--mx "mx1.example.com:25"'],
    [['--mx', '*.*.example.com'], '--mx "*.*.example.com"'],
    [['--rua', 'http://example.com/r'], '--rua "http://example.com/r" must be a mailto: or https: URI'],
    [['--rua', 'reports@example.com'], '--rua "reports@example.com"'],
    [['--id', '2026-11-29'], '--id must be 1 to 32 letters and digits'],
    [['--id', 'a'.repeat(33)], '--id must be 1 to 32 letters and digits'],
    [['--mode', 'testing', '--mode', 'enforce'], '--mode may be given once'],
    [['--mx'], '--mx needs a value'],
  ])('%j', async (args, message) => {
    const t = io();
    expect(await main(['records', 'example.com', ...args], t.value)).toBe(2);
    expect(t.err()).toContain(message);
    expect(t.err().trim().split('\n')).toHaveLength(1);
    expect(t.out()).toBe('');
  });
});

describe('generated records parse back cleanly', () => {
  const report = (mx: string[]): Report => reportOf({ mx, status: 'fail' });

  test('for any mode, max_age, MX set, rua and time', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.constantFrom('enforce', 'testing', 'none' as const),
        fc.integer({ min: 604800, max: 31557600 }),
        fc.uniqueArray(label, { minLength: 1, maxLength: 5 }),
        fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
        (mode, maxAge, labels, now) => {
          const hosts = labels.map((l) => `${l}.mx.example.com`);
          const plan = planRecords(
            { ascii: 'example.com', unicode: 'example.com' },
            { mode, maxAge },
            report(hosts),
            'example.com',
            now,
          );
          expect(plan.steps).toHaveLength(1);
          const sts = parseStsRecord(plan.records[0]?.value ?? '');
          expect(sts.problems).toEqual([]);
          expect(sts.record?.id).toBe(freshId(now));
          expect(parseTlsRptRecord(plan.records[1]?.value ?? '').problems).toEqual([]);
          const policy = parsePolicy(plan.policyText);
          expect(policy.problems).toEqual([]);
          expect(policy.policy.mx).toEqual(mode === 'none' ? [] : hosts);
          expect(plan.steps[0]?.snippets.caddy).toContain(plan.policyText);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('for any reporting URIs, "," "!" ";" "=" and non-ASCII included: the TLS-RPT record parses back', () => {
    const local = fc.string({
      unit: fc.constantFrom('a', 'z', '0', ',', '!', ';', '=', 'é', '☃', '😀', '-', '_'),
      minLength: 1,
      maxLength: 10,
    });
    const uri = fc.oneof(
      local.map((l) => `mailto:${l}@reports.example.com`),
      fc
        .string({ unit: fc.constantFrom('a', '=', '&', ';', '!', 'ß', ' '), maxLength: 8 })
        .map((q) => `https://r.example.com/tlsrpt?${q}`),
    );
    fc.assert(
      fc.property(fc.array(uri, { minLength: 1, maxLength: 3 }), (rua) => {
        const plan = planRecords(
          { ascii: 'example.com', unicode: 'example.com' },
          { mode: 'testing', rua },
          report(['mx1.example.com']),
          'example.com',
          new Date('2026-11-29T12:00:00Z'),
        );
        const parsed = parseTlsRptRecord(plan.records[1]?.value ?? '');
        expect(parsed.problems).toEqual([]);
        expect(parsed.record?.rua).toEqual(plan.rua);
        expect(plan.rua).toHaveLength(rua.length);
      }),
      { numRuns: 300 },
    );
  });

  test('relative names', () => {
    expect(relativeName('_mta-sts.example.com', 'example.com')).toBe('_mta-sts');
    expect(relativeName('example.com', 'example.com')).toBe('@');
    expect(relativeName('_smtp._tls.a.example.com', 'example.com')).toBe('_smtp._tls.a');
    expect(formatPolicy({ mode: 'none', mx: [], maxAge: 86400 })).toBe(
      'version: STSv1\nmode: none\nmax_age: 86400\n',
    );
  });
});

describe('Domain Connect', () => {
  const template = loadTemplate();
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });

  test('the template in the repository is valid against the template schema', () => {
    expect(templateSchema.safeParse(template).success).toBe(true);
    expect(templateVariables(template)).toEqual(['rua', 'stsid']);
    expect(
      template.records.map((r) => [r.host, r.txtConflictMatchingMode, r.txtConflictMatchingPrefix]),
    ).toEqual([
      ['_mta-sts', 'Prefix', 'v=STSv1'],
      ['_smtp._tls', 'Prefix', 'v=TLSRPTv1'],
    ]);
    // The schema refuses what the spec does not allow.
    const broken = structuredClone(template) as Record<string, unknown> & {
      records: Record<string, unknown>[];
    };
    (broken.records[0] as Record<string, unknown>).txtConflictMatchingPrefix = undefined;
    expect(templateSchema.safeParse(broken).success).toBe(false);
    expect(templateSchema.safeParse({ ...template, providerId: 'not a domain' }).success).toBe(false);
    expect(templateSchema.safeParse({ ...template, records: [] }).success).toBe(false);
    expect(templateSchema.safeParse({ ...template, extra: 1 }).success).toBe(false);
  });

  test('the apply URL is signed over its sorted query string and verifies with the public key', () => {
    const url = applyUrl(
      { urlSyncUX: 'https://dc.provider.test/sync' },
      template,
      { zone: 'example.com', host: 'mail' },
      { stsid: '20261129T120000', rua: 'mailto:a@example.com,https://r.example.com/x' },
      { privateKeyPem: privateKey, keyHost: '_dck1' },
    );
    const parsed = new URL(url);
    expect(parsed.origin + parsed.pathname).toBe(
      'https://dc.provider.test/sync/v2/domainTemplates/providers/mtasts-bot.app/services/mtasts/apply',
    );
    const query = url.slice(url.indexOf('?') + 1);
    const signed = query.slice(0, query.indexOf('&sig='));
    expect(signed).toBe(
      'domain=example.com&host=mail&rua=mailto%3Aa%40example.com%2Chttps%3A%2F%2Fr.example.com%2Fx&stsid=20261129T120000',
    );
    expect(parsed.searchParams.get('key')).toBe('_dck1');
    const sig = parsed.searchParams.get('sig') ?? '';
    expect(createVerify('RSA-SHA256').update(signed).verify(publicKey, sig, 'base64')).toBe(true);
    expect(createVerify('RSA-SHA256').update(`${signed}x`).verify(publicKey, sig, 'base64')).toBe(false);
  });

  describe('discovery against a loopback DNS provider', () => {
    let api: TestHttpsServer;
    let templateSupported = true;
    beforeAll(async () => {
      const address = lab.newAddress();
      api = await TestHttpsServer.start(
        lab.cert(['dc.provider.test']),
        (req, res) => {
          const send = (status: number, body: unknown) =>
            res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
          if (req.url === '/api/v2/dc.test/settings' || req.url === '/api/v2/dcnotemplate.test/settings') {
            send(200, {
              providerId: 'provider.test',
              providerName: 'Provider Test',
              urlSyncUX: 'https://dc.provider.test/sync',
              urlAPI: 'https://dc.provider.test/api',
            });
          } else if (req.url === '/api/v2/domainTemplates/providers/mtasts-bot.app/services/mtasts') {
            if (templateSupported) send(200, template);
            else send(404, { error: 'unknown template' });
          } else send(404, {});
        },
        address,
        lab.policyPort,
      );
      lab.set('dc.provider.test', { A: [address] });
      lab.set('_domainconnect.dc.test', { TXT: ['dc.provider.test/api'] });
      lab.set('_domainconnect.dcnotemplate.test', { TXT: ['dc.provider.test/api'] });
    });
    afterAll(() => api.stop());

    const options = () => ({
      dns: lab.deps().dns,
      httpsGet,
      allowPrivateNetworks: true,
      timeoutMs: 3000,
      ca: [lab.ca.rootPem],
      port: lab.policyPort,
      now: new Date(),
    });

    test('finds the provider and the template', async () => {
      templateSupported = true;
      const d = await discover('dc.test', template, options());
      expect(d.supported).toBe(true);
      expect(d.settings?.providerName).toBe('Provider Test');
      expect(api.requests.map((r) => r.path)).toContain(
        '/api/v2/domainTemplates/providers/mtasts-bot.app/services/mtasts',
      );
    });

    test('a provider without the template', async () => {
      templateSupported = false;
      const d = await discover('dcnotemplate.test', template, options());
      expect(d).toMatchObject({ supported: false, reason: expect.stringContaining('not this template') });
      templateSupported = true;
    });

    test('no _domainconnect record', async () => {
      const d = await discover('nodc.test', template, options());
      expect(d).toMatchObject({
        supported: false,
        reason: expect.stringContaining('does not announce Domain Connect'),
      });
    });

    test('mtasts records gives the signed one-click link when a key is configured', async () => {
      await newDomain('dc.test');
      const dir = mkdtempSync(join(tmpdir(), 'dc-key-'));
      writeFileSync(join(dir, 'key.pem'), privateKey);
      const out = await records(['dc.test'], { MTASTS_DC_PRIVATE_KEY_FILE: join(dir, 'key.pem') });
      expect(out.domainConnect.supported).toBe(true);
      const url = new URL(out.domainConnect.applyUrl ?? '');
      expect(url.searchParams.get('domain')).toBe('dc.test');
      expect(url.searchParams.get('stsid')).toBe(out.plan.id);
      const query = (out.domainConnect.applyUrl ?? '').split('?')[1] ?? '';
      const signed = query.slice(0, query.indexOf('&sig='));
      expect(
        createVerify('RSA-SHA256')
          .update(signed)
          .verify(publicKey, url.searchParams.get('sig') ?? '', 'base64'),
      ).toBe(true);
      const without = await records(['dc.test']);
      expect(without.domainConnect.applyUrl).toBeNull();
      expect(without.domainConnect.message).toContain('MTASTS_DC_PRIVATE_KEY_FILE');
    });

    test('a key file that is not a key is refused with the variable named', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'dc-key-'));
      writeFileSync(join(dir, 'key.pem'), 'not a key');
      const t = io({ MTASTS_DC_PRIVATE_KEY_FILE: join(dir, 'key.pem') });
      expect(await main(['records', 'dc.test'], t.value)).toBe(2);
      expect(t.err()).toMatch(/^mtasts: MTASTS_DC_PRIVATE_KEY_FILE cannot be read as a PEM private key/);
    });
  });
});

test('checkDomain is used, not a second parser', async () => {
  // The records command reuses the check: its plan for a healthy domain mirrors the check's evidence.
  await lab.domain('mirror.test');
  const report = await checkDomain(
    { ascii: 'mirror.test', unicode: 'mirror.test' },
    lab.options(),
    lab.deps(),
  );
  const { plan } = await records(['mirror.test']);
  expect(plan.mx).toEqual(report.evidence.policy.policy?.mx);
});
