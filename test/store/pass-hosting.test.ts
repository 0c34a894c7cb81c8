import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Engine } from '../../src/engine.js';
import type { HostingHooks } from '../../src/monitor/hosting.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { CheckStore } from '../../src/store/checks.js';
import { type Db, openDatabase, openPostgres, sql } from '../../src/store/db.js';
import { MonitorStore } from '../../src/store/monitor.js';
import { type PageClaim, PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { postgresUrlFor } from '../support/config.js';
import { hostedDomain } from '../support/hosted-domain.js';
import { reportOf } from '../support/report.js';

/**
 * A hosted domain's follow-up in a pass (what is served for it, its reminders) is part of the transaction that stores
 * the check: none for a check this process may no longer store, and undone alone when it fails. On each engine.
 */
const engines: [string, () => Promise<Db>][] = [
  ['sqlite', async () => openDatabase(join(mkdtempSync(join(tmpdir(), 'mtasts-ph-')), 'h.sqlite'))],
  ['postgres', async () => openPostgres(postgresUrlFor(mkdtempSync(join(tmpdir(), 'mtasts-ph-'))))],
];
const NOW = new Date('2026-11-29T12:00:00Z');
const DOMAIN = 'hosted.example';

const hosted = hostedDomain({
  domain: DOMAIN,
  policyHost: `mta-sts.${DOMAIN}`,
  mx: ['mx1.hosted.example'],
  stsId: 'id1',
});

/** Hosting hooks whose MX follow-up writes a row (what serving the new policy would write), then applies or fails. */
function hooks(db: Db, fail: boolean): { hooks: HostingHooks; calls: string[] } {
  const calls: string[] = [];
  const service = {
    observeMx: async () => {
      calls.push('observeMx');
      await db.run(sql`INSERT INTO locks (name, holder, expires_at) VALUES ('served-by-hosting', 'x', 'y')`);
      if (fail) throw new Error('the hosting store refused the new version');
      return {
        kind: 'applied',
        hosted: { ...hosted, mx: ['mx2.hosted.example'], stsId: 'id2' },
        proposal: {
          observed: ['mx2.hosted.example'],
          add: ['mx2.hosted.example'],
          drop: ['mx1.hosted.example'],
          proposedAt: NOW.toISOString(),
          final: ['mx2.hosted.example'],
        },
        previousId: 'id1',
      };
    },
    markReminded: async () => {
      calls.push('markReminded');
    },
  };
  const h = { service, hosted: async () => hosted, served: async () => [], reminderMs: 86_400_000 };
  return { hooks: h as unknown as HostingHooks, calls };
}

async function setUp(open: () => Promise<Db>, fail = false) {
  const db = await open();
  await new SubscriptionStore(db).watch('T1', 'C1', DOMAIN, 'U1', 10, NOW);
  const passes = new PassStore(db, 'host-a:1');
  const begun = await passes.begin(NOW, null);
  if (begun.kind !== 'open') throw new Error('no pass');
  await passes.plan(begun.id, 10);
  const claim = (await passes.claim(begun.id, NOW, 60_000)) as PageClaim;
  const { hooks: hosting, calls } = hooks(db, fail);
  const engine = {
    deps: {},
    check: async () => reportOf({ domain: DOMAIN, mx: ['mx2.hosted.example'] }),
  } as unknown as Engine;
  const errors: string[] = [];
  const monitor = new Monitor({
    engine,
    passes,
    subscriptions: new SubscriptionStore(db),
    checks: new CheckStore(db),
    store: new MonitorStore(db),
    poster: { post: async () => ({ ok: true, ts: '1' }) },
    now: () => NOW,
    logger: { info() {}, warn() {}, error: (m) => errors.push(m) },
    hosting,
    settings: { jitterMs: 0 },
  });
  const served = async () =>
    (await db.all(sql`SELECT name FROM locks WHERE name = 'served-by-hosting'`)).length;
  const outbox = async () =>
    (await db.all<{ event_key: string }>(sql`SELECT event_key FROM outbox ORDER BY id`)).map(
      (r) => r.event_key,
    );
  return { db, passes, claim, calls, monitor, errors, served, outbox, passId: begun.id };
}

describe.each(engines)('%s', (_name, open) => {
  test('stored: the follow-up is kept with the check, its alert queued', async () => {
    const t = await setUp(open);
    const r = await t.monitor.checkOne(DOMAIN, undefined, undefined, t.claim);
    expect(r.outcome).toBe('stored');
    expect(t.calls).toEqual(['observeMx', 'markReminded']);
    expect(await t.served()).toBe(1);
    expect(await t.outbox()).toEqual([expect.stringMatching(/^hosting-applied /)]);
    await t.db.close();
  });

  test('a page taken over meanwhile: no follow-up at all (the next check applies it, and alerts)', async () => {
    const t = await setUp(open);
    const other = new PassStore(t.db, 'host-b:2');
    expect(await other.claim(t.passId, new Date(NOW.getTime() + 60_001), 60_000)).not.toBeNull();
    const r = await t.monitor.checkOne(DOMAIN, undefined, undefined, t.claim);
    expect(r.outcome).toBe('lost');
    expect(t.calls).toEqual([]);
    expect(await t.served()).toBe(0);
    expect(await t.outbox()).toEqual([]);
    await t.db.close();
  });

  test('a follow-up that fails is undone alone: the check is stored, the failure logged', async () => {
    const t = await setUp(open, true);
    const r = await t.monitor.checkOne(DOMAIN, undefined, undefined, t.claim);
    expect(r.outcome).toBe('stored');
    expect(t.calls).toEqual(['observeMx']);
    expect(await t.served()).toBe(0); // written, then undone with the savepoint
    expect(await new CheckStore(t.db).last(DOMAIN)).not.toBeNull();
    expect(t.errors.join('\n')).toContain('hosting of hosted.example not followed up');
    await t.db.close();
  });

  test('a savepoint inside a transaction: its writes undone on failure (also after a failed statement), the rest kept', async () => {
    const db = await open();
    await db.transaction(async () => {
      await db.run(sql`INSERT INTO locks (name, holder, expires_at) VALUES ('kept', 'x', 'y')`);
      await expect(
        db.savepoint(async () => {
          await db.run(sql`INSERT INTO locks (name, holder, expires_at) VALUES ('undone', 'x', 'y')`);
          await db.run(sql`INSERT INTO locks (name, holder, expires_at) VALUES ('kept', 'x', 'y')`); // duplicate
        }),
      ).rejects.toThrow();
      await db.run(sql`INSERT INTO locks (name, holder, expires_at) VALUES ('after', 'x', 'y')`);
    });
    const names = (await db.all<{ name: string }>(sql`SELECT name FROM locks ORDER BY name`)).map(
      (r) => r.name,
    );
    expect(names).toEqual(['after', 'kept']);
    await db.close();
  });
});
