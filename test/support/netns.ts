import { type ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PeerCounts, PeerPlan } from './netns-peers.js';

/**
 * A Linux network namespace made by a test: its own loopback interface, carrying whatever addresses the test gives it
 * (public ones included), and no route anywhere else. What runs inside can reach only those addresses, so a check
 * there can run with the production settings against peers on public addresses, and nothing leaves the machine.
 */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Why no namespace can be made here (not root, no `ip`, `ip netns add` refused), or null when one can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'pipe' });
  } catch {
    return 'the ip command (iproute2) is not installed';
  }
  const probe = `mtasts-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    return `"ip netns add" failed (${stderr || (err as Error).message})`;
  }
  execFileSync('ip', ['netns', 'delete', probe], { stdio: 'pipe' });
  return null;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Netns {
  private readonly onExit = () => this.deleteNow();
  private deleted = false;

  private constructor(readonly name: string) {
    // Deleted when the test process ends, whatever way it ends.
    process.once('exit', this.onExit);
  }

  /** A namespace of a unique name, its `lo` up and carrying `addresses`. */
  static create(addresses: readonly string[]): Netns {
    const ns = new Netns(`mtasts-e2e-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      ip('netns', 'add', ns.name);
      ip('-n', ns.name, 'link', 'set', 'lo', 'up');
      for (const a of addresses) {
        if (isIPv6(a)) ip('-n', ns.name, 'address', 'add', `${a}/128`, 'dev', 'lo', 'nodad');
        else ip('-n', ns.name, 'address', 'add', `${a}/32`, 'dev', 'lo');
      }
    } catch (err) {
      ns.deleteNow();
      throw err;
    }
    return ns;
  }

  /** Runs a command inside the namespace with exactly `env` (and PATH), from the project folder. */
  run(command: string[], env: Record<string, string>, timeoutMs = 60000): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', this.name, ...command],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs },
        (error, stdout, stderr) => {
          const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
          resolve({ code: Number.isNaN(code) ? 1 : code, stdout, stderr });
        },
      );
    });
  }

  /** Starts test/support/netns-peers.ts inside the namespace with `plan`; resolves once every peer listens. */
  async startPeers(plan: PeerPlan): Promise<Peers> {
    const child = spawn(
      'ip',
      ['netns', 'exec', this.name, process.execPath, '--import', 'tsx', 'test/support/netns-peers.ts'],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const peers = new Peers(child);
    child.stdin.write(`${JSON.stringify(plan)}\n`);
    const ready = (await peers.next()) as { rootPem?: string; error?: string };
    if (!ready.rootPem) {
      await peers.stop();
      throw new Error(`the namespace's peers did not start: ${ready.error ?? peers.stderr}`);
    }
    peers.rootPem = ready.rootPem;
    return peers;
  }

  delete(): void {
    this.deleteNow();
  }

  private deleteNow(): void {
    if (this.deleted) return;
    this.deleted = true;
    process.off('exit', this.onExit);
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'pipe' });
    } catch {
      // Already gone.
    }
  }
}

/** The peer process inside a namespace. */
export class Peers {
  rootPem = '';
  stderr = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: child.stdout }).on('line', (line) => this.deliver(line));
    child.on('exit', () => {
      this.closed = true;
      this.deliver(null);
    });
  }

  /** Connections and requests each peer has seen, keyed by "address port". */
  async counts(): Promise<PeerCounts> {
    this.child.stdin.write('counts\n');
    return (await this.next()) as PeerCounts;
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end('stop\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
  }

  async next(): Promise<unknown> {
    const line =
      this.lines.shift() ?? (await new Promise<string | null>((resolve) => (this.waiting = resolve)));
    if (line === null) throw new Error(`the namespace's peers exited: ${this.stderr.trim()}`);
    return JSON.parse(line);
  }

  private deliver(line: string | null): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) waiting(line);
    else if (line !== null) this.lines.push(line);
  }
}

/** Builds dist/ (what bin/mtasts.js runs) when it is missing or older than a source file; `npm test` builds first. */
export function buildIfStale(): void {
  const cli = join(ROOT, 'dist', 'cli.js');
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  if (newest(join(ROOT, 'src')) <= built) return;
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: 'pipe',
      },
    );
  } catch (err) {
    // Type errors still emit JavaScript; only a missing dist/cli.js is fatal.
    if (!existsSync(cli)) throw err;
  }
}

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}
