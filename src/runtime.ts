import type { AppConfig } from './config.js';
import { createEngine, type Engine, type EngineOverrides } from './engine.js';
import type { SigningKey } from './generate/domain-connect.js';
import type { HostingService } from './hosting/service.js';
import { openHostingService } from './hosting/setup.js';
import type { CertificateEventSink } from './hosting/types.js';
import type { Logger, Poster } from './monitor/deliver.js';
import { DEFAULT_DIFF_SETTINGS } from './monitor/diff.js';
import type { HostingHooks } from './monitor/hosting.js';
import { Monitor, type MonitorSettings } from './monitor/monitor.js';
import { createSlackApp, type SlackApp } from './slack/app.js';
import type { MailboxSource } from './slack/context.js';
import { slackPoster } from './slack/poster.js';
import { CheckStore } from './store/checks.js';
import { clockOffsetMs, type Db, openTarget } from './store/db.js';
import { HostingStore } from './store/hosting.js';
import { ImapStore } from './store/imap.js';
import { InstallationStoreSqlite } from './store/installations.js';
import { MonitorStore } from './store/monitor.js';
import { PassStore } from './store/passes.js';
import { SubscriptionStore } from './store/subscriptions.js';
import { TlsRptStore } from './store/tlsrpt.js';
import { type IntakeDeps, tlsrptHandler } from './tlsrpt/intake.js';
import { logPoster, routingPoster } from './webhooks/poster.js';

/** The long-lived parts shared by `npm start` and `mtasts sweep`: database, stores, engine, monitor. */
export interface Runtime {
  config: AppConfig;
  db: Db;
  engine: Engine;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  monitorStore: MonitorStore;
  tlsrpt: TlsRptStore;
  /** Multi-workspace installations (OAuth mode). */
  installations: InstallationStoreSqlite;
  monitor: Monitor;
  /** What the TLS-RPT intake (HTTPS and e-mail) works with. */
  intake: IntakeDeps;
  /** Hosted MTA-STS: the control side the Slack app and the monitor use; null while MTASTS_HOSTING_NAME is unset. */
  hosting: HostingService | null;
  /**
   * Where the certificate manager reports (issued, renewed, failed): recorded on the domain, then told to its owning
   * channels through the outbox at once (renewals silently).
   */
  certificateEvents: CertificateEventSink;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  engine?: EngineOverrides;
  poster?: Poster;
  now?: () => Date;
  monitor?: Partial<MonitorSettings>;
}

/** A host clock further than this from the PostgreSQL server's is warned about at start. */
const CLOCK_TOLERANCE_MS = 5000;

/**
 * Opens the database (PostgreSQL at DATABASE_URL, else SQLite at DATABASE_PATH), migrated, and builds the parts over
 * it. A PostgreSQL connection that fails while idle (the server restarted) is logged, never fatal: the pool opens a
 * new one for the next query.
 */
export async function openRuntime(
  config: AppConfig,
  dcKey: SigningKey | null,
  logger: Logger,
  overrides: RuntimeOverrides = {},
): Promise<Runtime> {
  const db = await openTarget(config, (err) =>
    logger.warn(`database: a pooled connection failed: ${err.message}`),
  );
  if (db.migrated.length > 0)
    logger.info(`database: applied ${db.migrated.length} migration(s), ${db.migrated.join(', ')}`);
  const offset = await clockOffsetMs(db).catch(() => null);
  if (offset !== null && Math.abs(offset) > CLOCK_TOLERANCE_MS)
    logger.warn(
      `database: this host's clock is ${Math.abs(offset / 1000).toFixed(1)} s ${offset > 0 ? 'ahead of' : 'behind'} the PostgreSQL server's; replicas share passes by leases that compare clocks: keep them within a few seconds (NTP)`,
    );
  const now = overrides.now ?? (() => new Date());
  const engine = createEngine(config.engine, dcKey, {
    ...overrides.engine,
    options: { now, ...overrides.engine?.options },
  });
  const subscriptions = new SubscriptionStore(db);
  const checks = new CheckStore(db);
  const monitorStore = new MonitorStore(db);
  const tlsrpt = new TlsRptStore(db);
  const installations = new InstallationStoreSqlite(db, now, (team) => subscriptions.resumeTeam(team));
  // Each workspace's own token in OAuth mode; the single SLACK_BOT_TOKEN otherwise (and as the fallback).
  const tokenFor = async (team: string) => (await installations.botToken(team)) ?? (config.botToken || null);
  const service = openHostingService(db, engine.deps.dns, config, now);
  const hosting = service.enabled ? service : null;
  const monitor = new Monitor({
    ...(hosting ? { hosting: hostingHooks(hosting, db, config) } : {}),
    tlsrpt,
    passes: new PassStore(db),
    engine,
    subscriptions,
    checks,
    store: monitorStore,
    poster: overrides.poster ?? alertPoster(config, tokenFor, logger),
    now,
    logger,
    settings: {
      concurrency: config.monitorConcurrency,
      pageLeaseMs: config.monitorPageLeaseMs,
      cache: {
        smtpPerAddress: config.smtpPerAddress,
        smtpConcurrency: config.smtpConcurrency,
        defaultTtlMs: 300_000,
      },
      ...overrides.monitor,
      diff: {
        ...DEFAULT_DIFF_SETTINGS,
        reminderMs: config.reminderHours * 3600_000,
        ...overrides.monitor?.diff,
      },
    },
  });
  const intake: IntakeDeps = {
    store: tlsrpt,
    subscriptions,
    settings: config.tlsrpt,
    now,
    onStored: () => {
      void monitor
        .deliver()
        .catch((err: unknown) => logger.error(`tlsrpt: delivering alerts failed: ${String(err)}`));
    },
  };
  return {
    config,
    db,
    engine,
    subscriptions,
    checks,
    monitorStore,
    tlsrpt,
    installations,
    monitor,
    intake,
    hosting,
    certificateEvents: async (event) => {
      await service.onCertificateEvent(event);
      if ((await monitor.announceHosting(false)) === 0) return;
      void monitor
        .deliver()
        .catch((err: unknown) => logger.error(`hosting: delivering alerts failed: ${String(err)}`));
    },
    close: () => db.close(),
  };
}

/** What the monitor asks of the hosting side: the service, its store's rows, the reminder interval and watch cap. */
function hostingHooks(service: HostingService, db: Db, config: AppConfig): HostingHooks {
  const store = new HostingStore(db);
  return {
    service,
    hosted: (domain) => store.get(domain),
    served: () => store.withStatus(['active', 'leaving']),
    reminderMs: config.reminderHours * 3600_000,
    maxDomainsPerTeam: config.maxDomainsPerTeam,
  };
}

/** Whether a Slack app is configured: a bot token, or OAuth installs. Without one, `npm start` serves the watch list. */
export function hasSlack(config: AppConfig): boolean {
  return config.botToken !== '' || config.oauth !== null;
}

/**
 * Where the delivery worker posts: the command line's watch list to its webhook (MTASTS_WEBHOOKS) or to the log (a
 * readable block per alert), everything else to the Slack app's channel.
 */
function alertPoster(
  config: AppConfig,
  tokenFor: (team: string) => Promise<string | null>,
  logger: Logger,
): Poster {
  return routingPoster({
    slack: hasSlack(config)
      ? slackPoster(tokenFor, config.apiUrl, { timeoutMs: config.slackTimeoutMs })
      : null,
    webhooks: config.webhooks,
    log: logPoster((block) => logger.info(block)),
    timeoutMs: config.slackTimeoutMs,
  });
}

/** The Slack app over a runtime: commands, events, health, and the TLS-RPT intake at POST /tlsrpt. */
export function buildSlackApp(runtime: Runtime): SlackApp {
  const { config } = runtime;
  return createSlackApp(
    config,
    {
      engine: runtime.engine,
      subscriptions: runtime.subscriptions,
      checks: runtime.checks,
      tlsrpt: runtime.tlsrpt,
      monitorState: runtime.monitorStore,
      installations: config.oauth ? runtime.installations : null,
      maxDomainsPerTeam: config.maxDomainsPerTeam,
      now: runtime.intake.now,
      mailbox: mailboxSource(config, runtime.db),
      hosting:
        runtime.hosting && config.hosting.name
          ? {
              service: runtime.hosting,
              name: config.hosting.name,
              maxPerWorkspace: config.hosting.maxPerWorkspace,
            }
          : null,
    },
    [{ path: '/tlsrpt', method: ['POST'], handler: tlsrptHandler(runtime.intake) }],
  );
}

/**
 * The TLS-RPT mailbox's status for the Slack app: shown to its operator only, that is to the one workspace of a single
 * SLACK_BOT_TOKEN, or with OAuth to the workspace of MTASTS_OPERATOR_CHANNEL.
 */
function mailboxSource(config: AppConfig, db: Db): MailboxSource | null {
  const s = config.tlsrptImap;
  if (!s) return null;
  const store = new ImapStore(db);
  const operatorTeam = config.operatorChannel?.team ?? null;
  return {
    account: s.account,
    folder: s.folder,
    alertAfterMs: s.alertAfterMs,
    shownTo: (team) => !config.oauth || (operatorTeam !== null && team === operatorTeam),
    status: () => store.status(s.account),
  };
}
