import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Process figures, next to `node -e 0`: what a user waits for before a command answers or the app serves. Each command
 * runs `runs` times in a fresh process; its wall time is measured from here, its CPU time (user+sys) and peak RSS by
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

function measure(label: string, args: string[], env: Record<string, string>, dir: string, runs: number) {
  const run: ProcessRun = { label, wallMs: [], cpuMs: [], rssMb: [] };
  for (let i = 0; i < runs; i++) {
    const r = runOnce(args, env, dir);
    run.wallMs.push(r.wallMs);
    run.cpuMs.push(r.cpuMs);
    run.rssMb.push(r.rssMb);
    if (label.startsWith('mtasts check')) {
      const report = JSON.parse(r.stdout) as { status: string; durationMs: number };
      if (report.status !== 'pass') throw new Error(`the checked domain is not healthy: ${r.stdout}`);
      run.checkMs = [...(run.checkMs ?? []), report.durationMs];
    }
  }
  return run;
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
export async function processFigures(delay: number, runs = 5): Promise<ProcessFigures> {
  const build = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  if (build.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${build.stdout}`);
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-bench-process-'));
  writeFileSync(join(dir, 'preload.cjs'), PRELOAD);
  const notes: string[] = [];
  const { peers, child } = await startPeers(delay);
  try {
    const out: ProcessRun[] = [
      measure('node -e 0', ['-e', '0'], {}, dir, runs),
      measure('mtasts --version', [BIN, '--version'], {}, dir, runs),
      measure('mtasts help', [BIN, 'help'], {}, dir, runs),
    ];
    if (peers.realPorts && 'domain' in peers.realPorts) {
      writeFileSync(join(dir, 'ca.pem'), peers.caPem);
      const env = {
        MTASTS_DNS_SERVERS: peers.dns,
        MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
        NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
      };
      out.push(
        measure('mtasts check --json', [BIN, 'check', peers.realPorts.domain, '--json'], env, dir, runs),
      );
    } else {
      notes.push(`mtasts check not measured: ports 443 and 25 (${peers.realPorts?.error ?? 'no answer'})`);
    }
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
const s = (ms: number) => (ms / 1000).toFixed(2);

/** The figures as a table, medians of the runs, each row also against `node -e 0`. */
export function printProcessFigures(f: ProcessFigures): string {
  const base = f.runs[0];
  const lines = [
    `process figures (median of ${base?.wallMs.length ?? 0} runs; CPU is user+sys of the process itself)`,
    `${''.padEnd(30)}${'wall s'.padStart(8)}${'CPU s'.padStart(8)}${'RSS MB'.padStart(8)}${'wall - node -e 0'.padStart(18)}`,
  ];
  for (const r of f.runs) {
    const wall = median(r.wallMs);
    lines.push(
      `${r.label.padEnd(30)}${s(wall).padStart(8)}${s(median(r.cpuMs)).padStart(8)}${median(r.rssMb).toFixed(0).padStart(8)}${s(wall - median(base?.wallMs ?? [0])).padStart(18)}`,
    );
    if (r.checkMs) {
      const own = median(r.checkMs);
      lines.push(
        `${'  of which the check itself'.padEnd(30)}${s(own).padStart(8)}${''.padStart(16)}${`process cost ${s(wall - own)}`.padStart(18)}`,
      );
    }
  }
  for (const r of f.ready)
    lines.push(`${`${r.label} -> 200 on /healthz`.padEnd(30)}${s(median(r.wallMs)).padStart(8)}`);
  return [...lines, ...f.notes].join('\n');
}
