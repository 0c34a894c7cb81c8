import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster from Debian's packages, for the tests: initdb in a temporary folder owned by the
 * `postgres` system user (initdb and postgres refuse to run as root), the server on 127.0.0.1 at a free port and on a
 * Unix socket in that folder, stopped and removed at the end of the run. Nothing listens beyond loopback.
 */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Why PostgreSQL cannot be used here, or null when it can. */
export function postgresMissing(): string | null {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `PostgreSQL 15 is not installed (${PG_BIN}/initdb)`;
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'there is no postgres system user to run the server as';
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const asPostgres = (cmd: string, args: string[]) => ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args];

export interface TestCluster {
  port: number;
  dir: string;
  /** A URL for one database of the cluster (the user is the superuser postgres, trusted on loopback). */
  url(database: string): string;
  /** Stops the server (ending every connection) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** initdb and start; resolves once the server accepts connections. */
export async function startCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-pg-'));
  chownSync(
    dir,
    Number(execFileSync('id', ['-u', 'postgres'])),
    Number(execFileSync('id', ['-g', 'postgres'])),
  );
  const data = join(dir, 'data');
  execFileSync(
    'runuser',
    asPostgres('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '--no-locale',
      '-E',
      'UTF8',
      '--no-sync',
    ]),
    { stdio: 'ignore' },
  );
  const port = await freePort();
  let server = await serve(data, dir, port);
  return {
    port,
    dir,
    url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart() {
      await halt(server, data);
      server = await serve(data, dir, port);
    },
    async stop() {
      await halt(server, data);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** pg_ctl's fast shutdown (connections are ended), as the server's user: runuser does not pass signals on. */
async function halt(server: ChildProcess, data: string): Promise<void> {
  if (server.exitCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  execFileSync('runuser', asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']), {
    stdio: 'ignore',
  });
  await exited;
}

/** Starts the server on `data`; resolves once it accepts connections. */
async function serve(data: string, dir: string, port: number): Promise<ChildProcess> {
  const server = spawn(
    'runuser',
    asPostgres('postgres', [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      '-c',
      'max_connections=300',
    ]),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  for (let i = 0; ; i++) {
    try {
      execFileSync(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
      return server;
    } catch {
      if (i > 200 || server.exitCode !== null) throw new Error(`PostgreSQL did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * A database of its own for `key` (a test's DATABASE_PATH, say), created on first use through psql: synchronous, so
 * that a test's settings can name it where it names a SQLite file. The same key gives the same database.
 */
export function databaseFor(clusterPort: number, key: string): string {
  const name = `t_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
  const psql = (sql: string) =>
    execFileSync(
      join(PG_BIN, 'psql'),
      ['-h', '127.0.0.1', '-p', String(clusterPort), '-U', 'postgres', '-tAq', '-c', sql],
      { encoding: 'utf8' },
    );
  if (psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`).trim() !== '1')
    psql(`CREATE DATABASE ${name}`);
  return `postgres://postgres@127.0.0.1:${clusterPort}/${name}`;
}
