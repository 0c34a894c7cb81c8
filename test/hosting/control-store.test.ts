import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase, sql } from '../../src/store/db.js';
import { HostingStore, type NewVersion } from '../../src/store/hosting.js';

/** The hosting store on a real SQLite database with the migrations applied. */

const T0 = new Date('2026-11-29T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

let db: Db;
let store: HostingStore;

const policy = (mode: NewVersion['mode'], maxAge: number, mx: string[]): Omit<NewVersion, 'stsId'> => ({
  mode,
  maxAge,
  mx,
  policyText: `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: ${maxAge}\n`,
});

/** Ids 1, 2, 3… in the order they are made: whatever is unused. */
const counter = (used: readonly string[]) => {
  let n = 1;
  while (used.includes(`id${n}`)) n++;
  return `id${n}`;
};

let tokens = 0;

/** Pending requests of other owners created before `staleBefore` may be replaced (default: a week before T0). */
function enroll(
  domain: string,
  owner: string,
  max = 10,
  now = T0,
  staleBefore = at(-7 * 86400),
  channelId: string | null = 'C1',
) {
  const token = `token${++tokens}`;
  return store.enroll(
    { domain, policyHost: `mta-sts.${domain}`, owner, channelId, token, maxPerOwner: max, staleBefore },
    policy('testing', 604800, [`mx.${domain}`]),
    counter,
    now,
  );
}

beforeEach(() => {
  db = openDatabase(':memory:');
  store = new HostingStore(db);
  tokens = 0;
});

afterEach(async () => {
  await db.close();
});

describe('HostingStore', () => {
  it('enrolls once per domain: the same owner gets exists, another taken once served; the cap counts domains not removed and those removed in the last day', async () => {
    expect(await enroll('a.example', 'T1')).toMatchObject({
      kind: 'added',
      hosted: { status: 'pending', stsId: 'id1' },
    });
    expect(await enroll('a.example', 'T1')).toMatchObject({ kind: 'exists' });
    await store.activate('a.example', T0);
    expect(await enroll('a.example', 'T2')).toEqual({ kind: 'taken' });
    expect(await enroll('b.example', 'T1', 2)).toMatchObject({ kind: 'added' });
    expect(await enroll('c.example', 'T1', 2)).toEqual({ kind: 'limit', limit: 2 });
    await store.retire('b.example', T0);
    expect((await store.get('b.example'))?.removedAt).toBe(T0.toISOString());
    expect(await enroll('c.example', 'T1', 2)).toEqual({ kind: 'limit', limit: 2 });
    expect(await enroll('b.example', 'T1', 2)).toMatchObject({ kind: 'added' });
    expect(await enroll('c.example', 'T1', 2, at(86401))).toEqual({ kind: 'limit', limit: 2 });
    await store.retire('b.example', at(10));
    expect(await enroll('c.example', 'T1', 2, at(86411))).toMatchObject({ kind: 'added' });
  });

  it('a rival request for a pending domain gets its own token; its proof promotes and activates it and drops the first', async () => {
    const first = await enroll('p.example', 'T1');
    const rival = await enroll('p.example', 'T2');
    expect(rival).toMatchObject({ kind: 'claim', created: true, claim: { owner: 'T2', token: 'token2' } });
    expect(await enroll('p.example', 'T2')).toMatchObject({ kind: 'claim', created: false });
    expect(await store.claimsByOwner('T2')).toHaveLength(1);
    expect(await store.promoteClaim('p.example', 'T2', at(5))).toBe(true);
    expect(await store.get('p.example')).toMatchObject({ owner: 'T2', token: 'token2', status: 'active' });
    expect(await store.claims('p.example')).toEqual([]);
    expect(await store.promoteClaim('p.example', 'T2', at(6))).toBe(false);
    expect(await store.activate('p.example', at(6))).toBe(false);
    expect(await store.unannouncedEvents(10)).toMatchObject([
      { domain: 'p.example', owner: 'T2', kind: 'active', at: at(5).toISOString() },
      { domain: 'p.example', owner: 'T1', channelId: 'C1', kind: 'dropped', at: at(5).toISOString() },
    ]);
    expect(first.kind === 'added' && first.hosted.token).toBe('token1');
    // No id used twice: the claim's id was reserved, the first request's stays in the history.
    const ids = (await store.versions('p.example')).map((v) => v.stsId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('activation drops the rival requests; a pending request older than the stale mark is replaced', async () => {
    await enroll('q.example', 'T1');
    await enroll('q.example', 'T2', 10, T0, at(-7 * 86400), 'C2');
    expect(await store.activate('q.example', at(1))).toBe(true);
    expect(await store.claims('q.example')).toEqual([]);
    expect((await store.unannouncedEvents(10)).map((e) => [e.kind, e.owner, e.channelId])).toEqual([
      ['active', 'T1', 'C1'],
      ['dropped', 'T2', 'C2'],
    ]);
    await enroll('r.example', 'T1');
    const replaced = await enroll('r.example', 'T3', 10, at(8 * 86400), at(86400));
    expect(replaced).toMatchObject({ kind: 'added', replaced: { owner: 'T1' }, hosted: { owner: 'T3' } });
    expect((await store.get('r.example'))?.token).not.toBe('token1');
  });

  it('nothing is served while pending; activation serves the current version from then, once', async () => {
    await enroll('a.example', 'T1');
    expect(await store.servedText('mta-sts.a.example')).toBeUndefined();
    expect(await store.certificateNames()).toEqual([]);
    expect(await store.activate('a.example', at(10))).toBe(true);
    expect(await store.activate('a.example', at(20))).toBe(false);
    expect(await store.servedText('mta-sts.a.example')).toMatch(/mode: testing/);
    expect(await store.certificateNames()).toEqual(['mta-sts.a.example']);
    expect(await store.versions('a.example')).toMatchObject([
      { stsId: 'id1', servedFrom: at(10).toISOString(), servedUntil: null },
    ]);
  });

  it('serving a new version ends the one before, with a new id made in the same transaction', async () => {
    await enroll('a.example', 'T1');
    await store.activate('a.example', at(0));
    await store.update(
      'a.example',
      { dnsCarriesAt: at(1).toISOString(), remindedAt: at(1).toISOString() },
      at(1),
    );
    const next = await store.serve(
      'a.example',
      policy('enforce', 1209600, ['mx.a.example']),
      counter,
      {},
      at(100),
    );
    expect(next).toMatchObject({
      stsId: 'id2',
      mode: 'enforce',
      maxAge: 1209600,
      dnsCarriesAt: null,
      remindedAt: null,
    });
    expect(await store.versions('a.example')).toMatchObject([
      { stsId: 'id1', servedFrom: at(0).toISOString(), servedUntil: at(100).toISOString() },
      { stsId: 'id2', servedFrom: at(100).toISOString(), servedUntil: null },
    ]);
    const many = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        store.serve('a.example', policy('testing', n, ['mx.a.example']), counter, {}, at(200)),
      ),
    );
    expect(new Set(many.map((h) => h.stsId)).size).toBe(5);
  });

  it('a version made while pending is not served, and never counted as served', async () => {
    await enroll('a.example', 'T1');
    await store.serve('a.example', policy('testing', 86400, ['mx2.a.example']), counter, {}, at(5));
    expect(await store.versions('a.example')).toMatchObject([
      { stsId: 'id1', servedFrom: null, servedUntil: null },
      { stsId: 'id2', servedFrom: null, servedUntil: null },
    ]);
    await store.activate('a.example', at(10));
    expect((await store.versions('a.example')).map((v) => v.servedFrom)).toEqual([
      null,
      at(10).toISOString(),
    ]);
  });

  it('leaving names keep their certificate; a name lost leaves the list; removed is served no more', async () => {
    await enroll('a.example', 'T1');
    await enroll('b.example', 'T1');
    await store.activate('a.example', T0);
    await store.activate('b.example', T0);
    await store.update('a.example', { status: 'leaving', leavingUntil: at(86400).toISOString() }, T0);
    await store.update('b.example', { nameLostAt: T0.toISOString() }, T0);
    expect(await store.certificateNames()).toEqual(['mta-sts.a.example']);
    expect(await store.servedText('mta-sts.b.example')).toMatch(/mode: testing/);
    await store.retire('a.example', at(86400));
    expect(await store.servedText('mta-sts.a.example')).toBeUndefined();
    expect((await store.versions('a.example'))[0]?.servedUntil).toBe(at(86400).toISOString());
  });

  it("each loser's dropped event is written in the transaction that activates the winner: no activation without it", async () => {
    await enroll('w.example', 'T1', 10, T0, at(-7 * 86400), 'C1');
    await enroll('w.example', 'T2', 10, T0, at(-7 * 86400), 'C2');
    await enroll('w.example', 'cli', 10, T0, at(-7 * 86400), null);
    // A write of a dropped event that fails: the activation it belongs to must not stay behind without it.
    db.sqlite?.exec(`CREATE TRIGGER no_drops BEFORE INSERT ON hosting_events WHEN NEW.kind = 'dropped'
             BEGIN SELECT RAISE(ABORT, 'no dropped events'); END`);
    await expect(store.promoteClaim('w.example', 'T2', at(1))).rejects.toThrow(/no dropped events/);
    await expect(store.activate('w.example', at(1))).rejects.toThrow(/no dropped events/);
    expect(await store.get('w.example')).toMatchObject({ owner: 'T1', status: 'pending', activatedAt: null });
    expect((await store.claims('w.example')).map((c) => c.owner).sort()).toEqual(['T2', 'cli']);
    expect(await store.unannouncedEvents(10)).toEqual([]);
    expect((await store.versions('w.example')).filter((v) => v.servedFrom !== null)).toEqual([]);
    db.sqlite?.exec('DROP TRIGGER no_drops');
    // Written, they are there with the activation, one per loser, each naming the loser (not the winner).
    expect(await store.promoteClaim('w.example', 'T2', at(2))).toBe(true);
    const events = await store.unannouncedEvents(10);
    expect(events.map((e) => [e.kind, e.owner, e.channelId, e.at])).toEqual([
      ['active', 'T2', 'C2', at(2).toISOString()],
      ['dropped', 'T1', 'C1', at(2).toISOString()],
      ['dropped', 'cli', null, at(2).toISOString()],
    ]);
    expect(events[1]?.detail).toEqual({ owner: 'T1', channelId: 'C1' });
    expect(await store.get('w.example')).toMatchObject({ owner: 'T2', status: 'active' });
  });

  it('events wait until announced, each once', async () => {
    await enroll('a.example', 'T1');
    await store.activate('a.example', T0);
    await store.addEvent('a.example', 'certificate-failed', at(1), {
      error: 'x',
      retryAt: null,
      notAfter: null,
    });
    const events = await store.unannouncedEvents(10);
    expect(events).toMatchObject([
      { domain: 'a.example', owner: 'T1', channelId: 'C1', kind: 'active' },
      { kind: 'certificate-failed', detail: { error: 'x' } },
    ]);
    expect(await store.markAnnounced([events[0]?.id ?? 0], at(2))).toBe(1);
    expect(await store.markAnnounced([events[0]?.id ?? 0], at(3))).toBe(0);
    expect((await store.unannouncedEvents(10)).map((e) => e.kind)).toEqual(['certificate-failed']);
  });

  it('the schema refuses what the rules refuse: a max_age out of range, an unknown status or mode', async () => {
    const insert = (status: string, mode: string, maxAge: number) =>
      db.run(
        sql`INSERT INTO hosted_domains (domain, policy_host, owner, token, status, mode, max_age, mx_json, sts_id, created_at, updated_at)
            VALUES ('x.example', 'mta-sts.x.example', 'T1', 'tok', ${status}, ${mode}, ${maxAge}, '[]', 'a', 'now', 'now')`,
      );
    await expect(insert('pending', 'testing', 31557601)).rejects.toThrow(/CHECK/);
    await expect(insert('pending', 'testing', 0)).rejects.toThrow(/CHECK/);
    await expect(insert('paused', 'testing', 60)).rejects.toThrow(/CHECK/);
    await expect(insert('pending', 'strict', 60)).rejects.toThrow(/CHECK/);
    await expect(insert('pending', 'testing', 60)).resolves.toBe(1);
  });
});
