import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Process figures, next to `node -e 0`: what a user waits for before a command answers or the app serves. Each command
 * runs `runs` times in a fresh process, the commands taking turns; its wall time is measured from here, its CPU time (user+sys) and peak RSS by
 * the process itself at exit (a one-line preload). `mtasts check` runs against the bench peers on ports 443 and 25
 * (root only), and its JSON report says how long the check itself took: the rest is the process's own cost.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'mtasts.js');
const HERE = fileURLToPath(new URL('.', import.meta.url));

export interface ProcessRun {
  label: string;
  wallMs: number[];
  cpuMs: number[];
  rssMb: number[];
  /** mtasts check: the check's own duration (its report's durationMs). */
  checkMs?: number[];
  note?: string;
}

export interface ProcessFigures {
  runs: ProcessRun[];
  /** From starting the app to the first 200 on /healthz. */
  ready: { label: string; wallMs: number[] }[];
  notes: string[];
}

const PRELOAD = `process.on('exit', () => {
  const c = process.cpuUsage();
  require('fs').writeFileSync(process.env.BENCH_USAGE_FILE, JSON.stringify({ cpuMs: (c.user + c.system) / 1000, rssMb: process.resourceUsage().maxRSS / 1024 }));
});`;

interface Peers {
  dns: string;
  caPem: string;
  realPorts: { domain: string } | { error: string } | null;
}

function startPeers(delay: number): Promise<{ peers: Peers; child: ChildProcess }> {
  const child = fork(join(HERE, 'peers.js'), ['20', String(delay), 'real-ports'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ peers: m as Peers, child }));
    child.once('exit', (code) => reject(new Error(`the peers exited (${code}) before they were ready`)));
  });
}

/** Runs `args` (node's) once; wall time from here, CPU and RSS from the process. */
function runOnce(
  args: string[],
  env: Record<string, string>,
  dir: string,
): { wallMs: number; cpuMs: number; rssMb: number; stdout: string; status: number | null } {
  const usage = join(dir, 'usage.json');
  rmSync(usage, { force: true });
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--require', join(dir, 'preload.cjs'), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env, BENCH_USAGE_FILE: usage },
    encoding: 'utf8',
  });
  const wallMs = performance.now() - t;
  const u = JSON.parse(readFileSync(usage, 'utf8')) as { cpuMs: number; rssMb: number };
  return { wallMs, ...u, stdout: r.stdout, status: r.status };
}

interface Command {
  label: string;
  args: string[];
  env: Record<string, string>;
}

/** Runs every command `runs` times, taking turns, so that what else the machine does falls on all of them alike. */
function measure(commands: Command[], dir: string, runs: number): ProcessRun[] {
  const out = commands.map((c): ProcessRun => ({ label: c.label, wallMs: [], cpuMs: [], rssMb: [] }));
  for (let i = 0; i < runs; i++) {
    commands.forEach((c, k) => {
      const run = out[k] as ProcessRun;
      const r = runOnce(c.args, c.env, dir);
      run.wallMs.push(r.wallMs);
      run.cpuMs.push(r.cpuMs);
      run.rssMb.push(r.rssMb);
      if (!c.label.startsWith('mtasts check')) return;
      const report = JSON.parse(r.stdout) as { status: string; durationMs: number };
      if (report.status !== 'pass') throw new Error(`the checked domain is not healthy: ${r.stdout}`);
      run.checkMs = [...(run.checkMs ?? []), report.durationMs];
    });
  }
  return out;
}

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    }),
  );
}

/** Starts the app (`command`), polls /healthz until it answers 200; the wall time in between. */
async function readyIn(command: string[], dir: string): Promise<number> {
  const port = await freePort();
  const t = performance.now();
  const child = spawn(command[0] ?? 'node', command.slice(1), {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
    env: {
      PATH: process.env.PATH ?? '',
      SLACK_BOT_TOKEN: 'xoxb-bench',
      SLACK_SIGNING_SECRET: 'bench-secret',
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
      PORT: String(port),
      DATABASE_PATH: join(dir, `ready-${port}.sqlite`),
    },
  });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return performance.now() - t;
      if (performance.now() - t > 60_000) throw new Error(`${command.join(' ')}: no /healthz in 60 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    if (child.pid) process.kill(-child.pid, 'SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Builds dist/ (what `npm start` and the binary run), then measures. */
export async function processFigures(delay: number, runs = 9): Promise<ProcessFigures> {
  const build = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-bench-process-'));
  writeFileSync(join(dir, 'preload.cjs'), PRELOAD);
  // tsc writes dist/ even past type errors: the figures are then of what it wrote, and say so.
  const notes =
    build.status === 0 ? [] : ['tsc -p tsconfig.build.json reported type errors: dist/ is what it wrote'];
  const { peers, child } = await startPeers(delay);
  try {
    const commands: Command[] = [
      { label: 'node -e 0', args: ['-e', '0'], env: {} },
      { label: 'mtasts --version', args: [BIN, '--version'], env: {} },
      { label: 'mtasts help', args: [BIN, 'help'], env: {} },
    ];
    if (peers.realPorts && 'domain' in peers.realPorts) {
      writeFileSync(join(dir, 'ca.pem'), peers.caPem);
      const env = {
        MTASTS_DNS_SERVERS: peers.dns,
        MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
        NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
      };
      commands.push({
        label: 'mtasts check --json',
        args: [BIN, 'check', peers.realPorts.domain, '--json'],
        env,
      });
    } else {
      notes.push(`mtasts check not measured: ports 443 and 25 (${peers.realPorts?.error ?? 'no answer'})`);
    }
    const out = measure(commands, dir, runs);
    const ready = [
      { label: 'node dist/main.js', command: [process.execPath, 'dist/main.js'] },
      { label: 'npm start', command: ['npm', 'start', '--silent'] },
    ].map((r) => ({ ...r, wallMs: [] as number[] }));
    for (let i = 0; i < runs; i++) {
      for (const r of ready) r.wallMs.push(await readyIn(r.command, dir));
    }
    return { runs: out, ready: ready.map(({ label, wallMs }) => ({ label, wallMs })), notes };
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const min = (xs: number[]) => Math.min(...xs);
const s = (ms: number) => (ms / 1000).toFixed(2).padStart(8);

function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
}

/**
 * The figures as a table: the median of the runs and, since other work on the machine only ever adds time, the
 * fastest run; each command also against `node -e 0`. For `mtasts check`, the process around the check is the wall
 * time less the check's own duration, run by run.
 */
export function printProcessFigures(f: ProcessFigures): string {
  const base = f.runs[0]?.wallMs ?? [0];
  const lines = [
    `process figures (${base.length} runs each; CPU is user+sys of the process itself; load average ${loadAverage()})`,
    `${''.padEnd(34)}wall s: median fastest   CPU s  RSS MB  median - node -e 0`,
  ];
  for (const r of f.runs) {
    const wall = median(r.wallMs);
    lines.push(
      `${r.label.padEnd(34)}${s(wall)}${s(min(r.wallMs))}${s(median(r.cpuMs))}${median(r.rssMb).toFixed(0).padStart(8)}${s(wall - median(base))}`,
    );
    if (r.checkMs) {
      const own = r.checkMs;
      const around = r.wallMs.map((w, i) => w - (own[i] ?? 0));
      lines.push(`${'  the check itself'.padEnd(34)}${s(median(own))}${s(min(own))}`);
      lines.push(`${'  the process around it'.padEnd(34)}${s(median(around))}${s(min(around))}`);
    }
  }
  for (const r of f.ready)
    lines.push(`${`${r.label} -> 200 on /healthz`.padEnd(34)}${s(median(r.wallMs))}${s(min(r.wallMs))}`);
  return [...lines, ...f.notes].join('\n');
}
