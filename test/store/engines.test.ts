import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Db, openDatabase, openPostgres, sql } from '../../src/store/db.js';
import { LockStore } from '../../src/store/locks.js';
import { MonitorStore } from '../../src/store/monitor.js';
import { enqueue } from '../../src/store/outbox.js';
import { SubscriptionStore, WATCH_LIST_TEAM } from '../../src/store/subscriptions.js';
import { TlsRptStore } from '../../src/store/tlsrpt.js';
import { postgresUrlFor } from '../support/config.js';
import { startCluster, type TestCluster } from '../support/postgres.js';

/** The store's behaviours that differ most between the engines, on each: a fresh database per test. */
const engines: [string, () => Promise<Db>][] = [
  ['sqlite', async () => openDatabase(join(mkdtempSync(join(tmpdir(), 'mtasts-eng-')), 'e.sqlite'))],
  ['postgres', async () => openPostgres(postgresUrlFor(mkdtempSync(join(tmpdir(), 'mtasts-eng-'))))],
];
const NOW = new Date('2026-11-29T12:00:00Z');

describe.each(engines)('%s', (_name, open) => {
  test('subscriptions: the cap, the team overview with its channels, names as the code spells them', async () => {
    const db = await open();
    const s = new SubscriptionStore(db);
    expect((await s.watch('T1', 'C1', 'a.example', 'U1', 2, NOW)).kind).toBe('added');
    expect((await s.watch('T1', 'C2', 'a.example', 'U1', 2, NOW)).kind).toBe('added');
    expect((await s.watch('T1', 'C1', 'b.example', 'U1', 2, NOW)).kind).toBe('added');
    expect(await s.watch('T1', 'C1', 'c.example', 'U1', 2, NOW)).toEqual({ kind: 'limit', limit: 2 });
    const team = await s.listTeam('T1');
    expect(team.map((t) => [t.domain, [...t.channels].sort()])).toEqual([
      ['a.example', ['C1', 'C2']],
      ['b.example', ['C1']],
    ]);
    expect((await s.get('T1', 'C2', 'a.example'))?.channelId).toBe('C2');
    expect(await s.domainsAfter('a.example', 10)).toEqual(['b.example']);
    await expect(s.watch(WATCH_LIST_TEAM, 'C1', 'x.example', 'cli', 9, NOW)).rejects.toThrow(
      /a watch-list destination is log or webhook:NAME/,
    );
    await db.close();
  });

  test('a lease asked for by two holders at once goes to one', async () => {
    const db = await open();
    const a = new LockStore(db, 'host-a:1');
    const b = new LockStore(db, 'host-b:2');
    const got = await Promise.all([a.acquire('pass', 60_000, NOW), b.acquire('pass', 60_000, NOW)]);
    expect(got.filter(Boolean)).toHaveLength(1);
    // Run out: the other takes it.
    const later = new Date(NOW.getTime() + 61_000);
    expect(await (got[0] ? b : a).acquire('pass', 60_000, later)).toBe(true);
    await db.close();
  });

  test('an alert claimed by two workers at once is posted by one; the next in its channel waits for it', async () => {
    const db = await open();
    const store = new MonitorStore(db);
    const alert = (key: string) => ({
      eventKey: key,
      teamId: 'T1',
      channelId: 'C1',
      threadEventKey: null,
      broadcast: false,
      payload: {
        kind: 'tlsrpt-rate' as const,
        domain: 'a.example',
        summary: summaryOf(),
        rate: 1,
        threshold: 0.05,
      },
    });
    await db.transaction(() => enqueue(db, 'a.example', [alert('one'), alert('two')], NOW));
    const [first, second] = await store.due(NOW);
    if (!first || !second) throw new Error('two alerts were queued');
    const until = new Date(NOW.getTime() + 30_000);
    const claims = await Promise.all([
      store.claim(first.id, 'w1', NOW, until),
      store.claim(first.id, 'w2', NOW, until),
      store.claim(second.id, 'w3', NOW, until),
    ]);
    expect(claims.filter((c) => c !== null)).toHaveLength(1);
    expect(claims[2]).toBeNull();
    await store.markSent(first.id, '1.0', NOW);
    expect(await store.claim(second.id, 'w3', NOW, until)).toEqual({ attempts: 0, rateLimited: 0 });
    await db.close();
  });

  test('a transaction that fails leaves nothing behind; one inside another is part of it', async () => {
    const db = await open();
    const s = new SubscriptionStore(db);
    await expect(
      db.transaction(async () => {
        await s.watch('T1', 'C1', 'a.example', 'U1', 9, NOW);
        await db.transaction(() => s.watch('T1', 'C1', 'b.example', 'U1', 9, NOW));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await s.listChannel('T1', 'C1')).toEqual([]);
    await db.close();
  });

  test('TLS-RPT sums past 32 bits, and their failure details', async () => {
    const db = await open();
    const store = new TlsRptStore(db);
    for (const id of ['r1', 'r2', 'r3']) {
      await store.save(
        {
          organization: 'Org',
          contactInfo: null,
          reportId: id,
          start: '2026-11-28T00:00:00.000Z',
          end: '2026-11-28T23:59:59.000Z',
          day: '2026-11-28',
          policies: [
            {
              policyType: 'sts',
              policyDomain: 'a.example',
              policyString: [],
              mxHosts: [],
              successful: 1_000_000_000,
              failed: 1,
              failures: [
                {
                  resultType: 'certificate-expired',
                  sendingIp: null,
                  receivingMx: 'mx.a.example',
                  receivingHelo: null,
                  receivingIp: null,
                  count: 1,
                  reasonCode: id === 'r1' ? 'X' : null,
                  additionalInfo: null,
                },
              ],
            },
          ],
        },
        'https',
        NOW,
      );
    }
    const s = await store.summary('a.example', '2026-11-01');
    expect(s).toMatchObject({ reports: 3, successful: 3_000_000_000, failed: 3 });
    expect(s.failures).toEqual([
      {
        resultType: 'certificate-expired',
        receivingMx: 'mx.a.example',
        receivingIp: null,
        count: 3,
        reasonCodes: ['X'],
      },
    ]);
    expect(await store.counts()).toEqual({ reports: 3, policies: 3, failures: 3 });
    await db.close();
  });
});

function summaryOf() {
  return {
    domain: 'a.example',
    since: '2026-11-28',
    reports: 1,
    successful: 0,
    failed: 1,
    organizations: [],
    failures: [],
  };
}

describe('PostgreSQL only', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster(); // its own: this file restarts it
  });
  afterAll(() => cluster.stop());

  test('replicas starting at the same moment on an empty database migrate it once', async () => {
    const url = cluster.url('postgres');
    const dbs = await Promise.all(Array.from({ length: 4 }, () => openPostgres(url)));
    const rows = await dbs[0]?.all<{ version: number; n: number }>(
      sql`SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version ORDER BY version`,
    );
    expect(rows?.length).toBeGreaterThan(5);
    expect(rows?.every((r) => r.n === 1)).toBe(true);
    for (const db of dbs) await db.close();
  });

  test('a server restart is a failed query or two, never a crashed process: the pool reconnects', async () => {
    const errors: string[] = [];
    const db = await openPostgres(cluster.url('postgres'), undefined, (err) => errors.push(err.message));
    const s = new SubscriptionStore(db);
    await s.watch('T9', 'C9', 'restart.example', 'U1', 9, NOW);
    await cluster.restart();
    let rows: unknown[] | null = null;
    for (let i = 0; i < 100 && rows === null; i++) {
      rows = await s.listChannel('T9', 'C9').catch(() => null);
      if (rows === null) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows).toHaveLength(1);
    await db.close();
  });
});
