import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { PassSummary } from '../../src/monitor/monitor.js';
import { openDatabase, sql } from '../../src/store/db.js';
import { PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';
import { TestDnsServer } from '../support/dns-server.js';

/**
 * A monitoring pass shared by OS processes on one SQLite file (the app and `mtasts sweep`, or two apps on one host):
 * each child process is the app's Monitor on its own better-sqlite3 connection (test/support/pass-worker.ts), its
 * checks asking a DNS server on loopback. They begin one pass together and work it page by page; every watched domain
 * must be checked once and stored once, whoever checked it, and no process may fail or log an error on the way (a
 * deferred transaction that upgrades to a write fails with SQLITE_BUSY_SNAPSHOT when another process wrote meanwhile,
 * and its domain was lost to the pass). Runs in the postgres project only (test/store/), on SQLite files all the same.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = fileURLToPath(new URL('../support/pass-worker.ts', import.meta.url));
const DOMAINS = 1000;
const PAGE = 50;
const PROCESSES = 3;
const SLOT = '2026-11-29T12:00:00.000Z';
const name = (i: number) => `d${String(i).padStart(4, '0')}.example`;

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await TestDnsServer.start(); // an empty zone: every name is NXDOMAIN, each check a handful of questions
});
afterAll(async () => {
  await dns.stop();
});

interface Worker {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | string>;
}

function startWorker(dbPath: string): Worker {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', WORKER, dbPath, dns.address, SLOT, String(PAGE)],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const w: Worker = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? String(signal)))),
  };
  child.stdout?.on('data', (b: Buffer) => {
    w.stdout += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    w.stderr += b.toString();
  });
  return w;
}

/** Resolves when the worker said "ready" (its database is open); rejects when it ended before. */
function ready(w: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const look = () => {
      if (w.stdout.startsWith('ready\n')) resolve();
    };
    w.child.stdout?.on('data', look);
    look();
    void w.exit.then((code) => reject(new Error(`worker ended (${code}) before it was ready: ${w.stderr}`)));
  });
}

interface Outcome {
  summary: PassSummary;
  logs: string[];
  posts: number;
}

function outcomeOf(w: Worker): Outcome {
  const line = w.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`worker printed no summary; stderr: ${w.stderr}`);
  return JSON.parse(line) as Outcome;
}

test(`${PROCESSES} processes work one pass of ${DOMAINS} domains on one SQLite file: each domain checked and stored once`, async () => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-passproc-')), 'p.sqlite');
  const setup = openDatabase(dbPath);
  const subs = new SubscriptionStore(setup);
  for (let i = 0; i < DOMAINS; i++) await subs.watch('T1', 'C1', name(i), 'U1', 10 * DOMAINS, new Date());
  await setup.close();

  const workers = Array.from({ length: PROCESSES }, () => startWorker(dbPath));
  await Promise.all(workers.map(ready));
  for (const w of workers) w.child.stdin?.end('go\n');
  const codes = await Promise.all(workers.map((w) => w.exit));

  // No process failed, or said anything on stderr (an uncaught error, a stack trace).
  expect(workers.map((w) => w.stderr)).toEqual(workers.map(() => ''));
  expect(codes).toEqual(workers.map(() => 0));
  const outcomes = workers.map(outcomeOf);
  const summaries = outcomes.map((o) => o.summary);
  // Each domain stored once: the processes' counts add up to it (a domain stored twice would count twice).
  const stored = summaries.reduce((n, s) => n + s.domains, 0);
  expect(`stored ${stored} of ${DOMAINS}`).toBe(`stored ${DOMAINS} of ${DOMAINS}`);
  // None logged an error (a domain that "could not be checked") or a warning (a page lost, a lease not renewed).
  const complaints = outcomes.flatMap((o) => o.logs.filter((l) => !l.startsWith('info ')));
  expect(complaints.map((l) => l.split('\n')[0])).toEqual([]);
  expect(summaries.map((s) => s.failures)).toEqual(workers.map(() => 0));
  // One pass, shared: every process took part in it, and exactly one ended it.
  expect(new Set(summaries.map((s) => s.passId)).size).toBe(1);
  expect(summaries.filter((s) => s.alreadyRun)).toEqual([]);
  expect(summaries.filter((s) => s.ended)).toHaveLength(1);
  for (const s of summaries) expect(s.pages, 'every process worked pages of the pass').toBeGreaterThan(0);
  expect(summaries.reduce((n, s) => n + s.pages, 0)).toBe(DOMAINS / PAGE);
  expect(summaries.reduce((n, s) => n + s.pagesLost, 0)).toBe(0);

  // The database holds each domain's check, state and first snapshot.
  const db = openDatabase(dbPath);
  const count = async (table: string) =>
    Number((await db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${sql.table(table)}`))?.n);
  expect(await count('domain_checks')).toBe(DOMAINS);
  expect(await count('domain_state')).toBe(DOMAINS);
  expect(await count('snapshots')).toBe(DOMAINS);
  // Each checked once: its MTA-STS record was asked for once in all (the resolver makes one try per question).
  const asked = new Map<string, number>();
  for (const q of dns.queries.filter((q) => q.startsWith('TXT _mta-sts.')))
    asked.set(q, (asked.get(q) ?? 0) + 1);
  expect(asked.size).toBe(DOMAINS);
  expect([...asked].filter(([, n]) => n !== 1)).toEqual([]);

  // The pass is finished, with its domains counted; the tick's pass is not begun again.
  const passes = await db.all<{ finished_at: string | null; domains: number }>(
    sql`SELECT finished_at, domains FROM monitor_passes`,
  );
  expect(passes).toEqual([{ finished_at: expect.any(String), domains: DOMAINS }]);
  expect(await new PassStore(db, 'test:1').begin(new Date(), SLOT)).toMatchObject({ kind: 'finished' });
  await db.close();
}, 180_000);
