import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseFor, postgresMissing, startCluster } from '../test/support/postgres.js';
import { type PeersHandle, startPeers } from './peers-child.js';
import type { ReplicaPass, ReplicaSetup } from './replica.js';

/**
 * `npm run bench -- --only replicas`: the monitor's shared passes on PostgreSQL, run by one replica and then by two
 * (separate processes) over the same population on a throwaway cluster, a fresh database for each. Every replica of a
 * run is told "go" at the same moment for the same slot, twice (slot A, the silent baseline; slot B, which posts the
 * alerts for faults seen twice). The peers count the policy fetches of each domain (one per check made), each replica
 * tells the domains it stored and the alerts it posted: a domain checked or stored twice, or an alert posted twice, in
 * one pass fails the bench.
 */

export interface ReplicaOptions {
  domains: number;
  delay: number;
  concurrency: number | null;
}

interface PassFigures {
  wallMs: number;
  cpuMs: number;
  serverCpuMs: number;
  peakRssMb: number;
  pages: number[];
  /** Each replica's first check, in s after "go" ('-': it checked none). */
  firstCheck: string[];
  /** How each replica came to the pass: b began it, j joined it, r found it run already. */
  came: string;
  pagesLost: number;
  ended: number[];
  checks: number;
  checkedTwice: number;
  /** Domains whose checks never reached their policy host (the lookup of its address failed, say). */
  noConnection: number;
  stored: number;
  storedTwice: number;
  failures: number;
  statuses: Record<string, number>;
  /** The failing findings of the results stored, by code. */
  failing: Record<string, number>;
  queued: number;
  posted: number;
  postedTwice: number;
}

interface RunFigures {
  replicas: number;
  concurrency: number;
  poolSize: number;
  passes: PassFigures[];
}

/** Why the replicas mode cannot run here, or null when it can. */
export function replicasMissing(): string | null {
  if (process.getuid?.() !== 0)
    return 'not root (the throwaway PostgreSQL cluster runs as the postgres user through runuser)';
  return postgresMissing();
}

/** Runs 1 and then 2 replicas; the figures as text, and whether nothing was checked, stored or posted twice. */
export async function replicaFigures(options: ReplicaOptions): Promise<{ text: string; ok: boolean }> {
  const load = loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
  const cluster = await startCluster();
  try {
    const peers = await startPeers(options.domains, options.delay);
    try {
      const runs: RunFigures[] = [];
      for (const replicas of [1, 2]) {
        process.stderr.write(`bench: ${options.domains} domains, ${replicas} replica(s) on PostgreSQL…\n`);
        const url = databaseFor(cluster.port, `bench-replicas-${replicas}`);
        runs.push(await runReplicas(replicas, url, join(cluster.dir, 'data'), peers, options));
      }
      return report(runs, options, load);
    } finally {
      peers.stop();
    }
  } finally {
    await cluster.stop();
  }
}

/** One run: `count` replica processes on a fresh database, two passes. */
async function runReplicas(
  count: number,
  databaseUrl: string,
  dataDir: string,
  handle: PeersHandle,
  options: ReplicaOptions,
): Promise<RunFigures> {
  const children: ChildProcess[] = [];
  try {
    const { dns, httpsPort, smtpPort, caPem } = handle.peers;
    for (let index = 1; index <= count; index++) {
      const child = fork(fileURLToPath(new URL('./replica.js', import.meta.url)), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      const setup: ReplicaSetup = {
        setup: {
          index,
          databaseUrl,
          peers: { dns, httpsPort, smtpPort, caPem },
          concurrency: options.concurrency,
          seed: index === 1 ? options.domains : 0, // the first one migrates the database and seeds it
        },
      };
      await ask(child, setup, (m) => (m as { ready?: number }).ready === index);
    }
    const passes: PassFigures[] = [];
    let settings = { concurrency: 0, poolSize: 0 };
    for (const slot of ['bench-A', 'bench-B']) {
      const { figures, results } = await runPass(children, slot, dataDir, handle);
      passes.push(figures);
      settings = { concurrency: results[0]?.concurrency ?? 0, poolSize: results[0]?.poolSize ?? 0 };
    }
    return { replicas: count, ...settings, passes };
  } finally {
    await Promise.all(children.map((c) => stop(c)));
  }
}

/**
 * One pass: the peers' counts are started afresh, every replica is told "go" for `slot` at once, and what they did is
 * put together with the policy fetches the peers saw meanwhile and the database server's CPU.
 */
async function runPass(
  children: ChildProcess[],
  slot: string,
  dataDir: string,
  handle: PeersHandle,
): Promise<{ figures: PassFigures; results: ReplicaPass[] }> {
  await handle.fetches();
  const server0 = serverCpuMs(dataDir);
  const results = await Promise.all(
    children.map(
      (child) => ask(child, { go: slot }, (m) => 'stored' in (m as object)) as Promise<ReplicaPass>,
    ),
  );
  const serverCpu = serverCpuMs(dataDir) - server0;
  const fetches = await handle.fetches();
  const gone = results.find((r) => r.summary === null);
  if (gone) throw new Error(`replica ${gone.index} was already running a pass`);
  return { figures: figuresOf(results, fetches, serverCpu), results };
}

function figuresOf(results: ReplicaPass[], fetches: number[], serverCpuMs: number): PassFigures {
  const times = (xs: string[]) => {
    const seen = new Map<string, number>();
    for (const x of xs) seen.set(x, (seen.get(x) ?? 0) + 1);
    return [...seen.values()];
  };
  const stored = times(results.flatMap((r) => r.stored));
  // An alert is its event in a channel: the same one posted again is posted twice.
  const posted = times(results.flatMap((r) => r.posted.map((p) => p.split(' ').slice(0, 3).join(' '))));
  const sum = (f: (r: ReplicaPass) => number) => results.reduce((n, r) => n + f(r), 0);
  return {
    wallMs: Math.max(...results.map((r) => r.wallMs)),
    cpuMs: sum((r) => r.cpuMs),
    serverCpuMs,
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
    pages: results.map((r) => r.summary?.pages ?? 0),
    firstCheck: results.map((r) => (r.firstCheckMs === null ? '-' : fmt(r.firstCheckMs / 1000))),
    came: results.map((r) => (r.summary?.alreadyRun ? 'r' : r.summary?.resumed ? 'j' : 'b')).join('+'),
    pagesLost: sum((r) => r.summary?.pagesLost ?? 0),
    ended: results.filter((r) => r.summary?.ended).map((r) => r.index),
    checks: fetches.reduce((n, c) => n + c, 0),
    checkedTwice: fetches.filter((c) => c > 1).length,
    noConnection: fetches.filter((c) => c === 0).length,
    stored: stored.length,
    storedTwice: stored.filter((n) => n > 1).length,
    failures: sum((r) => r.summary?.failures ?? 0),
    statuses: merged(results.map((r) => r.statuses)),
    failing: merged(results.map((r) => r.failing)),
    queued: sum((r) => r.summary?.alerts ?? 0),
    posted: sum((r) => r.posted.length),
    postedTwice: posted.filter((n) => n > 1).length,
  };
}

function merged(counts: Record<string, number>[]): Record<string, number> {
  const all: Record<string, number> = {};
  for (const c of counts) for (const [k, n] of Object.entries(c)) all[k] = (all[k] ?? 0) + n;
  return all;
}

/** Sends `message` (unless null) and resolves to the child's next message that `wanted` accepts. */
function ask(child: ChildProcess, message: unknown, wanted: (m: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`a replica exited (${code}) during the bench`));
    const onMessage = (m: unknown) => {
      if (!wanted(m)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message !== null) child.send(message as object);
  });
}

/** Asks a replica to close its runtime and exit; ends it when it does not within 10 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill(), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.send('exit');
    else child.kill();
  });
}

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || '100');

/**
 * The PostgreSQL server's CPU time so far (user+sys, ms): the postmaster's own and that of the backends it reaped,
 * plus its children still running. The difference over a pass is what serving the replicas cost the server.
 */
function serverCpuMs(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const stat = (pid: string | number) => {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    } catch {
      return null; // gone meanwhile
    }
  };
  const own = stat(postmaster);
  if (!own) return 0;
  // Fields 4 (ppid) and 14 to 17 (utime, stime, cutime, cstime), counted from the state, field 3.
  let ticks = [11, 12, 13, 14].reduce((n, i) => n + Number(own[i]), 0);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const fields = stat(pid);
    if (fields && Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_MS;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** The table's rows: each pass's figure (printed "first pass / second pass" for each run). */
const ROWS: [string, (p: PassFigures) => string][] = [
  ['pass wall time (s)', (p) => fmt(p.wallMs / 1000)],
  ['domains per second', (p) => fmt(p.stored / (p.wallMs / 1000), 0)],
  ['CPU s, replicas summed', (p) => fmt(p.cpuMs / 1000)],
  ['CPU ms per domain', (p) => fmt(cpuPerDomain(p), 2)],
  ['PostgreSQL server CPU (s)', (p) => fmt(p.serverCpuMs / 1000)],
  ['peak RSS of a replica (MB)', (p) => fmt(p.peakRssMb, 0)],
  ['began (b), joined (j), found run (r)', (p) => p.came],
  ['pages per replica', (p) => p.pages.join('+')],
  ['first check after "go" (s)', (p) => p.firstCheck.join('+')],
  ['pages lost', (p) => String(p.pagesLost)],
  ['pass ended by replica', (p) => p.ended.join('+') || 'none'],
  ['checks made (policy host connections)', (p) => String(p.checks)],
  ['domains checked twice', (p) => String(p.checkedTwice)],
  ['domains without a policy connection', (p) => String(p.noConnection)],
  ['domains stored', (p) => String(p.stored)],
  ['domains stored twice', (p) => String(p.storedTwice)],
  [
    'results fail/warn/pass',
    (p) => `${p.statuses.fail ?? 0}/${p.statuses.warn ?? 0}/${p.statuses.pass ?? 0}`,
  ],
  ['checks that threw', (p) => String(p.failures)],
  ['alerts queued', (p) => String(p.queued)],
  ['alerts posted in all', (p) => String(p.posted)],
  ['alerts posted twice', (p) => String(p.postedTwice)],
];

const cpuPerDomain = (p: PassFigures) => p.cpuMs / Math.max(1, p.stored);

/** The table, a column per run; the ratios of 2 to 1 replica; the failing findings; what failed, loudly. */
function report(runs: RunFigures[], options: ReplicaOptions, load: string): { text: string; ok: boolean } {
  const [one, two] = runs;
  const width = 40;
  const column = 24;
  const out = [
    `mtasts bench, PostgreSQL replicas: ${options.domains} domains, ${options.delay} ms a reply, monitor concurrency ` +
      `${one?.concurrency} and ${one?.poolSize} connections a replica, load average at start ${load}`,
    `${'(first pass / second pass)'.padEnd(width)}${runs.map((r) => `${r.replicas} replica${r.replicas > 1 ? 's' : ''}`.padStart(column)).join('')}`,
    ...ROWS.map(
      ([label, value]) =>
        `${label.padEnd(width)}${runs.map((r) => r.passes.map(value).join(' / ').padStart(column)).join('')}`,
    ),
  ];
  if (one && two) {
    const ratio = (f: (p: PassFigures) => number) =>
      two.passes.map((p, i) => fmt(f(p) / f(one.passes[i] as PassFigures), 2)).join(' / ');
    out.push(
      `2 vs 1 replica: pass time ratio ${ratio((p) => p.wallMs)}; CPU per domain ratio ${ratio(cpuPerDomain)} (first / second pass)`,
    );
  }
  out.push(...findingLines(runs));
  const failures = failuresOf(runs);
  for (const f of failures) out.push(`REPLICAS BENCH FAILED: ${f}`);
  return { text: out.join('\n'), ok: failures.length === 0 };
}

/** The failing findings by code: one line when every pass of every run saw the same, else a line for each pass. */
function findingLines(runs: RunFigures[]): string[] {
  const lines = runs.flatMap((r) =>
    r.passes.map((p, i) => ({
      where: `${r.replicas} replica(s), pass ${i + 1}`,
      codes:
        Object.entries(p.failing)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([code, n]) => `${code} ${n}`)
          .join(', ') || 'none',
    })),
  );
  if (lines.every((l) => l.codes === lines[0]?.codes))
    return [`failing findings in every pass: ${lines[0]?.codes ?? 'none'}`];
  return lines.map((l) => `failing findings, ${l.where}: ${l.codes}`);
}

/** A domain checked or stored twice in one pass, or an alert posted twice. */
function failuresOf(runs: RunFigures[]): string[] {
  return runs.flatMap((r) =>
    r.passes.flatMap((p, i) => {
      const where = `${r.replicas} replica(s), pass ${i + 1}`;
      return [
        p.checkedTwice > 0 ? `${p.checkedTwice} domain(s) CHECKED TWICE (${where})` : null,
        p.storedTwice > 0 ? `${p.storedTwice} domain(s) STORED TWICE (${where})` : null,
        p.postedTwice > 0 ? `${p.postedTwice} alert(s) POSTED TWICE (${where})` : null,
      ].filter((x) => x !== null);
    }),
  );
}
