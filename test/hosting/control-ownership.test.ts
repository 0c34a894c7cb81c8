import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDns } from '../../src/core/net/dns.js';
import { rolloutInputsFrom } from '../../src/hosting/history.js';
import { HostingService } from '../../src/hosting/service.js';
import { type Db, openDatabase } from '../../src/store/db.js';
import { HostingStore } from '../../src/store/hosting.js';
import { Lab } from '../support/lab.js';

/**
 * Proof of control (the review's ownership.mts): each enrollment's own CNAME target, rival pending requests, the
 * operator's own name, a CNAME left over after removal. Real DNS over loopback, a real SQLite database.
 */

const BOT = 'mta-sts.bot.example.net';
const T0 = new Date('2026-11-29T12:00:00.000Z');
const DAY_MS = 86_400_000;

let lab: Lab;
let db: Db;
let clock: Date;
let service: HostingService;

beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(async () => {
  await lab.stop();
});
beforeEach(() => {
  lab.dns.zone = {};
  lab.set(BOT, { A: ['127.0.0.53'] });
  lab.set(`*.${BOT}`, { A: ['127.0.0.53'] });
  db = openDatabase(':memory:');
  clock = T0;
  service = new HostingService({
    store: new HostingStore(db),
    dns: lab.deps(2000).dns,
    settings: { name: BOT, addresses: [], maxPerWorkspace: 5, maxMxPatterns: 20, allowPrivateNetworks: true },
    history: rolloutInputsFrom(db),
    now: () => clock,
  });
});
afterEach(() => db.close());

const mx = (d: string) => lab.set(d, { MX: [{ preference: 10, exchange: `mx.${d}` }] });

describe('the resolver and the test DNS server', () => {
  it('read a CNAME one hop at a time, and answer wildcards one label deep', async () => {
    lab.set('a.example', { CNAME: 'b.example' });
    lab.set('b.example', { CNAME: 'c.example' });
    const dns = createDns({ servers: [lab.dns.address], timeoutMs: 2000 });
    expect(await dns.cname?.('a.example')).toEqual({ ok: true, records: ['b.example'] });
    expect(await dns.cname?.(BOT)).toMatchObject({ ok: false, kind: 'nodata' });
    expect(await dns.addresses(`abc.${BOT}`)).toMatchObject({ ok: true, records: ['127.0.0.53'] });
    expect(await dns.addresses(`x.abc.${BOT}`)).toMatchObject({ ok: false, kind: 'nxdomain' });
  });
});

describe('proof of control', () => {
  it("refuses the operator's own domain (its policy host is the hosting name or under it)", async () => {
    mx('bot.example.net');
    expect(await service.add('bot.example.net', 'T_EVIL', 'C9')).toMatchObject({ ok: false, kind: 'input' });
    expect(await service.add('x.mta-sts.bot.example.net', 'T_EVIL', 'C9')).toMatchObject({ ok: false });
    expect(await service.policyFor(BOT)).toBeUndefined();
  });

  it('a squatter does not get the domain when its owner publishes the CNAME: the owner does, the squatter is dropped', async () => {
    mx('victim.example');
    const evil = await service.add('victim.example', 'T_EVIL', 'C9');
    const owner = await service.add('victim.example', 'T_A', 'C1');
    if (!evil.ok || !owner.ok) throw new Error('refused');
    expect(owner).toMatchObject({ created: true, hosted: { status: 'pending', owner: 'T_A' } });
    expect(owner.notes.join(' ')).toMatch(/another request .* is pending/);
    expect(owner.hosted.token).not.toBe(evil.hosted.token);
    expect(owner.records[0]).toMatchObject({ type: 'CNAME', value: `${owner.hosted.token}.${BOT}` });
    // The shared hosting name proves nothing, for anyone.
    lab.set('mta-sts.victim.example', { CNAME: BOT });
    expect(await service.reconcileEnrollments()).toEqual([]);
    lab.set('mta-sts.victim.example', { CNAME: owner.records[0]?.value ?? '' });
    const transitions = await service.reconcileEnrollments();
    expect(transitions).toMatchObject([
      { domain: 'victim.example', owner: 'T_A', channelId: 'C1', kind: 'active' },
    ]);
    // The squatter's request is dropped: an event for its own workspace and channel, not the owner's.
    expect(await service.unannouncedEvents()).toMatchObject([
      { domain: 'victim.example', owner: 'T_A', channelId: 'C1', kind: 'active' },
      { domain: 'victim.example', owner: 'T_EVIL', channelId: 'C9', kind: 'dropped' },
    ]);
    expect(await service.hosted('victim.example')).toMatchObject({ owner: 'T_A', status: 'active' });
    const forced = await service.set(
      'victim.example',
      'T_EVIL',
      { mode: 'enforce', maxAge: 31557600 },
      { force: true },
    );
    expect(forced).toMatchObject({ ok: false, kind: 'not-hosted' });
    expect(await service.add('victim.example', 'T_EVIL', 'C9')).toMatchObject({ ok: false, kind: 'taken' });
  });

  it("the rival's Check DNS now promotes it; a stale pending request is replaced", async () => {
    mx('r.example');
    await service.add('r.example', 'T1', 'C1');
    const rival = await service.add('r.example', 'T2', 'C2');
    if (!rival.ok) throw new Error(rival.message);
    expect(await service.set('r.example', 'T2', { maxAge: 600 })).toMatchObject({ ok: false, kind: 'state' });
    expect((await service.list('T2')).map((h) => h.domain)).toEqual(['r.example']);
    lab.set('mta-sts.r.example', { CNAME: rival.records[0]?.value ?? '' });
    expect(await service.verify('r.example', 'T2')).toMatchObject({
      ok: true,
      hosted: { owner: 'T2', status: 'active' },
    });
    // The winner's own look records the loser's drop: nothing waits for the monitor's pass to find it.
    expect((await service.unannouncedEvents()).map((e) => [e.kind, e.owner, e.channelId])).toEqual([
      ['active', 'T2', 'C2'],
      ['dropped', 'T1', 'C1'],
    ]);
    expect(await service.show('r.example', 'T1')).toMatchObject({ ok: false, kind: 'not-hosted' });

    mx('s.example');
    await service.add('s.example', 'T1', 'C1');
    clock = new Date(T0.getTime() + 8 * DAY_MS);
    const late = await service.add('s.example', 'T3', 'C3');
    expect(late).toMatchObject({ ok: true, created: true, hosted: { owner: 'T3' } });
    expect(late.ok && late.notes.join(' ')).toMatch(/pending for more than 7 days .* was replaced/);
  });

  it('a CNAME left after removal does not hand the domain to the next workspace', async () => {
    mx('left.example');
    const a = await service.add('left.example', 'T_A', 'C1');
    if (!a.ok) throw new Error(a.message);
    lab.set('mta-sts.left.example', { CNAME: a.records[0]?.value ?? '' });
    await service.reconcileEnrollments();
    const rm = await service.remove('left.example', 'T_A');
    if (!rm.ok) throw new Error(rm.message);
    await service.observeDnsId('left.example', rm.hosted.stsId);
    clock = new Date(Date.parse(rm.leavingUntil ?? '') + 1000);
    const gone = await service.reconcileEnrollments();
    expect(gone).toMatchObject([{ kind: 'removed', message: expect.stringMatching(/must go now/) }]);
    const b = await service.add('left.example', 'T_B', 'C7');
    expect(b).toMatchObject({ ok: true, hosted: { status: 'pending', owner: 'T_B' } });
    expect(await service.reconcileEnrollments()).toEqual([]);
    expect(await service.policyFor('mta-sts.left.example')).toBeUndefined();
  });
});
