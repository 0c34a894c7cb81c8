import { AsyncLocalStorage } from 'node:async_hooks';
import { loadAppConfig } from '../src/config.js';
import type { Report } from '../src/core/check.js';
import type { Poster } from '../src/monitor/deliver.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import type { Peers } from './peers-child.js';
import { benchDomain } from './population.js';

/**
 * One replica of `npm run bench -- --only replicas` (replicas.ts), in a process of its own: it opens its own runtime on
 * the shared PostgreSQL database, then for each "go" the parent sends (to every replica at once) runs the monitor's
 * pass for that slot and tells what it did: its time and CPU, its summary, each domain it stored and each alert it
 * posted (through a stand-in poster that records them).
 */

export interface ReplicaSetup {
  setup: {
    index: number;
    databaseUrl: string;
    peers: Pick<Peers, 'dns' | 'httpsPort' | 'smtpPort' | 'caPem'>;
    concurrency: number | null;
    /** Domains to watch before the first pass (the first replica of a run seeds its fresh database); 0: none. */
    seed: number;
  };
}

export interface ReplicaPass {
  index: number;
  wallMs: number;
  cpuMs: number;
  peakRssMb: number;
  concurrency: number;
  poolSize: number;
  summary: {
    domains: number;
    pages: number;
    pagesLost: number;
    ended: boolean;
    resumed: boolean;
    alreadyRun: boolean;
    alerts: number;
    failures: number;
  } | null;
  /** When this replica began its first check of the pass, in ms after it was told "go"; null: it checked none. */
  firstCheckMs: number | null;
  /** The results it stored, by status (fail, warn, pass), and by the codes of their failing findings. */
  statuses: Record<string, number>;
  failing: Record<string, number>;
  /** The domains whose check this replica stored (committed) in the pass. */
  stored: string[];
  /** The alerts it posted: "eventKey team channel domain". */
  posted: string[];
}

const silent = () => {};

async function open(s: ReplicaSetup['setup'], seen: Seen): Promise<Runtime> {
  const config = loadAppConfig({
    SLACK_BOT_TOKEN: 'xoxb-bench',
    SLACK_SIGNING_SECRET: 'bench',
    DATABASE_URL: s.databaseUrl,
    MTASTS_DNS_SERVERS: s.peers.dns,
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    MTASTS_EHLO_NAME: 'bench.checker',
    ...(s.concurrency ? { MTASTS_MONITOR_CONCURRENCY: String(s.concurrency) } : {}),
  });
  const poster: Poster = {
    post: async (row) => {
      seen.posted.push(`${row.eventKey} ${row.teamId} ${row.channelId} ${row.domain}`);
      return { ok: true, ts: String(seen.posted.length) };
    },
  };
  const say = (m: string) => process.stderr.write(`replica ${s.index}: ${m}\n`);
  return openRuntime(
    config,
    null,
    { info: silent, warn: say, error: say },
    {
      engine: { options: { ca: [s.peers.caPem], policyPort: s.peers.httpsPort, smtpPort: s.peers.smtpPort } },
      poster,
    },
  );
}

async function seed(runtime: Runtime, domains: number): Promise<void> {
  const now = new Date();
  await runtime.monitorStore.atomically(async () => {
    for (let i = 0; i < domains; i++) {
      const name = benchDomain(i).name;
      await runtime.subscriptions.watch('TBENCH', `C${Math.floor(i / 100)}`, name, 'UBENCH', domains, now);
    }
  });
}

/** What a replica saw of the checks of the pass under way. */
interface Seen {
  stored: string[];
  statuses: Record<string, number>;
  failing: Record<string, number>;
  posted: string[];
  firstCheckAt: number | null;
}

/** The reports saved in the transaction under way (the monitor's checks run side by side, each in its own). */
const inTransaction = new AsyncLocalStorage<Report[]>();

/**
 * Records each domain whose check the monitor stored, once the transaction that saved it committed (a check whose page
 * was lost, or whose domain another replica stored first, saves nothing), and when the first check began.
 */
function recordStored(runtime: Runtime, seen: Seen): void {
  const { checks, monitorStore, engine } = runtime;
  const save = checks.save.bind(checks);
  checks.save = async (report) => {
    await save(report);
    inTransaction.getStore()?.push(report);
  };
  const atomically = monitorStore.atomically.bind(monitorStore);
  monitorStore.atomically = async (work) => {
    const saved: Report[] = [];
    await atomically(() => inTransaction.run(saved, work));
    for (const report of saved) {
      seen.stored.push(report.domain);
      tally(seen, report);
    }
  };
  const checkWith = engine.checkWith.bind(engine);
  engine.checkWith = (...args) => {
    seen.firstCheckAt ??= performance.now();
    return checkWith(...args);
  };
}

function tally(seen: Seen, report: Report): void {
  seen.statuses[report.status] = (seen.statuses[report.status] ?? 0) + 1;
  for (const f of report.findings)
    if (f.severity === 'error') seen.failing[f.code] = (seen.failing[f.code] ?? 0) + 1;
}

async function pass(runtime: Runtime, index: number, slot: string, seen: Seen): Promise<ReplicaPass> {
  seen.stored = [];
  seen.posted = [];
  seen.statuses = {};
  seen.failing = {};
  seen.firstCheckAt = null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = await runtime.monitor.runPass(slot);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const result: ReplicaPass = {
    index,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    concurrency: runtime.config.monitorConcurrency,
    poolSize: runtime.config.postgres.poolSize,
    summary: s && {
      domains: s.domains,
      pages: s.pages,
      pagesLost: s.pagesLost,
      ended: s.ended,
      resumed: s.resumed,
      alreadyRun: s.alreadyRun === true,
      alerts: s.alerts,
      failures: s.failures,
    },
    firstCheckMs: seen.firstCheckAt === null ? null : seen.firstCheckAt - t0,
    statuses: seen.statuses,
    failing: seen.failing,
    stored: seen.stored,
    posted: seen.posted,
  };
  return result;
}

function main(): void {
  const seen: Seen = { stored: [], statuses: {}, failing: {}, posted: [], firstCheckAt: null };
  let runtime: Runtime | null = null;
  let index = 0;
  const fail = (err: unknown) => {
    process.stderr.write(`replica ${index}: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  };
  process.on('message', (m: ReplicaSetup | { go: string } | 'exit') => {
    if (m === 'exit') {
      void (runtime?.close() ?? Promise.resolve()).then(() => process.exit(0), fail);
    } else if ('setup' in m) {
      index = m.setup.index;
      void open(m.setup, seen)
        .then(async (r) => {
          runtime = r;
          recordStored(r, seen);
          if (m.setup.seed > 0) await seed(r, m.setup.seed);
          process.send?.({ ready: index });
        })
        .catch(fail);
    } else if (runtime) {
      void pass(runtime, index, m.go, seen).then((r) => process.send?.(r), fail);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

main();
