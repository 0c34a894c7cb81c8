import type { IncomingMessage, ServerResponse } from 'node:http';
import { webApi } from '@slack/bolt';
import { describeFault, isFatal } from './faults.js';
import type { LogSink } from './log.js';
import { AppMetrics, instrumentEngine } from './metrics.js';
import type { PostResult } from './monitor/deliver.js';
import { buildSlackApp, type Runtime } from './runtime.js';
import type { SlackApp } from './slack/app.js';
import type { HttpRoute } from './slack/receiver.js';
import { isBusy } from './store/busy.js';
import { HealthStore } from './store/health.js';
import { SELF } from './store/locks.js';

/** What GET /readyz answers (200 when `ready`, else 503). */
export interface Readiness {
  ready: boolean;
  mode: 'socket' | 'http';
  database: { ok: boolean; error?: string };
  /**
   * Socket Mode: the WebSocket (`state` connected or down); HTTP mode: `state` reachable (Slack answered the last
   * probe, perhaps with an error) or unreachable. `api`: that probe (auth.test with SLACK_BOT_TOKEN, else api.test).
   */
  slack: {
    ok: boolean;
    state: string;
    since?: string;
    error?: string;
    retryAt?: string;
    api: { ok: boolean; checkedAt: string; error?: string };
  };
  monitor: {
    lastPassAt: string | null;
    unfinishedPassSince: string | null;
    /** The processes working on a page of the running pass (host:pid). */
    workers: string[];
  } | null;
  outbox: { pending: number; oldestAgeSeconds: number } | null;
}

/** The app as a service: the Slack app over the runtime, with readiness, metrics and a watch on its own health. */
export interface Service {
  slack: SlackApp;
  metrics: AppMetrics;
  health: HealthStore;
  readiness(): Promise<Readiness>;
  /** Listens on PORT, connects to Slack (Socket Mode), starts the health watch; resolves to the port. */
  start(): Promise<number>;
  /** Stops the health watch, Slack's socket and the listener (the runtime is closed by the caller). */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  logs: LogSink;
  /** The app cannot go on (its database file is gone): stop it, with exit code 1. Called once. */
  onFatal: (why: string) => void;
}

/** What Slack's Web API last said to the probe: ok, an error it answered (`answered`), or no answer at all. */
interface ProbeResult {
  ok: boolean;
  answered: boolean;
  at: number;
  error?: string;
}

/**
 * Slack's Web API, asked every health interval: auth.test with SLACK_BOT_TOKEN (Slack answers, and accepts the token),
 * or api.test when there is no single bot token (OAuth: Slack answers). Readiness reads the last answer and never
 * waits for one, but the very first.
 */
class SlackProbe {
  private last: ProbeResult | null = null;
  private pending: Promise<void> | null = null;
  private readonly client: webApi.WebClient;

  constructor(
    options: webApi.WebClientOptions,
    private readonly token: string | null,
    private readonly freshMs: number,
  ) {
    this.client = new webApi.WebClient(undefined, {
      ...options,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logLevel: webApi.LogLevel.ERROR,
    });
  }

  get up(): boolean | null {
    return this.last ? this.last.ok : null;
  }

  async current(): Promise<ProbeResult> {
    if (!this.last) await this.refresh();
    else if (Date.now() - this.last.at >= this.freshMs) void this.refresh();
    return this.last ?? { ok: false, answered: false, at: Date.now(), error: 'not probed' };
  }

  refresh(): Promise<void> {
    const call = this.token
      ? this.client.apiCall('auth.test', { token: this.token })
      : this.client.apiCall('api.test');
    this.pending ??= call
      .then(
        () => {
          this.last = { ok: true, answered: true, at: Date.now() };
        },
        (err: unknown) => {
          const answered = (err as { code?: string }).code === webApi.ErrorCode.PlatformError;
          this.last = { ok: false, answered, at: Date.now(), error: this.explain(err) };
        },
      )
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  private explain(err: unknown): string {
    const e = err as { code?: string; data?: { error?: string }; statusCode?: number; original?: Error };
    const code = e.data?.error;
    if (code && this.token && /^(invalid_auth|not_authed|token_revoked|account_inactive)$/.test(code))
      return `Slack refused SLACK_BOT_TOKEN (${code})`;
    if (code) return `Slack answered ${code}`;
    if (e.code === webApi.ErrorCode.HTTPError) return `Slack answered HTTP ${e.statusCode}`;
    return `no answer from Slack: ${e.original?.message ?? (err as Error)?.message ?? String(err)}`;
  }
}

/**
 * The database's state for /readyz: it takes writes, and its file is still the one opened. `fatal` when what it threw
 * leaves the app unable to serve (see faults.ts: corrupt, no disk, closed).
 */
async function databaseState(health: HealthStore): Promise<Readiness['database'] & { fatal?: true }> {
  const file = health.fileCheck();
  if (!file.ok) return { ok: false, error: `the database file was ${file.reason} while open` };
  try {
    await health.probeWrite();
    return { ok: true };
  } catch (err) {
    return {
      ok: false,
      error: isBusy(err) ? 'busy: another process holds its lock' : describeFault(err).split('\n')[0],
      ...(isFatal(err) ? { fatal: true as const } : {}),
    };
  }
}

/** What the database says about the monitor and the outbox, or null for each when it does not answer. */
async function monitorState(health: HealthStore, now: Date): Promise<Pick<Readiness, 'monitor' | 'outbox'>> {
  try {
    const pass = await health.passProgress();
    const backlog = await health.outboxBacklog();
    const oldest = backlog.oldestCreatedAt ? Date.parse(backlog.oldestCreatedAt) : Number.NaN;
    return {
      monitor: {
        lastPassAt: pass.lastFinishedAt,
        unfinishedPassSince: pass.unfinishedSince,
        workers: await health.passWorkers(now),
      },
      outbox: {
        pending: backlog.pending,
        oldestAgeSeconds: Number.isNaN(oldest) ? 0 : Math.max(0, Math.round((now.getTime() - oldest) / 1000)),
      },
    };
  } catch {
    return { monitor: null, outbox: null };
  }
}

function answerJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** GET /metrics: Prometheus text; with MTASTS_METRICS_TOKEN set, only for `Authorization: Bearer <token>`. */
function metricsRoute(metrics: AppMetrics, token: string | null): HttpRoute {
  return {
    path: '/metrics',
    method: ['GET'],
    handler: (req: IncomingMessage, res: ServerResponse) => {
      if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(401, { 'Content-Type': 'text/plain', 'WWW-Authenticate': 'Bearer' });
        res.end('a bearer token is needed for /metrics\n');
        return;
      }
      metrics.text().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
          res.end(text);
        },
        () => answerJson(res, 500, { error: 'metrics could not be collected' }),
      );
    },
  };
}

/** A failed alert post's error as a metric label: Slack's error code, or what kind of failure it was. */
function postErrorCode(result: Exclude<PostResult, { ok: true }>): string {
  if (result.kind === 'rate-limited') return 'ratelimited';
  if (/^[a-z_]+$/.test(result.error)) return result.error;
  const http = /^HTTP (\d{3})/.exec(result.error);
  if (http) return `http_${http[1]}`;
  return /within \d+ ms/.test(result.error) ? 'timeout' : 'request_failed';
}

/** Counts what the runtime does into the metrics: checks, passes, failed posts, reports stored. */
function instrument(runtime: Runtime, metrics: AppMetrics): void {
  instrumentEngine(runtime.engine, metrics);
  runtime.monitor.observe({
    passEnded: (result, seconds, at) => metrics.passFinished(result, seconds, at),
    postFailed: (result) => metrics.slackApiError('chat.postMessage', postErrorCode(result)),
  });
  const stored = runtime.intake.onStored;
  runtime.intake.onStored = () => {
    metrics.reportReceived();
    stored?.();
  };
}

/** Whether the app can serve now: the database takes writes, Slack is connected (or answers), and what waits. */
async function readinessOf(
  health: HealthStore,
  slack: SlackApp,
  probe: SlackProbe,
  now: Date,
): Promise<Readiness> {
  const { fatal: _, ...database } = await databaseState(health);
  const socket = slack.socket();
  const p = await probe.current();
  const api = { ok: p.ok, checkedAt: new Date(p.at).toISOString(), ...(p.error ? { error: p.error } : {}) };
  const state: Readiness['slack'] = socket
    ? {
        ok: socket.connected && p.ok,
        state: socket.connected ? 'connected' : 'down',
        since: socket.since.toISOString(),
        ...(socket.error ? { error: socket.error } : {}),
        ...(socket.retryAt ? { retryAt: socket.retryAt.toISOString() } : {}),
        api,
      }
    : { ok: p.ok, state: p.answered ? 'reachable' : 'unreachable', api };
  const mode = socket ? 'socket' : 'http';
  return {
    ready: database.ok && state.ok,
    mode,
    database,
    slack: state,
    ...(await monitorState(health, now)),
  };
}

/** GET /readyz: the readiness as JSON, 200 when ready, else 503. */
function readyRoute(readiness: () => Promise<Readiness>): HttpRoute {
  return {
    path: '/readyz',
    method: ['GET'],
    handler: (_req, res) =>
      void readiness().then(
        (r) => answerJson(res, r.ready ? 200 : 503, r),
        (err: unknown) => answerJson(res, 503, { ready: false, error: String(err).slice(0, 200) }),
      ),
  };
}

/**
 * The app as a service over an open runtime: the Slack app (runtime.buildSlackApp) with GET /readyz and GET /metrics
 * added, its checks, passes, posts and reports counted, and a watch that every MTASTS_HEALTH_INTERVAL_MS checks that the
 * database file is still the one opened (when it was removed or replaced, what the app holds is written back and
 * `onFatal` is called), that the database takes writes, and that Slack's Web API answers.
 */
export function buildService(runtime: Runtime, options: ServiceOptions): Service {
  const { config } = runtime;
  const now = runtime.intake.now;
  const log = options.logs.logger('health');
  const health = new HealthStore(runtime.db, config.databasePath);
  const slack = buildSlackApp(runtime);
  const probe = new SlackProbe(
    { ...slack.webClientOptions, timeout: config.slackTimeoutMs },
    config.oauth ? null : config.botToken,
    config.service.healthIntervalMs,
  );
  const metrics = new AppMetrics({
    databaseUp: async () => (await databaseState(health)).ok,
    outbox: () => health.outboxBacklog(),
    passWorkers: () => health.passWorkers(now()),
    self: SELF,
    slackUp: () => {
      const socket = slack.socket();
      return socket && !socket.connected ? false : probe.up;
    },
    now,
  });
  instrument(runtime, metrics);
  slack.countInto(metrics);
  const readiness = () => readinessOf(health, slack, probe, now());
  slack.serve([readyRoute(readiness), metricsRoute(metrics, config.service.metricsToken)]);
  const watch = new HealthWatch(health, probe, log, options.onFatal, now);
  return {
    slack,
    metrics,
    health,
    readiness,
    async start() {
      const port = await slack.start();
      watch.start(config.service.healthIntervalMs);
      void watch.look();
      return port;
    },
    async stop() {
      watch.stop();
      await slack.stop();
    },
  };
}

/** The background look at the app's own health, with a log line when the database's or Slack's state changes. */
class HealthWatch {
  private timer: NodeJS.Timeout | null = null;
  private fatal = false;
  private databaseError: string | null = null;
  private slackUp: boolean | null = null;

  constructor(
    private readonly health: HealthStore,
    private readonly probe: SlackProbe,
    private readonly log: { info(m: string): void; warn(m: string): void; error(m: string): void },
    private readonly onFatal: (why: string) => void,
    private readonly now: () => Date,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.look(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async look(): Promise<void> {
    if (this.fatal) return;
    const file = this.health.fileCheck();
    if (!file.ok) return this.lost(file.reason);
    const database = await databaseState(this.health);
    if (database.fatal) {
      this.fatal = true;
      this.stop();
      this.log.error(`database: ${database.error}`);
      return this.onFatal(`the database failed: ${database.error}`);
    }
    if (!database.ok && this.databaseError === null) this.log.warn(`database: ${database.error}`);
    if (database.ok && this.databaseError !== null) this.log.info('database: answering again');
    this.databaseError = database.ok ? null : (database.error ?? 'not answering');
    await this.probe.refresh();
    const probe = await this.probe.current();
    if (!probe.ok && this.slackUp !== false) this.log.warn(`Slack's Web API: ${probe.error}`);
    if (probe.ok && this.slackUp === false) this.log.info("Slack's Web API: answering again");
    const up = probe.ok;
    this.slackUp = up;
  }

  /** The database file is gone or another: write back what this process holds, then stop the app (exit 1). */
  private async lost(reason: 'removed' | 'replaced'): Promise<void> {
    this.fatal = true;
    this.stop();
    this.log.error(
      `database: the file was ${reason} while the app had it open; what the app writes now would be lost`,
    );
    try {
      const to = await this.health.rescue(this.now());
      this.log.error(`database: what the app held was written to ${to}`);
    } catch (err) {
      this.log.error(`database: no copy could be written: ${describeFault(err).split('\n')[0]}`);
    }
    this.onFatal(`the database file was ${reason}`);
  }
}
