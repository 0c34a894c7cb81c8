import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type Db, openDatabase, openPostgres, sql } from '../../src/store/db.js';
import { type PageClaim, type PassEntry, PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { postgresUrlFor } from '../support/config.js';

/**
 * Passes shared between processes, on each engine. Each "process" has its own connection(s) to one database: two
 * better-sqlite3 handles on one file, or two pg pools on one database (whose statements really interleave).
 */
type Together = <T>(calls: (() => Promise<T>)[]) => Promise<T[]>;
/** SQLite: two handles in one thread cannot wait for each other's lock (better-sqlite3 waits synchronously), so the
 * calls "at the same moment" run one after another there; on PostgreSQL they run at once. */
const inTurn: Together = async (calls) => {
  const out = [];
  for (const c of calls) out.push(await c());
  return out;
};
const atOnce: Together = (calls) => Promise.all(calls.map((c) => c()));
const engines: [string, () => () => Promise<Db>, Together][] = [
  [
    'sqlite',
    () => {
      const path = join(mkdtempSync(join(tmpdir(), 'mtasts-pass-')), 'p.sqlite');
      return async () => openDatabase(path);
    },
    inTurn,
  ],
  [
    'postgres',
    () => {
      const url = postgresUrlFor(mkdtempSync(join(tmpdir(), 'mtasts-pass-')));
      return () => openPostgres(url);
    },
    atOnce,
  ],
];
const NOW = new Date('2026-11-29T12:00:00Z');
const LEASE = 60_000;
const later = (ms: number) => new Date(NOW.getTime() + ms);

/** `n` processes on one fresh database, with `domains` watched. */
async function processes(connect: () => Promise<Db>, n: number, domains: number): Promise<PassStore[]> {
  const dbs: Db[] = [];
  for (let i = 0; i < n; i++) dbs.push(await connect());
  const subs = new SubscriptionStore(dbs[0] as Db);
  for (let i = 0; i < domains; i++)
    await subs.watch('T1', 'C1', `d${String(i).padStart(3, '0')}.example`, 'U1', 10_000, NOW);
  return dbs.map((db, i) => new PassStore(db, `host-${i}:${1000 + i}`));
}
/** The pass a begin() opened or joined (a test that expects one). */
async function opened(entry: Promise<PassEntry>): Promise<{ id: number; resumed: boolean }> {
  const e = await entry;
  if (e.kind !== 'open') throw new Error(`no open pass: ${JSON.stringify(e)}`);
  return e;
}
const dbOf = (p: PassStore) => (p as unknown as { db: Db }).db;
const closeAll = (ps: PassStore[]) => Promise.all(ps.map((p) => dbOf(p).close()));

describe.each(engines)('%s', (_name, database, together) => {
  test('processes beginning a pass at the same moment join one; it is cut into pages once', async () => {
    const ps = await processes(database(), 4, 25);
    const entries = await together(ps.map((p) => () => p.begin(NOW, null)));
    const open = await Promise.all(entries.map((e) => opened(Promise.resolve(e))));
    expect(new Set(open.map((e) => e.id)).size).toBe(1);
    expect(open.filter((e) => !e.resumed)).toHaveLength(1);
    const id = (open[0] as { id: number }).id;
    await together(ps.map((p) => () => p.plan(id, 10)));
    const pages = await dbOf(ps[0] as PassStore).all<{
      seq: number;
      after_domain: string;
      upto_domain: string | null;
    }>(sql`SELECT seq, after_domain, upto_domain FROM monitor_pages WHERE pass_id = ${id} ORDER BY seq`);
    expect(pages).toEqual([
      { seq: 0, after_domain: '', upto_domain: 'd009.example' },
      { seq: 1, after_domain: 'd009.example', upto_domain: 'd019.example' },
      { seq: 2, after_domain: 'd019.example', upto_domain: null },
    ]);
    await closeAll(ps);
  });

  test('processes firing for the same tick at the same moment all join its pass, round after round', async () => {
    const ps = await processes(database(), 6, 3);
    for (let round = 0; round < 8; round++) {
      const slot = new Date(NOW.getTime() + round * 3600_000).toISOString();
      const entries = await together(ps.map((p) => () => p.begin(later(round * 3600_000), slot)));
      // None may find the tick's pass "run already" while it is open (it would skip its share).
      expect(entries.map((e) => e.kind)).toEqual(Array(6).fill('open'));
      expect(new Set(entries.map((e) => (e.kind === 'open' ? e.id : 0))).size).toBe(1);
      const id = (entries[0] as { id: number }).id;
      const p = ps[0] as PassStore;
      await p.plan(id, 10);
      const claim = (await p.claim(id, NOW, LEASE)) as PageClaim;
      await p.pageDone(claim, NOW);
      expect(await p.finish(id, NOW)).toBe(true);
    }
    await closeAll(ps);
  });

  test('a tick that already ran is not run again, nor one that joined a pass under way; a new tick is a new pass', async () => {
    const [a, b] = (await processes(database(), 2, 1)) as [PassStore, PassStore];
    const first = await opened(a.begin(NOW, '2026-11-29T12:00:00.000Z'));
    expect(first.resumed).toBe(false);
    // The next tick while the first pass is open: joined (and served by it), not a second pass.
    expect(await b.begin(later(3600_000), '2026-11-29T13:00:00.000Z')).toEqual({
      ...first,
      kind: 'open',
      resumed: true,
    });
    // Only a pass under way is joined by a joinOnly look; there is one.
    expect(await b.begin(later(1000), null, true)).toMatchObject({ kind: 'open', id: first.id });
    await a.plan(first.id, 10);
    const claim = (await a.claim(first.id, NOW, LEASE)) as PageClaim;
    expect(await a.pageDone(claim, NOW)).toBe(true);
    expect(await together([() => a.finish(first.id, NOW), () => b.finish(first.id, NOW)])).toContain(true);
    expect(await b.begin(later(1000), null, true)).toEqual({ kind: 'none' }); // it ended meanwhile: nothing begun
    for (const late of ['2026-11-29T12:00:00.000Z', '2026-11-29T13:00:00.000Z'])
      expect(await b.begin(later(3601_000), late)).toEqual({ kind: 'finished', id: first.id });
    const next = await opened(b.begin(later(7200_000), '2026-11-29T14:00:00.000Z'));
    expect(next.resumed).toBe(false);
    expect(next.id).not.toBe(first.id);
    await closeAll([a, b]);
  });

  test('claims at the same moment get different pages, round after round', async () => {
    const ps = await processes(database(), 6, 60);
    const { id } = await opened((ps[0] as PassStore).begin(NOW, null));
    await (ps[0] as PassStore).plan(id, 10);
    for (let round = 0; round < 15; round++) {
      const claims = await together(ps.map((p) => () => p.claim(id, NOW, LEASE)));
      const seqs = claims.map((c) => c?.seq);
      // Six pages, six processes: each gets one, none the same (a page given twice would be checked twice).
      expect(new Set(seqs).size, `round ${round}: ${seqs.join(',')}`).toBe(6);
      expect(seqs).not.toContain(undefined);
      await Promise.all(claims.map((c, i) => (c ? (ps[i] as PassStore).release(c) : null)));
    }
    await closeAll(ps);
  });

  test('a page whose lease ran out is taken over; the late holder can no longer store, renew or finish it', async () => {
    const [a, b] = (await processes(database(), 2, 4)) as [PassStore, PassStore];
    const { id } = await opened(a.begin(NOW, null));
    await a.plan(id, 10);
    const mine = (await a.claim(id, NOW, LEASE)) as PageClaim;
    expect(mine.seq).toBe(0);
    expect(await a.domains(mine)).toEqual(['d000.example', 'd001.example', 'd002.example', 'd003.example']);
    expect(await dbOf(a).transaction(() => a.record(mine, 'd000.example'))).toBe('stored');
    // Within the lease, the page is a's: b gets nothing.
    expect(await b.claim(id, later(LEASE - 1), LEASE)).toBeNull();
    const taken = (await b.claim(id, later(LEASE), LEASE)) as PageClaim; // a lease ends at its end
    expect(taken.seq).toBe(0);
    // What a stored stays stored; the rest is b's.
    expect(await b.domains(taken)).toEqual(['d001.example', 'd002.example', 'd003.example']);
    expect(await dbOf(a).transaction(() => a.record(mine, 'd001.example'))).toBe('lost');
    expect(await a.renew(mine, later(LEASE + 2), LEASE)).toBe(false);
    expect(await a.pageDone(mine, later(LEASE + 2))).toBe(false);
    expect(await dbOf(b).transaction(() => b.record(taken, 'd000.example'))).toBe('done');
    expect(await dbOf(b).transaction(() => b.record(taken, 'd001.example'))).toBe('stored');
    expect(await a.finish(id, later(LEASE + 3))).toBe(false); // a page is not done
    expect(await b.pageDone(taken, later(LEASE + 3))).toBe(true);
    const ended = await together([
      () => a.finish(id, later(LEASE + 4)),
      () => b.finish(id, later(LEASE + 4)),
    ]);
    expect(ended.filter(Boolean)).toHaveLength(1);
    const pass = await dbOf(a).get<{ domains: number; is_open: number | null }>(
      sql`SELECT domains, is_open FROM monitor_passes WHERE id = ${id}`,
    );
    expect(pass).toEqual({ domains: 2, is_open: null }); // what each process stored, the late one's too
    const left = await dbOf(a).get<{ n: number }>(
      sql`SELECT (SELECT COUNT(*) FROM monitor_pages) + (SELECT COUNT(*) FROM monitor_pass_checks) AS n`,
    );
    expect(Number(left?.n)).toBe(0);
    await closeAll([a, b]);
  });

  test('a claim that runs out further ahead than two leases (a clock far ahead) is not waited for', async () => {
    const [a, b] = (await processes(database(), 2, 3)) as [PassStore, PassStore];
    const { id } = await opened(a.begin(NOW, null));
    await a.plan(id, 10);
    // a's clock ahead by less than a lease: its claim holds for b.
    expect((await a.claim(id, later(LEASE - 1000), LEASE))?.seq).toBe(0);
    expect(await b.claim(id, NOW, LEASE)).toBeNull();
    // a's clock a day ahead (it renews its own page): its claim runs out a day after b's now, and b takes the page.
    expect((await a.claim(id, later(86_400_000), LEASE))?.seq).toBe(0);
    expect((await b.claim(id, NOW, LEASE))?.seq).toBe(0);
    await closeAll([a, b]);
  });

  test('a page held by a process of this host that is no longer running is taken over at once; a released one too', async () => {
    const [a, b] = (await processes(database(), 2, 3)) as [PassStore, PassStore];
    const dead = new PassStore(dbOf(a), `${hostname()}:2147483646`);
    const { id } = await opened(dead.begin(NOW, null));
    await dead.plan(id, 1);
    expect((await dead.claim(id, NOW, LEASE))?.seq).toBe(0);
    expect((await a.claim(id, NOW, LEASE))?.seq).toBe(0);
    const second = (await b.claim(id, NOW, LEASE)) as PageClaim;
    expect(second.seq).toBe(1);
    await b.release(second);
    expect((await dead.claim(id, NOW, LEASE))?.seq).toBe(1);
    await closeAll([a, b]);
  });

  test('a domain recorded by two processes at the same moment is stored by one', async () => {
    const [a, b] = (await processes(database(), 2, 1)) as [PassStore, PassStore];
    const { id } = await opened(a.begin(NOW, null));
    await a.plan(id, 10);
    const claim = (await a.claim(id, NOW, LEASE)) as PageClaim;
    // b with the same claim stands for a process that believes the page is its own (a clock gone wrong).
    const stolen = new PassStore(dbOf(b), a.holder);
    const stored = await together([
      () => dbOf(a).transaction(() => a.record(claim, 'd000.example')),
      () => dbOf(b).transaction(() => stolen.record(claim, 'd000.example')),
    ]);
    expect(stored.sort()).toEqual(['done', 'stored']);
    await closeAll([a, b]);
  });
});
