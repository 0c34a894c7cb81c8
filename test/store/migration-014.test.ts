import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type Db, MIGRATIONS_DIR, openDatabase, openPostgres, sql } from '../../src/store/db.js';
import { type PageClaim, PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { postgresUrlFor } from '../support/config.js';

/**
 * An upgrade across migration 014 (passes shared between processes) on each engine: a database of the version before
 * (migrations 001..013, whose passes kept a cursor, the last domain done) with passes left unfinished by it is
 * migrated to the latest, and the passes then work as PassStore says: the newest unfinished one is taken up after its
 * cursor, any older unfinished one is closed, and the next pass starts from the first domain.
 */
const BEFORE_014 = mkdtempSync(join(tmpdir(), 'mtasts-m013-'));
for (const f of readdirSync(MIGRATIONS_DIR)) {
  const version = /^(\d+)_[\w-]+\.sql$/.exec(f)?.[1];
  if (version !== undefined && Number(version) < 14)
    copyFileSync(join(MIGRATIONS_DIR, f), join(BEFORE_014, f));
}

type Open = (migrations: string) => Promise<Db>;
const engines: [string, () => Open][] = [
  [
    'sqlite',
    () => {
      const path = join(mkdtempSync(join(tmpdir(), 'mtasts-m014-')), 'm.sqlite');
      return async (migrations) => openDatabase(path, migrations);
    },
  ],
  [
    'postgres',
    () => {
      const url = postgresUrlFor(mkdtempSync(join(tmpdir(), 'mtasts-m014-')));
      return (migrations) => openPostgres(url, undefined, undefined, migrations);
    },
  ],
];
const NOW = new Date('2026-11-29T12:00:00Z');
const LEASE = 60_000;
const DOMAINS = Array.from({ length: 7 }, (_, i) => `d${i}.example`);

interface OldPass {
  startedAt: string;
  finishedAt?: string;
  cursor: string;
  domains: number;
}

/** A database at migration 013 watching DOMAINS, with passes as that version wrote them; their ids. */
async function before014(open: Open, passes: OldPass[]): Promise<number[]> {
  const db = await open(BEFORE_014);
  expect(db.migrated.at(-1)).toMatch(/^013_/);
  const subs = new SubscriptionStore(db);
  for (const d of DOMAINS) await subs.watch('T1', 'C1', d, 'U1', 100, NOW);
  const ids: number[] = [];
  for (const p of passes) {
    const row = await db.get<{ id: number }>(
      sql`INSERT INTO monitor_passes (started_at, finished_at, cursor, domains)
          VALUES (${p.startedAt}, ${p.finishedAt ?? null}, ${p.cursor}, ${p.domains}) RETURNING id`,
    );
    ids.push(Number(row?.id));
  }
  await db.close();
  return ids;
}

/**
 * Works the pass through to its end as one process: each page claimed, its domains recorded in a transaction each
 * (as the monitor stores a check), the page done. The pages' bounds and the domains each one gave.
 */
async function workThrough(
  db: Db,
  passes: PassStore,
  passId: number,
): Promise<{ bounds: [string, string | null][]; domains: string[][] }> {
  const bounds: [string, string | null][] = [];
  const domains: string[][] = [];
  for (
    let claim = await passes.claim(passId, NOW, LEASE);
    claim;
    claim = await passes.claim(passId, NOW, LEASE)
  ) {
    const c: PageClaim = claim;
    bounds.push([c.after, c.upto]);
    domains.push(await passes.domains(c));
    for (const d of domains.at(-1) ?? [])
      expect(await db.transaction(() => passes.record(c, d))).toBe('stored');
    expect(await passes.pageDone(c, NOW)).toBe(true);
  }
  expect(await passes.outstanding(passId)).toBe(0);
  return { bounds, domains };
}

const passRows = (db: Db) =>
  db.all<{ id: number; finished_at: string | null; domains: number }>(
    sql`SELECT id, finished_at, domains FROM monitor_passes ORDER BY id`,
  );

describe.each(engines)('%s', (_name, database) => {
  test('the unfinished pass is taken up after its cursor, an older unfinished one is closed, the next starts afresh', async () => {
    const open = database();
    const [done, older, newest] = await before014(open, [
      {
        startedAt: '2026-11-28T10:00:00.000Z',
        finishedAt: '2026-11-28T10:05:00.000Z',
        cursor: '',
        domains: 7,
      },
      { startedAt: '2026-11-28T11:00:00.000Z', cursor: 'd1.example', domains: 2 },
      { startedAt: '2026-11-29T11:00:00.000Z', cursor: 'd3.example', domains: 4 },
    ]);
    const db = await open(MIGRATIONS_DIR);
    expect(db.migrated[0]).toMatch(/^014_/);
    const passes = new PassStore(db, 'host-a:1');

    // The newest unfinished pass is the open one: joined, as a restart joins the pass it left.
    expect(await passes.begin(NOW, null)).toEqual({ kind: 'open', id: newest, resumed: true });
    await passes.plan(Number(newest), 2);
    const worked = await workThrough(db, passes, Number(newest));
    // Its pages start after its cursor: d0..d3 were checked in it before the upgrade.
    expect(worked.bounds).toEqual([
      ['d3.example', 'd5.example'],
      ['d5.example', null],
    ]);
    expect(worked.domains).toEqual([['d4.example', 'd5.example'], ['d6.example']]);
    expect(await passes.finish(Number(newest), NOW)).toBe(true);

    // The older unfinished pass was closed by the upgrade; the finished one kept its end; the resumed one counts all 7.
    const rows = await passRows(db);
    expect(rows).toEqual([
      { id: done, finished_at: '2026-11-28T10:05:00.000Z', domains: 7 },
      { id: older, finished_at: expect.any(String), domains: 2 },
      { id: newest, finished_at: NOW.toISOString(), domains: 7 },
    ]);

    // The next pass is a new one (the older unfinished pass is not taken up again), from the first domain.
    const next = await passes.begin(new Date(NOW.getTime() + 3600_000), null);
    expect(next).toMatchObject({ kind: 'open', resumed: false });
    if (next.kind !== 'open') throw new Error(`a new pass was expected, got ${JSON.stringify(next)}`);
    expect([done, older, newest]).not.toContain(next.id);
    await passes.plan(next.id, 10);
    const fresh = await workThrough(db, passes, next.id);
    expect(fresh).toEqual({ bounds: [['', null]], domains: [DOMAINS] });
    await db.close();
  });

  test('a pass left with its cursor at the last domain is taken up with nothing to check, and ends', async () => {
    const open = database();
    const [only] = await before014(open, [
      { startedAt: '2026-11-29T11:00:00.000Z', cursor: 'd6.example', domains: 7 },
    ]);
    const db = await open(MIGRATIONS_DIR);
    const passes = new PassStore(db, 'host-a:1');
    expect(await passes.begin(NOW, null)).toEqual({ kind: 'open', id: only, resumed: true });
    await passes.plan(Number(only), 2);
    expect(await workThrough(db, passes, Number(only))).toEqual({
      bounds: [['d6.example', null]],
      domains: [[]],
    });
    expect(await passes.finish(Number(only), NOW)).toBe(true);
    expect(await passRows(db)).toEqual([{ id: only, finished_at: NOW.toISOString(), domains: 7 }]);
    await db.close();
  });
});
