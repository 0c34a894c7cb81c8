import { schedule as cronSchedule } from 'node-cron';
import { ConfigError, loadAppConfig, loadDomainConnectKey } from './config.js';
import { installFaultHandlers } from './faults.js';
import { consoleLogger } from './log.js';
import { buildSlackApp, openRuntime, type Runtime } from './runtime.js';
import { queueDigests } from './tlsrpt/digest.js';
import { ImapWatcher } from './tlsrpt/imap.js';
import { ingestEmail } from './tlsrpt/intake.js';

/** Stops the running app (listener, monitor, database) and exits with the code; set once the app has started. */
let stopApp: ((reason: string, code: number) => Promise<void>) | null = null;

// A fault no code caught is logged and the app keeps serving; one it cannot recover from stops it cleanly (exit 1).
installFaultHandlers(consoleLogger(), (code) => {
  if (stopApp) void stopApp('a fault it cannot recover from', code);
  else process.exit(code);
});

/** npm start: settings -> store -> Slack app. A bad setting is one line naming it, and exit 2. */
async function start(): Promise<void> {
  let config: ReturnType<typeof loadAppConfig>;
  let dcKey: ReturnType<typeof loadDomainConnectKey>;
  try {
    config = loadAppConfig();
    dcKey = loadDomainConnectKey();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mtasts-bot: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = consoleLogger();
  let runtime: Runtime;
  try {
    runtime = openRuntime(config, dcKey, logger);
  } catch (err) {
    process.stderr.write(
      `mtasts-bot: cannot open DATABASE_PATH ${config.databasePath}: ${(err as Error).message}\n`,
    );
    process.exit(2);
  }
  const slack = buildSlackApp(runtime);
  const port = await slack.start();
  process.stdout.write(
    `mtasts-bot: ${config.appToken ? 'Socket Mode' : 'HTTP mode, events at /slack/events'}; HTTP on port ${port}; database ${config.databasePath}\n`,
  );
  // Alerts a crash or restart left in the outbox go out now; an interrupted pass is resumed.
  void runtime.monitor
    .deliver()
    .catch((err: unknown) => logger.error(`monitor: delivery failed: ${String(err)}`));
  if (runtime.monitorStore.hasUnfinishedPass()) void runtime.monitor.runPass()?.catch(() => {});
  runtime.monitor.schedule(config.schedule);
  // Daily TLS-RPT digests, and a regular look at the outbox for alerts queued outside a pass (report intake).
  const digest = cronSchedule(config.tlsrpt.digestSchedule, () => {
    const queued = queueDigests(
      runtime.tlsrpt,
      runtime.subscriptions,
      new Date(),
      config.tlsrpt.retentionDays,
    );
    if (queued > 0) void runtime.monitor.deliver().catch(() => {});
  });
  const tick = setInterval(() => void runtime.monitor.deliver().catch(() => {}), 60_000);
  process.stdout.write(`mtasts-bot: monitoring on schedule "${config.schedule}"\n`);
  // TLS-RPT reports from the mailbox they land in (MTASTS_TLSRPT_IMAP_URL): read now, then as they arrive.
  const imap = config.tlsrptImap
    ? new ImapWatcher({
        settings: config.tlsrptImap,
        db: runtime.db,
        ingest: (raw) => ingestEmail(raw, runtime.intake),
        now: runtime.intake.now,
        logger,
        // A day-long failure's alert (MTASTS_OPERATOR_CHANNEL) and its recovery go out at once.
        onQueued: () => void runtime.monitor.deliver().catch(() => {}),
      })
    : null;
  imap?.start();
  let stopping = false;
  stopApp = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`mtasts-bot: ${reason}, stopping\n`);
    // Whatever hangs on the way out, the process ends.
    setTimeout(() => process.exit(code), 10_000).unref();
    clearInterval(tick);
    await Promise.resolve(digest.stop()).catch(() => {});
    await runtime.monitor.stop().catch(() => {});
    await imap?.stop().catch(() => {});
    await slack.stop().catch(() => {});
    try {
      runtime.close();
    } catch {
      // A broken database cannot be closed cleanly either; exiting is what is left.
    }
    process.exit(code);
  };
  process.once('SIGTERM', () => void stopApp?.('SIGTERM', 0));
  process.once('SIGINT', () => void stopApp?.('SIGINT', 0));
}

start().catch((err: unknown) => {
  process.stderr.write(`mtasts-bot: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
