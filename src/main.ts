import { ConfigError, loadAppConfig, loadDomainConnectKey } from './config.js';
import { consoleLogger } from './log.js';
import { openRuntime, type Runtime } from './runtime.js';
import { createSlackApp } from './slack/app.js';

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
  const slack = createSlackApp(config, {
    engine: runtime.engine,
    subscriptions: runtime.subscriptions,
    checks: runtime.checks,
    maxDomainsPerTeam: config.maxDomainsPerTeam,
    now: () => new Date(),
  });
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
  process.stdout.write(`mtasts-bot: monitoring on schedule "${config.schedule}"\n`);
  const shutdown = async (signal: string) => {
    process.stdout.write(`mtasts-bot: ${signal}, stopping\n`);
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
