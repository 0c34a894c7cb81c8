import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { rolloutInputsFrom } from '../../src/hosting/history.js';
import {
  HostingService,
  type HostingSettings,
  type HostingService as Service,
} from '../../src/hosting/service.js';
import { type Db, openDatabase } from '../../src/store/db.js';
import { HostingStore } from '../../src/store/hosting.js';
import { MonitorStore } from '../../src/store/monitor.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { Lab } from '../support/lab.js';

/** The service against the lab's DNS server (real queries over loopback) and a real SQLite database. */

const BOT = 'policy.bot.test';
const T0 = new Date('2026-11-29T12:00:00.000Z');
const DAY_MS = 86_400_000;

let lab: Lab;
let botAddress: string;
let db: Db;
let clock: Date;
let service: Service;

function makeService(settings: Partial<HostingSettings> = {}): Service {
  return new HostingService({
    store: new HostingStore(db),
    dns: lab.deps(2000).dns,
    settings: {
      name: BOT,
      addresses: [],
      maxPerWorkspace: 3,
      maxMxPatterns: 20,
      allowPrivateNetworks: true,
      ...settings,
    },
    history: rolloutInputsFrom(db),
    now: () => clock,
  });
}

/** A domain with MX hosts in the lab's DNS, and no MTA-STS yet. */
function mailDomain(domain: string, hosts = [`mx1.${domain}`, `mx2.${domain}`]): void {
  lab.set(domain, { MX: hosts.map((exchange, i) => ({ preference: 10 * (i + 1), exchange })) });
}

/** mta-sts.<domain> made a CNAME to the enrollment's own target (its token under the hosting name). */
async function pointHere(domain: string, owner?: string): Promise<void> {
  const hosted = owner
    ? (await service.list(owner)).find((h) => h.domain === domain)
    : await service.hosted(domain);
  if (!hosted) throw new Error(`${domain} is not enrolled`);
  lab.set(`mta-sts.${domain}`, { CNAME: `${hosted.token}.${BOT}` });
}

async function enrolled(domain: string, owner = 'T1', options = {}) {
  mailDomain(domain);
  const added = await service.add(domain, owner, 'C1', options);
  if (!added.ok) throw new Error(added.message);
  await pointHere(domain);
  await service.reconcileEnrollments();
  return added;
}

beforeAll(async () => {
  lab = await Lab.start();
  botAddress = lab.newAddress();
});

afterAll(async () => {
  await lab.stop();
});

beforeEach(() => {
  lab.dns.zone = {};
  lab.set(BOT, { A: [botAddress] });
  db = openDatabase(':memory:');
  clock = T0;
  service = makeService();
});

afterEach(async () => {
  await db.close();
});

describe('enrollment', () => {
  it('shows the records, and is refused (pending) while the CNAME is missing; active once the DNS answers it', async () => {
    mailDomain('example.com');
    const added = await service.add('Example.COM', 'T1', 'C1');
    expect(added.ok).toBe(true);
    if (!added.ok) return;
    expect(added.created).toBe(true);
    expect(added.hosted).toMatchObject({
      domain: 'example.com',
      policyHost: 'mta-sts.example.com',
      status: 'pending',
      mode: 'testing',
      maxAge: 604800,
      mx: ['mx1.example.com', 'mx2.example.com'],
    });
    const id = added.hosted.stsId;
    expect(added.records.map((r) => [r.type, r.name, r.value])).toEqual([
      ['CNAME', 'mta-sts.example.com', `${added.hosted.token}.${BOT}`],
      ['TXT', '_mta-sts.example.com', `v=STSv1; id=${id}`],
      ['TXT', '_smtp._tls.example.com', 'v=TLSRPTv1; rua=mailto:tls-reports@example.com'],
    ]);
    expect(await service.policyFor('mta-sts.example.com')).toBeUndefined();
    expect(await service.namesNeedingCertificates()).toEqual([]);

    expect(await service.reconcileEnrollments()).toEqual([]);
    expect((await service.show('example.com', 'T1')).ok && (await service.list('T1'))[0]?.status).toBe(
      'pending',
    );

    lab.set('mta-sts.example.com', { CNAME: BOT });
    expect(await service.reconcileEnrollments()).toEqual([]);
    await pointHere('example.com');
    const transitions = await service.reconcileEnrollments();
    expect(transitions).toMatchObject([
      { domain: 'example.com', owner: 'T1', channelId: 'C1', kind: 'active' },
    ]);
    const text = await service.policyFor('MTA-STS.example.com.');
    expect(text).toBe(
      'version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 604800\n',
    );
    expect(parsePolicy(text ?? '').valid).toBe(true);
    expect(await service.namesNeedingCertificates()).toEqual(['mta-sts.example.com']);
    expect((await service.hosted('example.com'))?.status).toBe('active');
    expect((await service.inFlight()).map((h) => h.domain)).toEqual(['example.com']);
    const events = await service.unannouncedEvents();
    expect(events).toMatchObject([{ domain: 'example.com', kind: 'active', owner: 'T1', channelId: 'C1' }]);
    expect(await service.markAnnounced(events.map((e) => e.id))).toBe(1);
    expect(await service.unannouncedEvents()).toEqual([]);
    expect(await service.reconcileEnrollments()).toEqual([]);
  });

  it('leaves out the TLS-RPT record when DNS has one, and is active at the first look once the CNAME is there', async () => {
    mailDomain('ready.example');
    lab.set('_smtp._tls.ready.example', { TXT: ['v=TLSRPTv1; rua=mailto:r@ready.example'] });
    const added = await service.add('ready.example', 'T1', 'C1');
    if (!added.ok) throw new Error(added.message);
    expect(added.hosted.status).toBe('pending');
    expect(added.records.map((r) => r.type)).toEqual(['CNAME', 'TXT']);
    await pointHere('ready.example');
    const looked = await service.verify('ready.example', 'T1');
    expect(looked.ok && looked.hosted.status).toBe('active');
  });

  it('accepts A records of the bot in place of the CNAME, and MTASTS_HOSTING_ADDRESSES in place of the name', async () => {
    mailDomain('direct.example');
    lab.set('mta-sts.direct.example', { A: [botAddress] });
    const added = await service.add('direct.example', 'T1', null);
    if (!added.ok) throw new Error(added.message);
    expect(added.hosted.status).toBe('pending');
    const verify = `mtasts-bot-verify=${added.hosted.token}`;
    expect(added.records.map((r) => [r.type, r.name, r.value])).toContainEqual([
      'TXT',
      'mta-sts.direct.example',
      verify,
    ]);
    expect(added.hosted.nameProblem).toMatch(/has no TXT record "mtasts-bot-verify=/);
    lab.set('mta-sts.direct.example', { A: [botAddress], TXT: [verify] });
    expect(await service.reconcileEnrollments()).toMatchObject([
      { domain: 'direct.example', kind: 'active' },
    ]);

    const other = lab.newAddress();
    service = makeService({ addresses: [other] });
    mailDomain('listed.example');
    lab.set('mta-sts.listed.example', { A: [other] });
    const listed = await service.add('listed.example', 'T1', null);
    if (!listed.ok) throw new Error(listed.message);
    lab.set('mta-sts.listed.example', { A: [other], TXT: [`mtasts-bot-verify=${listed.hosted.token}`] });
    expect(await service.reconcileEnrollments()).toContainEqual(
      expect.objectContaining({ domain: 'listed.example', kind: 'active' }),
    );
  });

  it('stays pending when the name resolves elsewhere, and says so', async () => {
    mailDomain('elsewhere.example');
    lab.set('mta-sts.elsewhere.example', { A: [botAddress, lab.newAddress()] });
    const added = await service.add('elsewhere.example', 'T1', null);
    expect(added.ok && added.hosted.status).toBe('pending');
    const shown = await service.show('elsewhere.example', 'T1');
    expect(shown.ok && shown.hosted.nameProblem).toMatch(
      /resolves to 127\.[\d.]+, not to the bot \(policy\.bot\.test\): make it a CNAME to [a-z2-7]{20}\.policy\.bot\.test/,
    );
  });

  it('with private networks refused (the production default), a loopback answer is not the bot', async () => {
    service = makeService({ allowPrivateNetworks: false });
    mailDomain('guarded.example');
    lab.set('mta-sts.guarded.example', { A: [botAddress] });
    const added = await service.add('guarded.example', 'T1', null);
    expect(added.ok && added.hosted.status).toBe('pending');
    expect(added.ok && added.hosted.nameProblem).toMatch(/loopback address, not the bot's/);
  });

  it('is refused for a second owner, naming nothing of the first', async () => {
    await enrolled('owned.example', 'T1');
    const again = await service.add('owned.example', 'T2', 'C9');
    expect(again).toMatchObject({ ok: false, kind: 'taken' });
    expect(JSON.stringify(again)).not.toMatch(/T1|C1/);
    const cli = await service.add('owned.example', 'cli', null);
    expect(cli).toMatchObject({ ok: false, kind: 'taken' });
    for (const op of [
      service.show('owned.example', 'T2'),
      service.set('owned.example', 'T2', { maxAge: 86400 }),
      service.remove('owned.example', 'T2'),
      service.applyProposal('owned.example', 'T2'),
      service.verify('owned.example', 'T2'),
    ]) {
      const r = await op;
      expect(r).toMatchObject({
        ok: false,
        kind: 'not-hosted',
        message: 'owned.example is not hosted by this workspace',
      });
    }
    const mine = await service.add('owned.example', 'T1', 'C1');
    expect(mine).toMatchObject({ ok: true, created: false });
  });

  it('two workspaces enrolling one domain at once: each gets a pending request with its own token', async () => {
    mailDomain('race.example');
    const [a, b] = await Promise.all([
      service.add('race.example', 'T1', 'C1'),
      service.add('race.example', 'T2', 'C2'),
    ]);
    if (!a.ok || !b.ok) throw new Error('refused');
    expect([a.hosted.status, b.hosted.status]).toEqual(['pending', 'pending']);
    expect(a.hosted.token).not.toBe(b.hosted.token);
  });

  it('enforces the per-workspace cap, counting the domains not removed and those removed in the last day', async () => {
    for (const d of ['a.example', 'b.example', 'c.example']) {
      mailDomain(d);
      expect((await service.add(d, 'T1', null)).ok).toBe(true);
    }
    mailDomain('d.example');
    expect(await service.add('d.example', 'T1', null)).toMatchObject({
      ok: false,
      kind: 'limit',
      message: expect.stringMatching(/this workspace hosts 3 domains, the most allowed/),
    });
    expect((await service.add('d.example', 'T2', null)).ok).toBe(true);
    expect(await service.remove('a.example', 'T1')).toMatchObject({ ok: true, removed: true });
    mailDomain('e.example');
    expect(await service.add('e.example', 'T1', null)).toMatchObject({ ok: false, kind: 'limit' });
    clock = new Date(T0.getTime() + DAY_MS + 1000);
    expect((await service.add('e.example', 'T1', null)).ok).toBe(true);
  });

  it('is refused when hosting is off, and for bad input', async () => {
    service = makeService({ name: null });
    expect(await service.add('example.com', 'T1', null)).toMatchObject({ ok: false, kind: 'off' });
    service = makeService();
    mailDomain('example.com');
    const bad: [string, object][] = [
      ['192.0.2.1', {}],
      ['[2001:db8::1]', {}],
      ['exa mple.com', {}],
      ['ex@mple.com', {}],
      ['https://example.com/', {}],
      [`${'a'.repeat(64)}.com`, {}],
      ['example.com', { maxAge: 31557601 }],
      ['example.com', { maxAge: 0 }],
      ['example.com', { maxAge: 1e20 }],
      ['example.com', { mx: Array.from({ length: 3000 }, (_, i) => `mx${i}.example.com`) }],
      ['example.com', { mx: ['mx.*.example.com'] }],
      ['example.com', { mx: ['<script>.example.com'] }],
      ['example.com', { mode: 'strict' }],
    ];
    for (const [domain, options] of bad) {
      const r = await service.add(domain, 'T1', null, options);
      expect(r, domain).toMatchObject({ ok: false, kind: 'input' });
    }
    expect(await service.list('T1')).toEqual([]);
  });

  it('needs MX hosts: from DNS, or given', async () => {
    expect(await service.add('nomx.example', 'T1', null)).toMatchObject({ ok: false, kind: 'dns' });
    lab.set('broken.example', { servfail: true });
    expect(await service.add('broken.example', 'T1', null)).toMatchObject({
      ok: false,
      kind: 'dns',
      message: expect.stringMatching(/could not be read/),
    });
    const given = await service.add('nomx.example', 'T1', null, { mx: ['*.mail.protection.outlook.com'] });
    expect(given.ok && given.hosted.mx).toEqual(['*.mail.protection.outlook.com']);
  });

  it('an active name that stops resolving to the bot is marked, and nothing is deleted; back again when it does', async () => {
    await enrolled('lost.example');
    lab.set('mta-sts.lost.example', { servfail: true });
    expect(await service.reconcileEnrollments()).toEqual([]);
    lab.set('mta-sts.lost.example', { A: [lab.newAddress()] });
    const lost = await service.reconcileEnrollments();
    expect(lost).toMatchObject([{ kind: 'name-lost', message: expect.stringMatching(/not to the bot/) }]);
    expect(await service.reconcileEnrollments()).toEqual([]);
    expect(await service.policyFor('mta-sts.lost.example')).toMatch(/mode: testing/);
    expect(await service.namesNeedingCertificates()).toEqual([]);
    await pointHere('lost.example');
    expect(await service.reconcileEnrollments()).toMatchObject([{ kind: 'name-back' }]);
    expect(await service.namesNeedingCertificates()).toEqual(['mta-sts.lost.example']);
    const kinds = (await service.unannouncedEvents()).map((e) => e.kind);
    expect(kinds).toEqual(['active', 'name-lost', 'name-back']);
  });
});

describe('changes', () => {
  it('every change of the served text gets a new id and a version; no change, no new id', async () => {
    const { hosted } = await enrolled('change.example');
    clock = new Date(T0.getTime() + 60_000);
    const r = await service.set('change.example', 'T1', { maxAge: 86400 });
    if (!r.ok) throw new Error(r.message);
    expect(r.changed).toBe(true);
    expect(r.previousId).toBe(hosted.stsId);
    expect(r.hosted.stsId).toBe('20261129T120100');
    expect(await service.policyFor('mta-sts.change.example')).toMatch(/max_age: 86400\n$/);
    const same = await service.set('change.example', 'T1', { maxAge: 86400 });
    expect(same).toMatchObject({ ok: true, changed: false, hosted: { stsId: '20261129T120100' } });
    const again = await service.set('change.example', 'T1', {
      mx: ['mx1.change.example', 'MX3.change.example'],
    });
    if (!again.ok) throw new Error(again.message);
    expect(again.hosted.stsId).toBe('20261129T1201001');
    const shown = await service.show('change.example', 'T1');
    if (!shown.ok) throw new Error(shown.message);
    expect(shown.cached.map((v) => v.stsId)).toEqual(['20261129T1201001', '20261129T120100', hosted.stsId]);
    expect(shown.cached[2]?.cachedUntil).toBe(new Date(clock.getTime() + 604800_000).toISOString());
    expect(await service.set('change.example', 'T1', {})).toMatchObject({ ok: false, kind: 'input' });
    expect(await service.set('change.example', 'T1', { maxAge: 99999999999 })).toMatchObject({
      ok: false,
      kind: 'input',
    });
  });

  it('enforce is refused before the rollout rule says ready, accepted after, with max_age raised to a week', async () => {
    await enrolled('rollout.example', 'T1', { maxAge: 86400 });
    const early = await service.set('rollout.example', 'T1', { mode: 'enforce' });
    expect(early).toMatchObject({
      ok: false,
      kind: 'not-ready',
      message: expect.stringMatching(/not watched/),
    });
    await new SubscriptionStore(db).watch('T1', 'C1', 'rollout.example', 'U1', 100, clock);
    await new MonitorStore(db).commit(
      'rollout.example',
      { snapshot: null, conditions: [], cleanSince: T0.toISOString(), readyAnnounced: null },
      [],
      clock,
    );
    clock = new Date(T0.getTime() + 13 * DAY_MS);
    const notYet = await service.set('rollout.example', 'T1', { mode: 'enforce' });
    expect(notYet).toMatchObject({
      ok: false,
      kind: 'not-ready',
      message: expect.stringMatching(/not before 2026-12-13/),
    });
    const forced = await service.set('rollout.example', 'T1', { mode: 'enforce' }, { force: true });
    expect(forced.ok && forced.forced.join(' ')).toMatch(/not before 2026-12-13/);
    expect(await service.set('rollout.example', 'T1', { mode: 'testing', maxAge: 86400 })).toMatchObject({
      ok: true,
    });
    clock = new Date(T0.getTime() + 14 * DAY_MS);
    const ready = await service.set('rollout.example', 'T1', { mode: 'enforce' });
    if (!ready.ok) throw new Error(ready.message);
    expect(ready.forced).toEqual([]);
    expect(ready.hosted).toMatchObject({ mode: 'enforce', maxAge: 604800 });
    expect(await service.policyFor('mta-sts.rollout.example')).toMatch(/mode: enforce/);
  });

  it('enforce is refused while an MX host in DNS is not covered', async () => {
    await enrolled('cover.example');
    mailDomain('cover.example', ['mx1.cover.example', 'mx2.cover.example', 'mx3.cover.example']);
    const r = await service.set('cover.example', 'T1', { mode: 'enforce' }, { force: true });
    expect(r).toMatchObject({
      ok: false,
      kind: 'uncovered',
      message: expect.stringMatching(/mx3\.cover\.example/),
    });
  });
});

describe('MX changes seen by the monitor', () => {
  async function enforced(domain: string) {
    await enrolled(domain);
    const r = await service.set(domain, 'T1', { mode: 'enforce', maxAge: 1209600 }, { force: true });
    if (!r.ok) throw new Error(r.message);
    return r.hosted;
  }

  it('in enforce: proposed once; step 1 serves old and new with a new id; step 2 only after the old max_age since DNS carried the id', async () => {
    const before = await enforced('move.example');
    const seen = ['new1.move.example', 'mx2.move.example'];
    const proposed = await service.observeMx('move.example', seen);
    expect(proposed).toMatchObject({
      kind: 'proposed',
      proposal: { add: ['new1.move.example'], drop: ['mx1.move.example'] },
    });
    expect(await service.observeMx('move.example', [...seen].reverse())).toMatchObject({ kind: 'unchanged' });
    // In enforce a proposal changes nothing until it is applied.
    expect(await service.policyFor('mta-sts.move.example')).toBe(
      'version: STSv1\nmode: enforce\nmx: mx1.move.example\nmx: mx2.move.example\nmax_age: 1209600\n',
    );

    clock = new Date(T0.getTime() + DAY_MS);
    const step1 = await service.applyProposal('move.example', 'T1');
    if (!step1.ok) throw new Error(step1.message);
    expect(step1.step).toBe('interim');
    expect(step1.previousId).toBe(before.stsId);
    expect(step1.hosted.stsId).not.toBe(before.stsId);
    expect(step1.hosted.mx).toEqual(['mx1.move.example', 'mx2.move.example', 'new1.move.example']);
    expect(step1.next).toMatchObject({
      kind: 'wait',
      until: new Date(clock.getTime() + 1209600_000).toISOString(),
    });

    // The new id reaches DNS only two days later: senders refetch only then, so the wait counts from then.
    clock = new Date(clock.getTime() + 1209600_000);
    expect(await service.applyProposal('move.example', 'T1')).toMatchObject({ ok: false, kind: 'state' });
    clock = new Date(T0.getTime() + 3 * DAY_MS);
    await service.observeDnsId('move.example', step1.hosted.stsId);
    clock = new Date(clock.getTime() + 1209600_000 - 1000);
    expect(await service.applyProposal('move.example', 'T1')).toMatchObject({
      ok: false,
      kind: 'state',
      message: expect.stringMatching(/not due before/),
    });
    clock = new Date(clock.getTime() + 1000);
    const step2 = await service.applyProposal('move.example', 'T1');
    if (!step2.ok) throw new Error(step2.message);
    expect(step2.step).toBe('final');
    expect(step2.hosted.mx).toEqual(['mx2.move.example', 'new1.move.example']);
    expect(step2.hosted.proposal).toBeNull();
    expect(await service.observeMx('move.example', seen)).toMatchObject({ kind: 'none' });
    expect(await service.applyProposal('move.example', 'T1')).toMatchObject({ ok: false, kind: 'state' });
  });

  it('in testing: applied at once with a new id', async () => {
    const { hosted } = await enrolled('quick.example');
    const r = await service.observeMx('quick.example', ['new.quick.example']);
    expect(r).toMatchObject({
      kind: 'applied',
      previousId: hosted.stsId,
      hosted: { mx: ['new.quick.example'] },
    });
    expect(r.kind === 'applied' && r.hosted.stsId).not.toBe(hosted.stsId);
    expect(await service.policyFor('mta-sts.quick.example')).toMatch(/mx: new\.quick\.example\n/);
  });
});

describe('the id DNS carries', () => {
  it('is compared with the served id; carried once, then a change starts the reminders over', async () => {
    const { hosted } = await enrolled('txt.example');
    const shown = await service.show('txt.example', 'T1');
    expect(shown.ok && shown.dns).toMatchObject({ expected: hosted.stsId, seen: null, carries: false });
    lab.set('_mta-sts.txt.example', { TXT: [`v=STSv1; id=${hosted.stsId}`] });
    const v = await service.verify('txt.example', 'T1');
    expect(v.ok && v.dns).toMatchObject({ carries: true, newlyCarried: true });
    expect(await service.observeDnsId('txt.example', hosted.stsId)).toMatchObject({
      carries: true,
      newlyCarried: false,
    });
    await service.markReminded('txt.example');
    clock = new Date(T0.getTime() + 5000);
    const changed = await service.set('txt.example', 'T1', { maxAge: 3600 });
    if (!changed.ok) throw new Error(changed.message);
    expect(changed.hosted).toMatchObject({ dnsCarriesAt: null, remindedAt: null });
    expect(await service.observeDnsId('txt.example', hosted.stsId)).toMatchObject({
      expected: changed.hosted.stsId,
      carries: false,
    });
    lab.set('_mta-sts.txt.example', { TXT: [`v=STSv1; id=${changed.hosted.stsId}`, 'v=STSv1; id=other'] });
    const two = await service.show('txt.example', 'T1');
    expect(two.ok && two.dns).toMatchObject({ seen: null, carries: false });
  });
});

describe('leaving', () => {
  it('serves mode none with a new id first, until the enforce max_age has passed; then removed', async () => {
    await enrolled('bye.example');
    const enforce = await service.set(
      'bye.example',
      'T1',
      { mode: 'enforce', maxAge: 1209600 },
      { force: true },
    );
    if (!enforce.ok) throw new Error(enforce.message);
    clock = new Date(T0.getTime() + DAY_MS);
    const r = await service.remove('bye.example', 'T1');
    if (!r.ok) throw new Error(r.message);
    expect(r.removed).toBe(false);
    expect(r.hosted.status).toBe('leaving');
    expect(r.hosted.stsId).not.toBe(enforce.hosted.stsId);
    expect(r.leavingUntil).toBe(new Date(clock.getTime() + 1209600_000).toISOString());
    expect(await service.policyFor('mta-sts.bye.example')).toBe(
      'version: STSv1\nmode: none\nmax_age: 86400\n',
    );
    expect(await service.namesNeedingCertificates()).toEqual(['mta-sts.bye.example']);
    expect(await service.set('bye.example', 'T1', { mode: 'testing' })).toMatchObject({
      ok: false,
      kind: 'state',
    });
    expect(await service.remove('bye.example', 'T1')).toMatchObject({
      ok: true,
      removed: false,
      leavingUntil: r.leavingUntil,
    });

    // DNS never carried the id of mode none: senders were not told, so it stays leaving past that time.
    clock = new Date(Date.parse(r.leavingUntil ?? '') + 1000);
    expect(await service.reconcileEnrollments()).toEqual([]);
    expect((await service.hosted('bye.example'))?.status).toBe('leaving');
    await service.observeDnsId('bye.example', r.hosted.stsId);
    const until = new Date(clock.getTime() + 1209600_000);
    clock = new Date(until.getTime() - 1);
    expect(await service.reconcileEnrollments()).toEqual([]);
    expect((await service.hosted('bye.example'))?.leavingUntil).toBe(until.toISOString());
    clock = until;
    expect(await service.reconcileEnrollments()).toMatchObject([{ kind: 'removed', domain: 'bye.example' }]);
    expect(await service.policyFor('mta-sts.bye.example')).toBeUndefined();
    expect(await service.namesNeedingCertificates()).toEqual([]);
    expect(await service.list('T1')).toEqual([]);
    expect(await service.hosted('bye.example')).toBeUndefined();
    // Another workspace may enroll it now, with a fresh token: the CNAME left over from T1 proves nothing.
    const again = await service.add('bye.example', 'T2', null);
    if (!again.ok) throw new Error(again.message);
    expect(again.hosted.status).toBe('pending');
    expect(again.hosted.token).not.toBe(enforce.hosted.token);
    expect(again.records[0]?.value).toBe(`${again.hosted.token}.${BOT}`);
  });

  it('a pending domain, never served, is removed at once', async () => {
    mailDomain('never.example');
    expect((await service.add('never.example', 'T1', null)).ok).toBe(true);
    expect(await service.remove('never.example', 'T1')).toMatchObject({
      ok: true,
      removed: true,
      leavingUntil: null,
    });
  });
});

describe('certificate events', () => {
  it('are recorded on the domain and queued for its channel; unknown names are ignored', async () => {
    await enrolled('cert.example');
    await service.onCertificateEvent({
      name: 'mta-sts.cert.example',
      kind: 'failed',
      at: T0.toISOString(),
      error: 'urn:ietf:params:acme:error:connection\u0000 refused',
      retryAt: '2026-11-29T13:00:00.000Z',
    });
    await service.onCertificateEvent({
      name: 'mta-sts.unknown.example',
      kind: 'issued',
      at: T0.toISOString(),
    });
    await service.onCertificateEvent({
      name: 'mta-sts.cert.example',
      kind: 'issued',
      at: T0.toISOString(),
      notAfter: '2027-02-27T12:00:00.000Z',
    });
    const events = (await service.unannouncedEvents()).filter((e) => e.kind.startsWith('certificate'));
    expect(events).toMatchObject([
      {
        kind: 'certificate-failed',
        detail: {
          error: 'urn:ietf:params:acme:error:connection  refused',
          retryAt: '2026-11-29T13:00:00.000Z',
        },
      },
      { kind: 'certificate-issued', detail: { notAfter: '2027-02-27T12:00:00.000Z' } },
    ]);
    const shown = await service.show('cert.example', 'T1');
    expect(shown.ok && shown.hosted.certificate).toMatchObject({
      state: 'issued',
      notAfter: '2027-02-27T12:00:00.000Z',
    });
  });
});

describe('MX hosts from DNS (the review mxinject.mts)', () => {
  it('are checked as user patterns: bad ones skipped and named; only a text the parser reads back is served', async () => {
    const bad = ['mx one.example.com', 'a\nmode: enforce\nx.example.com', 'mx*.example.com', '*.example.com'];
    lab.set('inject.example', {
      MX: [...bad, 'mx.inject.example'].map((exchange, i) => ({ preference: i, exchange })),
    });
    const added = await service.add('inject.example', 'T1', 'C1');
    if (!added.ok) throw new Error(added.message);
    expect(added.hosted.mx).toEqual(['mx.inject.example']);
    expect(added.notes.join(' ')).toMatch(/MX hosts skipped, not valid host names: "mx one\.example\.com"/);
    await pointHere('inject.example');
    await service.reconcileEnrollments();
    const text = await service.policyFor('mta-sts.inject.example');
    expect(text).toBe('version: STSv1\nmode: testing\nmx: mx.inject.example\nmax_age: 604800\n');
    // Only bad hosts: refused, naming them; the monitor's view of them proposes nothing.
    lab.set('only.example', { MX: [{ preference: 10, exchange: 'mx*.only.example' }] });
    expect(await service.add('only.example', 'T1', 'C1')).toMatchObject({
      ok: false,
      kind: 'dns',
      message: expect.stringMatching(/no usable MX host \(skipped "mx\*\.only\.example"\)/),
    });
    expect(await service.observeMx('inject.example', ['mx one.example.com', '*.x.example'])).toMatchObject({
      kind: 'none',
    });
    expect(await service.policyFor('mta-sts.inject.example')).toBe(text);
  });
});
