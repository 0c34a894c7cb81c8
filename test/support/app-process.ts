import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** npm start's own process: dist/main.js, built by `npm test` (and `npm install`). */
export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface AppProcess {
  child: ChildProcess;
  /** Everything it wrote, standard output and error together. */
  output: () => string;
  exited: Promise<number>;
  /** Resolves to the HTTP port once the app says it listens; fails if it exits first or after `ms`. */
  port: (ms?: number) => Promise<number>;
  /** Resolves once the output holds `text` (or matches); fails with the output after `ms`. */
  logged: (text: string | RegExp, ms?: number) => Promise<void>;
  get: (path: string, headers?: Record<string, string>) => Promise<Response>;
}

/**
 * Starts the app with only the given environment (and PATH). With `hostname`, in a UTS namespace of its own under that
 * host name (root only), so that it stands for a replica on another machine; the process is the app's own (exec), so
 * its pid is the app's.
 */
export function startApp(env: Record<string, string>, options: { hostname?: string } = {}): AppProcess {
  let output = '';
  const [command, args] = options.hostname
    ? [
        'unshare',
        [
          '--uts',
          '--',
          'sh',
          '-c',
          'hostname "$0" && exec "$1" "$2"',
          options.hostname,
          process.execPath,
          MAIN,
        ],
      ]
    : [process.execPath, [MAIN]];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  let code: number | null = null;
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (c) => {
      code = c ?? -1;
      resolve(code);
    }),
  );
  const logged = async (text: string | RegExp, ms = 15000) => {
    const start = Date.now();
    const has = () => (typeof text === 'string' ? output.includes(text) : text.test(output));
    while (!has()) {
      if (Date.now() - start > ms) throw new Error(`not logged in time: ${String(text)}\n${output}`);
      if (code !== null && !has()) throw new Error(`the app exited (${code}) first:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let port = 0;
  const portOf = async (ms = 15000) => {
    if (port) return port;
    await logged(/HTTP on port \d+/, ms);
    port = Number(/HTTP on port (\d+)/.exec(output)?.[1]);
    return port;
  };
  const get = async (path: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${await portOf()}${path}`, { headers });
  return { child, output: () => output, exited, port: portOf, logged, get };
}

/** Polls `check` until it holds; fails after `ms` with `what`. */
export async function eventually(check: () => Promise<boolean>, what: string, ms = 15000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`not in time: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
