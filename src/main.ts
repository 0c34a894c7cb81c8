import { schedule as cronSchedule } from 'node-cron';
import { type AppConfig, ConfigError, loadAppConfig, loadDomainConnectKey, loadLogFormat } from './config.js';
import { describeFault, installFaultHandlers } from './faults.js';
import type { Serving } from './hosting/serving.js';
import { logs } from './log.js';
import { hasSlack, openRuntime, type Runtime } from './runtime.js';
import { buildService, type Service } from './service.js';
import { databaseLabel } from './store/db.js';
import { queueDigests } from './tlsrpt/digest.js';
import { ImapWatcher } from './tlsrpt/imap.js';
import { ingestEmail } from './tlsrpt/intake.js';
import { type LocalService, localService } from './webhooks/local-service.js';

/** Stops the running app (listener, monitor, database) and exits with the code; set once the app has started. */
let stopApp: ((reason: string, code: number) => Promise<void>) | null = null;
const logger = logs.logger();

// A fault no code caught is logged and the app keeps serving; one it cannot recover from stops it cleanly (exit 1).
installFaultHandlers(logger, (code) => {
  if (stopApp) void stopApp('a fault it cannot recover from', code);
  else process.exit(code);
});

/** The password in a URL, as written and decoded; none when there is none. */
function urlPasswords(url: string | null): string[] {
  const password = url ? new URL(url).password : '';
  return password ? [...new Set([password, decodeURIComponent(password)])] : [];
}

/** The settings' secrets, blanked out of every log line wherever a library or a message would show them. */
function secretsOf(config: AppConfig): (string | null)[] {
  return [
    config.botToken,
    config.appToken,
    config.signingSecret,
    config.oauth?.clientSecret ?? null,
    config.oauth?.stateSecret ?? null,
    config.service.metricsToken,
    // A webhook URL lets whoever has it post: a secret.
    ...config.webhooks.map((w) => w.url),
    // DATABASE_URL may hold a password, in the clear or percent-encoded.
    config.databaseUrl,
    ...urlPasswords(config.databaseUrl),
    config.tlsrptImap && 'password' in config.tlsrptImap.auth
      ? config.tlsrptImap.auth.password.reveal()
      : null,
  ];
}

/**
 * The settings, or one line naming the bad one and exit 2. With no Slack setting at all, the app runs without Slack
 * (the watch list's alerts go to the log and webhooks); with some, they are checked as the Slack app needs them.
 */
function settings(): { config: AppConfig; dcKey: ReturnType<typeof loadDomainConnectKey> } {
  try {
    logs.configure({ format: loadLogFormat() });
    const local = loadAppConfig(undefined, 'ingest');
    const slackless = !hasSlack(local) && !local.appToken && !local.signingSecret;
    const config = slackless ? local : loadAppConfig();
    logs.configure({ secrets: secretsOf(config) });
    return { config, dcKey: loadDomainConnectKey() };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mtasts-bot: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** npm start: settings -> store -> Slack app -> scheduler. A bad setting is one line naming it, and exit 2. */
async function start(): Promise<void> {
  const { config, dcKey } = settings();
  let runtime: Runtime;
  try {
    runtime = await openRuntime(config, dcKey, logger);
  } catch (err) {
    process.stderr.write(`mtasts-bot: cannot open ${databaseLabel(config)}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const service = hasSlack(config)
    ? buildService(runtime, { logs, onFatal: (why) => void stopApp?.(why, 1) })
    : localService({
        db: runtime.db,
        databasePath: config.databasePath,
        port: config.port,
        http: config.http,
        intake: runtime.intake,
        log: (m) => logger.warn(m),
      });
  let port: number;
  try {
    port = await service.start();
  } catch (err) {
    logger.error(`mtasts-bot: could not start: ${describeFault(err)}`);
    await service.stop().catch(() => {});
    await runtime.close().catch(() => {});
    process.exit(1);
  }
  const serving = await startHosting(runtime, service);
  // The background work starts below; a signal from here on (as soon as the port is announced) stops cleanly.
  let work: Promise<() => Promise<void>> | null = null;
  let stopping = false;
  stopApp = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    logger.info(`mtasts-bot: ${reason}, stopping`);
    // Whatever hangs on the way out, the process ends: not cleanly, so not with 0.
    setTimeout(() => {
      logger.error(`mtasts-bot: not stopped within ${config.service.shutdownTimeoutMs} ms; exiting`);
      process.exit(code || 1);
    }, config.service.shutdownTimeoutMs).unref();
    // No new work (Slack's socket and the listener close), running checks aborted, the post under way recorded.
    await Promise.all([
      service.stop().catch((err: unknown) => logger.error(`stopping the listener: ${describeFault(err)}`)),
      stopHosting(serving),
    ]);
    // Work that failed to start has nothing to stop (its failure is reported where it is awaited).
    if (work) await (await work.catch(() => async () => {}))();
    try {
      await runtime.close();
    } catch {
      // A broken database cannot be closed cleanly either; exiting is what is left.
    }
    logger.info(`mtasts-bot: stopped (exit ${code})`);
    process.exit(code);
  };
  process.once('SIGTERM', () => void stopApp?.('SIGTERM', 0));
  process.once('SIGINT', () => void stopApp?.('SIGINT', 0));
  logger.info(
    `mtasts-bot: ${!hasSlack(config) ? 'no Slack app' : config.appToken ? 'Socket Mode' : 'HTTP mode, events at /slack/events'}; HTTP on port ${port}; database ${databaseLabel(config)}`,
  );
  if (!hasSlack(config)) {
    logger.info(
      'mtasts-bot: no Slack app configured: monitoring the watch list (npx mtasts watch add example.com), alerts to the log or MTASTS_WEBHOOKS; to connect Slack set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN), see the README',
    );
  }
  work = startWork(runtime, service);
  await work;
}

/** How long a stop waits for an ACME order under way; past it the order is left (its lease lapses, a later pass redoes it). */
const HOSTING_STOP_WAIT_MS = 3000;

/**
 * Hosted MTA-STS, when MTASTS_HOSTING_NAME is set: the policy listener (MTASTS_HOSTING_LISTEN), the http-01 listener
 * where set, and the certificate manager. A listener that cannot be opened stops the app with exit 1: hosting was asked
 * for, and enrolled domains would otherwise go unserved without a word.
 */
async function startHosting(runtime: Runtime, service: Service | LocalService): Promise<Serving | null> {
  if (!runtime.hosting) return null;
  const { serving } = runtime.config;
  try {
    // Loaded only when hosting is on: the ACME client and its X.509 stack cost about half a second at start.
    const { startServing } = await import('./hosting/serving.js');
    const started = await startServing(serving, {
      db: runtime.db,
      policies: runtime.hosting,
      onEvent: runtime.certificateEvents,
      log: (line) => logger.warn(line),
      ...('metrics' in service ? { metrics: service.metrics } : {}),
    });
    logger.info(
      `hosting: serving policies for ${runtime.config.hosting.name} on ${serving.listen.host}:${started.port}${started.httpPort !== null ? `, http-01 on port ${started.httpPort}` : ''}; ACME directory ${serving.acmeDirectory}`,
    );
    return started;
  } catch (err) {
    const where = serving.httpListen
      ? `MTASTS_HOSTING_LISTEN ${serving.listen.host}:${serving.listen.port} or MTASTS_HOSTING_HTTP_LISTEN ${serving.httpListen.host}:${serving.httpListen.port}`
      : `MTASTS_HOSTING_LISTEN ${serving.listen.host}:${serving.listen.port}`;
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'EACCES'
        ? ' (ports under 1024 need root or CAP_NET_BIND_SERVICE; see the README, Hosted MTA-STS)'
        : code === 'EADDRINUSE'
          ? ' (another program listens there)'
          : '';
    logger.error(`mtasts-bot: hosting: cannot listen on ${where}: ${code ?? (err as Error).message}${hint}`);
    await service.stop().catch(() => {});
    await runtime.close().catch(() => {});
    process.exit(1);
  }
}

async function stopHosting(serving: Serving | null): Promise<void> {
  if (!serving) return;
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, HOSTING_STOP_WAIT_MS);
  });
  await Promise.race([
    serving.stop(1000).catch((err: unknown) => logger.error(`hosting: stopping: ${describeFault(err)}`)),
    waited,
  ]);
  clearTimeout(timer);
}

/**
 * The app's background work: the outbox delivered now (alerts a crash or restart left) and every minute, an interrupted
 * pass resumed, passes on schedule, daily TLS-RPT digests, the IMAP reader. Returns what stops all of it.
 */
async function startWork(runtime: Runtime, service: Pick<Service, 'health'>): Promise<() => Promise<void>> {
  const { config } = runtime;
  void runtime.monitor
    .deliver()
    .catch((err: unknown) => logger.error(`monitor: delivery failed: ${String(err)}`));
  const unfinished = await service.health
    .passProgress()
    .then((p) => p.unfinishedSince)
    .catch(() => null);
  if (unfinished) {
    logger.info(`monitor: resuming the pass started at ${unfinished}`);
    void runtime.monitor.runLogged(null, true); // joined only: if it ended meanwhile, no pass off schedule
  }
  runtime.monitor.schedule(config.schedule);
  // Daily TLS-RPT digests, and a regular look at the outbox for alerts queued outside a pass (report intake).
  const digest = cronSchedule(config.tlsrpt.digestSchedule, async () => {
    try {
      const queued = await queueDigests(
        runtime.tlsrpt,
        runtime.subscriptions,
        new Date(),
        config.tlsrpt.retentionDays,
      );
      if (queued > 0) void runtime.monitor.deliver().catch(() => {});
    } catch (err) {
      logger.error(`tlsrpt: the daily digests failed: ${describeFault(err)}`);
    }
  });
  const tick = setInterval(() => void runtime.monitor.deliver().catch(() => {}), 60_000);
  logger.info(`mtasts-bot: monitoring on schedule "${config.schedule}"`);
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
  return async () => {
    clearInterval(tick);
    await Promise.resolve(digest.stop()).catch(() => {});
    await runtime.monitor.stop().catch((err: unknown) => logger.error(`monitor: ${describeFault(err)}`));
    await imap?.stop().catch(() => {});
  };
}

start().catch((err: unknown) => {
  process.stderr.write(`mtasts-bot: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
