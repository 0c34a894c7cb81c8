import { createInterface } from 'node:readline';
import { createEngine } from '../../src/engine.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { loadEngineConfig } from '../../src/settings.js';
import { CheckStore } from '../../src/store/checks.js';
import { openDatabase } from '../../src/store/db.js';
import { MonitorStore } from '../../src/store/monitor.js';
import { PassStore } from '../../src/store/passes.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';

/**
 * One process of the app's monitor on a SQLite file, as npm start builds it (store/, engine, Monitor) minus Slack: run
 * by passes-processes.test.ts, several at once on one file. Arguments: the database file, the DNS server the checks
 * ask (a loopback peer of the test), the pass's slot, the page size. It opens the database, says "ready", waits for
 * "go" on stdin (so that every process begins the pass together), runs one pass, and prints its summary as one JSON
 * line: { summary, logs, posts }. Whatever goes wrong is written to stderr and ends it with exit code 1.
 */
const [dbPath, dnsServer, slot, pageSize] = process.argv.slice(2);
if (!dbPath || !dnsServer || !slot || !pageSize) {
  process.stderr.write('usage: pass-worker.ts <database file> <dns ip:port> <slot> <page size>\n');
  process.exit(2);
}

const logs: string[] = [];
let posts = 0;
const db = openDatabase(dbPath);
const engine = createEngine(
  loadEngineConfig({
    MTASTS_DNS_SERVERS: dnsServer,
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    MTASTS_TIMEOUT_MS: '5000',
    MTASTS_EHLO_NAME: 'checker.test',
  }),
  null,
);
const monitor = new Monitor({
  engine,
  passes: new PassStore(db),
  subscriptions: new SubscriptionStore(db),
  checks: new CheckStore(db),
  store: new MonitorStore(db),
  poster: {
    post: async () => {
      posts++;
      return { ok: true, ts: `${process.pid}.${posts}` };
    },
  },
  now: () => new Date(),
  logger: {
    info: (m) => logs.push(`info ${m}`),
    warn: (m) => logs.push(`warn ${m}`),
    error: (m) => logs.push(`error ${m}`),
  },
  settings: { pageSize: Number(pageSize) },
});

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('ready\n');
  for await (const line of lines) if (line.trim() === 'go') break;
  lines.close();
  const summary = await monitor.runPass(slot);
  await monitor.stop();
  await db.close();
  process.stdout.write(`${JSON.stringify({ summary, logs, posts })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`pass-worker ${process.pid}: ${String(err)}\n`);
  process.exitCode = 1;
});
