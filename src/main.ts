import { ConfigError, loadAppConfig, loadDomainConnectKey } from './config.js';
import { createEngine } from './engine.js';
import { createSlackApp } from './slack/app.js';
import { CheckStore } from './store/checks.js';
import { openDatabase } from './store/db.js';
import { SubscriptionStore } from './store/subscriptions.js';

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
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(config.databasePath);
  } catch (err) {
    process.stderr.write(
      `mtasts-bot: cannot open DATABASE_PATH ${config.databasePath}: ${(err as Error).message}\n`,
    );
    process.exit(2);
  }
  const engine = createEngine(config.engine, dcKey);
  const slack = createSlackApp(config, {
    engine,
    subscriptions: new SubscriptionStore(db),
    checks: new CheckStore(db),
    maxDomainsPerTeam: config.maxDomainsPerTeam,
    now: () => new Date(),
  });
  const port = await slack.start();
  process.stdout.write(
    `mtasts-bot: ${config.appToken ? 'Socket Mode' : 'HTTP mode, events at /slack/events'}; HTTP on port ${port}; database ${config.databasePath}\n`,
  );
  const shutdown = async (signal: string) => {
    process.stdout.write(`mtasts-bot: ${signal}, stopping\n`);
    await slack.stop().catch(() => {});
    db.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

start().catch((err: unknown) => {
  process.stderr.write(`mtasts-bot: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
