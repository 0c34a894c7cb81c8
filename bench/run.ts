import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAppConfig } from '../src/config.js';
import { parseDomain } from '../src/core/domain.js';
import type { Poster } from '../src/monitor/deliver.js';
import { openRuntime } from '../src/runtime.js';
import { type Peers, startPeers } from './peers-child.js';
import { benchDomain } from './population.js';
import { printProcessFigures, processFigures } from './process.js';
import { replicaFigures, replicasMissing } from './replicas.js';

/**
 * npm run bench: first the process figures (how long `mtasts` commands and the app's start take, next to
 * `node -e 0`: see process.ts), then a monitoring pass over a population of domains served by loopback peers, through
 * the real monitor and SQLite. Each size runs in a process of its own (so that peak RSS is that run's), the peers in
 * another. Last, where PostgreSQL can be had, one and then two replicas sharing passes on it (replicas.ts).
 *
 *   npm run bench -- [--domains 10000] [--small 1000] [--delay 20] [--concurrency N] [--only process|pass|replicas]
 */

interface Options {
  domains: number;
  small: number;
  delay: number;
  concurrency: number | null;
  only: 'process' | 'pass' | 'replicas' | null;
}

interface RunResult {
  domains: number;
  concurrency: number;
  peers: Omit<Peers, 'caPem' | 'dns'>;
  pass: {
    wallMs: number;
    cpuMs: number;
    peakRssMb: number;
    sqliteMs: number;
    probes: number;
    probeHits: number;
    dnsQueries: number;
    dnsHits: number;
    statuses: Record<string, number>;
    failures: number;
  };
  second: { wallMs: number; cpuMs: number; alerts: number };
  single: { wallMs: number[]; chainMs: number };
}

function parseOptions(argv: string[]): Options {
  const options: Options = { domains: 10000, small: 1000, delay: 20, concurrency: null, only: null };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]?.replace(/^--/, '');
    if (name === 'only') {
      const what = argv[i + 1];
      if (what !== 'process' && what !== 'pass' && what !== 'replicas')
        throw new Error('--only takes process, pass or replicas');
      options.only = what;
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} needs a whole number`);
    if (name === 'domains') options.domains = value;
    else if (name === 'small') options.small = value;
    else if (name === 'delay') options.delay = value;
    else if (name === 'concurrency') options.concurrency = value;
    else throw new Error(`unknown option --${name}`);
  }
  return options;
}

/** One size, in this process: set up, run two passes and single checks, report figures. */
async function runSize(domains: number, delay: number, concurrency: number | null): Promise<RunResult> {
  const { peers, stop } = await startPeers(domains, delay);
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-bench-'));
  try {
    const config = loadAppConfig({
      SLACK_BOT_TOKEN: 'xoxb-bench',
      SLACK_SIGNING_SECRET: 'bench',
      DATABASE_PATH: join(dir, 'bench.sqlite'),
      MTASTS_DNS_SERVERS: peers.dns,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
      MTASTS_EHLO_NAME: 'bench.checker',
      ...(concurrency ? { MTASTS_MONITOR_CONCURRENCY: String(concurrency) } : {}),
    });
    let sent = 0;
    const poster: Poster = { post: async () => ({ ok: true, ts: String(++sent) }) };
    const runtime = await openRuntime(
      config,
      null,
      { info() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) },
      {
        engine: { options: { ca: [peers.caPem], policyPort: peers.httpsPort, smtpPort: peers.smtpPort } },
        poster,
      },
    );
    const now = new Date();
    await runtime.monitorStore.atomically(async () => {
      for (let i = 0; i < domains; i++) {
        await runtime.subscriptions.watch(
          'TBENCH',
          `C${Math.floor(i / 100)}`,
          benchDomain(i).name,
          'UBENCH',
          domains,
          now,
        );
      }
    });

    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const first = await runtime.monitor.runPass();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    if (!first) throw new Error('a pass was already running');
    const statuses: Record<string, number> = {};
    for (let i = 0; i < domains; i++) {
      const status = (await runtime.checks.last(benchDomain(i).name))?.status ?? 'none';
      statuses[status] = (statuses[status] ?? 0) + 1;
    }

    const cpu1 = process.cpuUsage();
    const t1 = performance.now();
    const second = await runtime.monitor.runPass();
    const secondWall = performance.now() - t1;
    const secondCpu = process.cpuUsage(cpu1);

    // A single check of a healthy domain with MX hosts of its own, without the pass caches.
    const single: number[] = [];
    const parsed = parseDomain(benchDomain(7).name);
    if (!parsed.ok) throw new Error(parsed.error);
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const report = await runtime.engine.check(parsed.domain);
      single.push(performance.now() - t);
      if (report.status !== 'pass')
        throw new Error(`the single-check domain is not healthy: ${JSON.stringify(report.findings)}`);
    }
    await runtime.close();
    return {
      domains,
      concurrency: config.monitorConcurrency,
      peers: {
        httpsPort: peers.httpsPort,
        smtpPort: peers.smtpPort,
        hosts: peers.hosts,
        certificates: peers.certificates,
        setupMs: peers.setupMs,
      },
      pass: {
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        peakRssMb,
        sqliteMs: first.sqliteMs,
        probes: first.network.probes,
        probeHits: first.network.probeHits,
        dnsQueries: first.network.dnsQueries,
        dnsHits: first.network.dnsHits,
        statuses,
        failures: first.failures,
      },
      second: {
        wallMs: secondWall,
        cpuMs: (secondCpu.user + secondCpu.system) / 1000,
        alerts: second?.alerts ?? 0,
      },
      // MX lookup, the MX host's address, then greeting, EHLO, STARTTLS and QUIT: six replies in a row.
      single: { wallMs: single, chainMs: 6 * delay },
    };
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(size: number, options: Options): Promise<RunResult> {
  const args = ['--child', String(size), String(options.delay), String(options.concurrency ?? 0)];
  const child = fork(fileURLToPath(import.meta.url), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as RunResult));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the ${size}-domain run failed (exit ${code})`));
    });
  });
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

function print(results: RunResult[], options: Options): void {
  const rows: [string, (r: RunResult) => string][] = [
    ['pass wall time (s)', (r) => fmt(r.pass.wallMs / 1000)],
    ['domains per second', (r) => fmt(r.domains / (r.pass.wallMs / 1000), 0)],
    ['distinct MX probes', (r) => String(r.pass.probes)],
    ['probe results reused', (r) => String(r.pass.probeHits)],
    ['DNS questions asked', (r) => String(r.pass.dnsQueries)],
    ['DNS answers reused', (r) => String(r.pass.dnsHits)],
    ['CPU seconds (user+sys)', (r) => fmt(r.pass.cpuMs / 1000)],
    ['CPU ms per domain', (r) => fmt(r.pass.cpuMs / r.domains, 2)],
    ['CPU ms per probe', (r) => fmt(r.pass.cpuMs / Math.max(1, r.pass.probes), 2)],
    ['peak RSS (MB)', (r) => fmt(r.pass.peakRssMb, 0)],
    ['SQLite time (s)', (r) => fmt(r.pass.sqliteMs / 1000, 2)],
    [
      'results fail/warn/pass',
      (r) => `${r.pass.statuses.fail ?? 0}/${r.pass.statuses.warn ?? 0}/${r.pass.statuses.pass ?? 0}`,
    ],
    ['domains not checked', (r) => String(r.pass.failures)],
    ['second pass wall (s)', (r) => fmt(r.second.wallMs / 1000)],
    ['second pass CPU (s)', (r) => fmt(r.second.cpuMs / 1000)],
    ['second pass alerts', (r) => String(r.second.alerts)],
  ];
  const width = 26;
  const out: string[] = [];
  out.push(
    `mtasts bench: ${options.delay} ms a reply, monitor concurrency ${results[0]?.concurrency}, ` +
      `population 70% on 3 shared providers, 30% with 2 own MX, 5% with faults`,
  );
  out.push(`${''.padEnd(width)}${results.map((r) => `${r.domains} domains`.padStart(16)).join('')}`);
  for (const [label, value] of rows)
    out.push(`${label.padEnd(width)}${results.map((r) => value(r).padStart(16)).join('')}`);
  const [small, big] = results;
  if (small && big) {
    const perDomain = big.pass.cpuMs / big.domains / (small.pass.cpuMs / small.domains);
    const perProbe = big.pass.cpuMs / big.pass.probes / (small.pass.cpuMs / small.pass.probes);
    out.push(
      `CPU per domain, ${big.domains} vs ${small.domains}: ratio ${fmt(perDomain, 2)}; per probe: ratio ${fmt(perProbe, 2)} (1.00 is flat)`,
    );
  }
  for (const r of results) {
    const m = median(r.single.wallMs);
    out.push(
      `single check (${r.domains}-domain run): median ${fmt(m, 0)} ms of ${r.single.wallMs.map((x) => fmt(x, 0)).join(', ')}; ` +
        `longest chain ${r.single.chainMs} ms (6 replies of ${options.delay} ms): ratio ${fmt(m / r.single.chainMs, 2)}`,
    );
  }
  for (const r of results) {
    out.push(
      `peers for ${r.domains} domains: ${r.peers.hosts} hosts, ${r.peers.certificates} certificates, set up in ${fmt(r.peers.setupMs / 1000)} s (not timed)`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const result = await runSize(Number(argv[1]), Number(argv[2]), Number(argv[3]) || null);
    process.send?.(result);
    process.disconnect?.();
    return;
  }
  const options = parseOptions(argv);
  if (options.only === 'replicas') return replicas(options);
  if (options.only !== 'pass') {
    process.stderr.write('bench: process figures…\n');
    process.stdout.write(`${printProcessFigures(await processFigures(options.delay))}\n\n`);
    if (options.only === 'process') return;
  }
  const sizes =
    options.small > 0 && options.small < options.domains
      ? [options.small, options.domains]
      : [options.domains];
  const results: RunResult[] = [];
  for (const size of sizes) {
    process.stderr.write(`bench: ${size} domains…\n`);
    results.push(await runChild(size, options));
  }
  print(results, options);
  if (options.only === null) await replicas(options);
}

/** The replicas figures (after the SQLite ones), or one line saying why they were skipped; exit 1 when any failed. */
async function replicas(options: Options): Promise<void> {
  const missing = replicasMissing();
  if (missing) {
    process.stdout.write(
      `${options.only === 'replicas' ? '' : '\n'}replicas on PostgreSQL skipped: ${missing}\n`,
    );
    if (options.only === 'replicas') process.exitCode = 1;
    return;
  }
  const { text, ok } = await replicaFigures(options);
  process.stdout.write(`${options.only === 'replicas' ? '' : '\n'}${text}\n`);
  if (!ok) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
