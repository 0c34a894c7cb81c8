import type { AppConfig } from './config.js';
import { createEngine, type Engine, type EngineOverrides } from './engine.js';
import type { SigningKey } from './generate/domain-connect.js';
import type { Logger, Poster } from './monitor/deliver.js';
import { Monitor, type MonitorSettings } from './monitor/monitor.js';
import { slackPoster } from './slack/poster.js';
import { CheckStore } from './store/checks.js';
import { type Db, openDatabase } from './store/db.js';
import { MonitorStore } from './store/monitor.js';
import { SubscriptionStore } from './store/subscriptions.js';

/** The long-lived parts shared by `npm start` and `mtasts sweep`: database, stores, engine, monitor. */
export interface Runtime {
  db: Db;
  engine: Engine;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  monitorStore: MonitorStore;
  monitor: Monitor;
  close(): void;
}

export interface RuntimeOverrides {
  engine?: EngineOverrides;
  poster?: Poster;
  now?: () => Date;
  monitor?: Partial<MonitorSettings>;
}

export function openRuntime(
  config: AppConfig,
  dcKey: SigningKey | null,
  logger: Logger,
  overrides: RuntimeOverrides = {},
): Runtime {
  const db = openDatabase(config.databasePath);
  const now = overrides.now ?? (() => new Date());
  const engine = createEngine(config.engine, dcKey, {
    ...overrides.engine,
    options: { now, ...overrides.engine?.options },
  });
  const subscriptions = new SubscriptionStore(db);
  const checks = new CheckStore(db);
  const monitorStore = new MonitorStore(db);
  const monitor = new Monitor({
    engine,
    subscriptions,
    checks,
    store: monitorStore,
    poster: overrides.poster ?? slackPoster(config.botToken, config.apiUrl),
    now,
    logger,
    settings: {
      concurrency: config.monitorConcurrency,
      ...overrides.monitor,
      diff: {
        debouncePasses: 2,
        reminderMs: config.reminderHours * 3600_000,
        readyAfterMs: 14 * 86_400_000,
        ...overrides.monitor?.diff,
      },
    },
  });
  return { db, engine, subscriptions, checks, monitorStore, monitor, close: () => db.close() };
}
