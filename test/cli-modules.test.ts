import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from './support/lab.js';

// What each CLI command loads, seen by a module resolve hook in the real `bin/mtasts.js` process: a one-off command
// loads only what it needs, so that it starts about as fast as Node itself (issue 14; the figures are in the bench).

const BIN = fileURLToPath(new URL('../bin/mtasts.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mtasts-modules-'));
const HOOK = join(dir, 'hook.mjs');
writeFileSync(
  HOOK,
  `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.MTASTS_TEST_MODULE_LOG, resolved.url + '\\\\n');
  return resolved;
}\`));
`,
);

/** The packages every one-off command must do without, and those only the app and its stores need. */
const APP_ONLY = [
  '@slack/bolt',
  'better-sqlite3',
  'mailparser',
  'imapflow',
  'prom-client',
  'acme-client',
  'pg',
];
const SETTINGS = ['zod', 'node-cron'];

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.start();
  await lab.domain('good.test');
});
afterAll(() => lab.stop());

let runs = 0;
/** Runs the binary with the hook; returns the exit code and the packages (node_modules names) it resolved. */
function packagesLoaded(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; pkgs: string[] }> {
  const log = join(dir, `modules-${runs++}.log`);
  writeFileSync(log, '');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(HOOK).href, BIN, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          MTASTS_TEST_MODULE_LOG: log,
          DATABASE_PATH: join(dir, 'none.db'),
          ...env,
        },
        timeout: 30000,
      },
      (error) => {
        const urls = readFileSync(log, 'utf8').split('\n');
        const pkgs = new Set(
          urls.flatMap((u) => {
            const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
            return m?.[1] ? [m[1]] : [];
          }),
        );
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, pkgs: [...pkgs].sort() });
      },
    );
  });
}

describe('what a one-off command loads', () => {
  test('the hook sees packages at all (the app loads Bolt and SQLite through the same hook)', async () => {
    const { pkgs } = await packagesLoaded(['sweep'], {
      SLACK_BOT_TOKEN: 'xoxb-1',
      DATABASE_PATH: join(dir, 'sweep.db'),
    });
    expect(pkgs).toEqual(expect.arrayContaining(['better-sqlite3', 'zod']));
    expect(pkgs, 'the PostgreSQL driver loads only with DATABASE_URL').not.toContain('pg');
  });

  test('help loads no package at all', async () => {
    const { code, pkgs } = await packagesLoaded(['help']);
    expect(code).toBe(0);
    expect(pkgs).toEqual([]);
  });

  test('check runs a whole check without the app, its stores or its settings schema', async () => {
    const { code, pkgs } = await packagesLoaded(['check', 'good.test', '--json'], {
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
      MTASTS_TIMEOUT_MS: '2000',
    });
    // The policy host answers on the lab's port, not 443, so the check fails: it ran to its end all the same.
    expect(code).toBe(1);
    for (const p of [...APP_ONLY, ...SETTINGS]) expect(pkgs, p).not.toContain(p);
  });

  test('a bad setting in check is reported without the settings schema too', async () => {
    const { code, pkgs } = await packagesLoaded(['check', 'good.test'], { MTASTS_TIMEOUT_MS: 'soon' });
    expect(code).toBe(2);
    for (const p of SETTINGS) expect(pkgs, p).not.toContain(p);
  });

  test('records without a database loads neither Slack nor SQLite', async () => {
    const { code, pkgs } = await packagesLoaded(['records', 'good.test', '--json'], {
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
      MTASTS_TIMEOUT_MS: '2000',
    });
    expect(code).toBe(0);
    for (const p of APP_ONLY) expect(pkgs, p).not.toContain(p);
  });

  test('npm start without hosting loads neither the ACME client nor the PostgreSQL driver', async () => {
    const log = join(dir, 'modules-main.log');
    writeFileSync(log, '');
    const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const child = spawn(process.execPath, ['--import', pathToFileURL(HOOK).href, main], {
      env: {
        PATH: process.env.PATH ?? '',
        MTASTS_TEST_MODULE_LOG: log,
        PORT: '0',
        DATABASE_PATH: join(dir, 'main.db'),
        MTASTS_SCHEDULE: '0 0 1 1 *',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        if (/monitoring on schedule/.test(output)) resolve(); // logged in the tick that installs the signal handlers
      };
      child.stdout.on('data', seen);
      child.stderr.on('data', seen);
      void exited.then(() => reject(new Error(`the app exited before listening:\n${output}`)));
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const urls = readFileSync(log, 'utf8');
    expect(urls).toContain('/node_modules/better-sqlite3/');
    expect(urls).not.toContain('/node_modules/acme-client/');
    expect(urls).not.toContain('/node_modules/pg/');
  });
});
