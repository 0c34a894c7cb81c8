import { schedule as cronSchedule } from 'node-cron';
import { ConfigError, loadAppConfig, loadDomainConnectKey } from './config.js';
import { consoleLogger } from './log.js';
import { buildSlackApp, openRuntime, type Runtime } from './runtime.js';
import { queueDigests } from './tlsrpt/digest.js';

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
  const shutdown = async (signal: string) => {
    process.stdout.write(`mtasts-bot: ${signal}, stopping\n`);
    clearInterval(tick);
    await digest.stop();
    await runtime.monitor.stop().catch(() => {});
    await slack.stop().catch(() => {});
    runtime.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

start().catch((err: unknown) => {
  process.stderr.write(`mtasts-bot: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
