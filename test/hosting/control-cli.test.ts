import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { rolloutInputsFrom } from '../../src/hosting/history.js';
import { HostingService } from '../../src/hosting/service.js';
import { openDatabase } from '../../src/store/db.js';
import { HostingStore } from '../../src/store/hosting.js';
import { Lab } from '../support/lab.js';

/** `mtasts host …` through the CLI's entry point, on a database in a temporary directory and the lab's DNS. */

const BOT = 'policy.bot.test';
const T0 = new Date('2026-11-29T12:00:00.000Z');

let lab: Lab;
let dbPath: string;
let clock: Date;

function run(env: Record<string, string> = {}) {
  return async (...argv: string[]) => {
    const io = lab.cliIo({ DATABASE_PATH: dbPath, MTASTS_HOSTING_NAME: BOT, ...env });
    const code = await main(argv, { ...io.value, engine: { ...io.value.engine, now: () => clock } });
    return { code, out: io.out(), err: io.err() };
  };
}

const host = (...argv: string[]) => run()('host', ...argv);

beforeAll(async () => {
  lab = await Lab.start();
  lab.set(BOT, { A: [lab.newAddress()] });
});

afterAll(async () => {
  await lab.stop();
});

beforeEach(() => {
  dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-host-')), 'db.sqlite');
  clock = T0;
});

function mailDomain(domain: string, hosts = [`mx1.${domain}`, `mx2.${domain}`]): void {
  lab.set(domain, { MX: hosts.map((exchange, i) => ({ preference: 10 * (i + 1), exchange })) });
}

describe('mtasts host', () => {
  it('add prints the records; verify activates once the CNAME resolves; show, set, remove', async () => {
    mailDomain('cli.example');
    const added = await host('add', 'cli.example');
    expect(added.code).toBe(0);
    expect(added.out).toContain(
      'hosting cli.example: mode testing, max_age 604800 (7 days), mx mx1.cli.example, mx2.cli.example, id 20261129T120000',
    );
    const target = /mta-sts\.cli\.example {2}3600 {2}IN CNAME {2}([a-z2-7]{20}\.policy\.bot\.test)\./.exec(
      added.out,
    )?.[1];
    expect(target).toBeDefined();
    expect(added.out).toContain('_mta-sts.cli.example  3600  IN TXT  "v=STSv1; id=20261129T120000"');
    expect(added.out).toContain(
      '_smtp._tls.cli.example  3600  IN TXT  "v=TLSRPTv1; rua=mailto:tls-reports@cli.example"',
    );
    expect(added.out).toContain(
      'cli.example: pending: the policy is served once mta-sts.cli.example points at its own CNAME target',
    );

    const pending = await host('verify', 'cli.example');
    expect(pending).toMatchObject({
      code: 0,
      out: expect.stringMatching(
        /pending.*does not resolve yet: publish the CNAME mta-sts\.cli\.example -> [a-z2-7]{20}\.policy\.bot\.test/s,
      ),
    });
    lab.set('mta-sts.cli.example', { CNAME: BOT });
    expect((await host('verify', 'cli.example')).out).toMatch(
      /pending.*is a CNAME to policy\.bot\.test, not/s,
    );
    lab.set('mta-sts.cli.example', { CNAME: target ?? '' });
    lab.set('_mta-sts.cli.example', { TXT: ['v=STSv1; id=20261129T120000'] });
    const active = await host('verify', 'cli.example');
    expect(active.out).toContain(
      'cli.example: active: served at https://mta-sts.cli.example/.well-known/mta-sts.txt',
    );
    expect(active.out).toContain('DNS carries the id 20261129T120000');

    clock = new Date(T0.getTime() + 3_600_000);
    const set = await host(
      'set',
      'cli.example',
      '--max-age',
      '86400',
      '--mx',
      'mx1.cli.example,mx2.cli.example',
      '--mx',
      '*.mail.protection.outlook.com',
    );
    expect(set.code).toBe(0);
    expect(set.out).toContain('mx mx1.cli.example, mx2.cli.example, *.mail.protection.outlook.com');
    expect(set.out).toContain(
      'new id 20261129T130000 (was 20261129T120000): publish "v=STSv1; id=20261129T130000" at _mta-sts.cli.example',
    );

    const shown = await host('show', 'cli.example');
    expect(shown.out).toContain(
      '  mode: testing\n  mx: mx1.cli.example\n  mx: mx2.cli.example\n  mx: *.mail.protection.outlook.com\n  max_age: 86400',
    );
    expect(shown.out).toContain(
      'DNS carries the id 20261129T120000, not 20261129T130000: publish "v=STSv1; id=20261129T130000" at _mta-sts',
    );
    expect(shown.out).toMatch(
      /id 20261129T130000: mode testing, max_age 86400, served 2026-11-29T13:00:00.000Z to now/,
    );
    expect(shown.out).toMatch(
      /id 20261129T120000: mode testing, max_age 604800, served 2026-11-29T12:00:00.000Z to 2026-11-29T13:00:00.000Z, cached until 2026-12-06T13:00:00.000Z/,
    );

    const json = JSON.parse((await host('show', 'cli.example', '--json')).out);
    expect(json).toMatchObject({
      ok: true,
      hosted: { domain: 'cli.example', status: 'active', stsId: '20261129T130000' },
    });

    expect((await host('list')).out).toBe(
      'cli.example\tactive\ttesting\tmax_age 86400\tid 20261129T130000\tDNS carries 20261129T120000\n',
    );

    const removed = await host('remove', 'cli.example');
    expect(removed.code).toBe(0);
    expect(removed.out).toMatch(
      /leaving: mode none is served now with id 20261129T1300001 .* until 2026-12-06T13:00:00.000Z at the earliest \(the old max_age after DNS carries that id\).* the CNAME mta-sts\.cli\.example must go, not before\n$/,
    );
  });

  it('enforce is refused before the rollout rule says ready (exit 1); --force says what it overrode', async () => {
    mailDomain('force.example');
    const added = await host('add', 'force.example');
    expect(added.code).toBe(0);
    const target = /IN CNAME {2}(\S+)\./.exec(added.out)?.[1] ?? '';
    lab.set('mta-sts.force.example', { CNAME: target });
    expect((await host('verify', 'force.example')).out).toContain('force.example: active');
    const refused = await host('set', 'force.example', '--mode', 'enforce');
    expect(refused).toMatchObject({
      code: 1,
      out: '',
      err: expect.stringMatching(/^mtasts: not ready to enforce force\.example: it needs .*not watched/),
    });
    const forced = await host('set', 'force.example', '--mode', 'enforce', '--force');
    expect(forced.code).toBe(0);
    expect(forced.out).toMatch(/^forced \(--force\): the rollout rule is not met: it needs /);
    expect(forced.out).toContain('now mode enforce, max_age 604800');
    // An MX change seen by verify: proposed in enforce, step 1 applied by apply, step 2 not yet due.
    mailDomain('force.example', ['mx1.force.example', 'new.force.example']);
    const seen = await host('verify', 'force.example');
    expect(seen.out).toContain(
      'the MX records list mx1.force.example, new.force.example: add new.force.example, drop mx2.force.example: proposed',
    );
    expect(seen.out).toContain(
      'next: step 1, serving mx mx1.force.example, mx2.force.example, new.force.example (mtasts host apply)',
    );
    const step1 = await host('apply', 'force.example');
    expect(step1).toMatchObject({
      code: 0,
      out: expect.stringContaining(
        'step 1 of the MX change applied: mx mx1.force.example, mx2.force.example, new.force.example',
      ),
    });
    expect(step1.out).toContain(
      'next: mx mx1.force.example, new.force.example, not before 2026-12-06T12:00:00.000Z',
    );
    expect(await host('apply', 'force.example')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/not due before 2026-12-06T12:00:00.000Z/),
    });
    const refusedAdd = await host('add', 'other.example', '--mode', 'enforce');
    expect(refusedAdd).toMatchObject({ code: 2, err: expect.stringMatching(/starts in testing/) });
  });

  it('the command line and a workspace never own the same domain by accident', async () => {
    mailDomain('shared.example');
    const db = openDatabase(dbPath);
    const slack = new HostingService({
      store: new HostingStore(db),
      dns: lab.deps().dns,
      settings: {
        name: BOT,
        addresses: [],
        maxPerWorkspace: 5,
        maxMxPatterns: 20,
        allowPrivateNetworks: true,
      },
      history: rolloutInputsFrom(db),
      now: () => clock,
    });
    const enrolled = await slack.add('shared.example', 'T0123', 'C0123');
    if (!enrolled.ok) throw new Error(enrolled.message);
    lab.set('mta-sts.shared.example', { CNAME: enrolled.records[0]?.value ?? '' });
    expect(await slack.verify('shared.example', 'T0123')).toMatchObject({
      ok: true,
      hosted: { status: 'active' },
    });
    await db.close();
    const add = await host('add', 'shared.example');
    expect(add).toMatchObject({ code: 1, err: expect.stringMatching(/already hosted for someone else/) });
    expect(add.err).not.toMatch(/T0123|C0123/);
    for (const sub of ['show', 'set', 'remove', 'apply', 'verify']) {
      const extra = sub === 'set' ? ['--max-age', '600'] : [];
      expect(await host(sub, 'shared.example', ...extra)).toMatchObject({
        code: 1,
        err: 'mtasts: shared.example is not hosted from the command line\n',
      });
    }
    expect((await host('list')).out).toMatch(/no domain is hosted from the command line/);
  });

  it('refusals and bad input: exit 1 and 2, one line, never a stack trace', async () => {
    mailDomain('bad.example');
    const manyMx = Array.from({ length: 2000 }, (_, i) => ['--mx', `mx${i}.bad.example`]).flat();
    const cases: [string[], number, RegExp][] = [
      [['add', '192.0.2.1'], 2, /is an IP address/],
      [['add', 'exa$mple.com'], 2, /character a host name cannot hold/],
      [['add', 'bad.example', '--max-age', '31557601'], 2, /out of range: give 1 to 31557600/],
      [['add', 'bad.example', '--max-age', '99999999999999999999999'], 2, /out of range/],
      [['add', 'bad.example', '--max-age', '1e5'], 2, /whole number of seconds/],
      [['add', 'bad.example', '--max-age', '-1'], 2, /needs a value|whole number|not an option/],
      [['add', 'bad.example', ...manyMx], 2, /2000 mx patterns given; at most 20/],
      [['add', 'bad.example', '--mx', 'mx.*.bad.example'], 2, /wildcard only as its whole leftmost label/],
      [['add', 'bad.example', '--mode', 'strict'], 2, /testing, enforce or none/],
      [['add', 'bad.example', '--force'], 2, /--force does not go with/],
      [['add'], 2, /no domain given/],
      [['add', 'a.example', 'b.example'], 2, /give one domain/],
      [['frobnicate'], 2, /unknown host command/],
      [['show', 'nothere.example'], 1, /not hosted from the command line/],
      [['set', 'nothere.example', '--mode', 'testing'], 1, /not hosted/],
    ];
    for (const [argv, code, message] of cases) {
      const r = await host(...argv);
      expect(r.code, argv.slice(0, 4).join(' ')).toBe(code);
      expect(r.err, argv.slice(0, 4).join(' ')).toMatch(message);
      expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it('hosting off: a refusal naming the setting; help needs no settings', async () => {
    const off = await run({ MTASTS_HOSTING_NAME: '' })('host', 'add', 'example.com');
    expect(off).toMatchObject({
      code: 1,
      err: expect.stringMatching(/hosting is off: MTASTS_HOSTING_NAME is not set/),
    });
    // Each enrollment has its own target under the hosting name, not the hosting name itself.
    expect(off.err).toContain('its own CNAME target <token>.<MTASTS_HOSTING_NAME> for mta-sts.<domain>');
    expect(off.err).toContain('the wildcard *.<MTASTS_HOSTING_NAME>');
    expect(off.err).not.toContain('CNAME records point to');
    const badName = await run({ MTASTS_HOSTING_NAME: 'not a name' })('host', 'list');
    expect(badName).toMatchObject({
      code: 2,
      err: expect.stringMatching(
        /MTASTS_HOSTING_NAME must be the host name under which each enrollment's CNAME target <token>\.<name> lies/,
      ),
    });
    const help = await run()('host', 'help');
    expect(help).toMatchObject({ code: 0, out: expect.stringContaining('mtasts host add <domain>') });
    expect((await run()('help')).out).toContain('mtasts host add|list|show|verify|set|apply|remove');
  });
});
