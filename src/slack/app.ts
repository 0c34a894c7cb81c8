import { setMaxListeners } from 'node:events';
import type { RequestListener, Server } from 'node:http';
import { App, LogLevel, type webApi } from '@slack/bolt';
import type { AppConfig } from '../config.js';
import { type LogSink, logs as processLogs } from '../log.js';
import { type AppMetrics, countingFetch } from '../metrics.js';
import { registerButtons } from './actions/buttons.js';
import { mtastsCommand } from './commands/mtasts.js';
import type { SlackContext } from './context.js';
import { registerHome } from './events/app-home.js';
import { registerUninstall } from './events/uninstall.js';
import { CheckLimiter } from './limiter.js';
import {
  boltReceiver,
  EVENTS_PATH,
  type HttpRoute,
  type RouterParts,
  router,
  type SocketStatus,
  socketStatus,
} from './receiver.js';
import { closeServer, limitedServer, listen, type ServerEvents } from './server.js';
import { ReplayMemory } from './signature.js';
import { registerSetup } from './views/setup.js';

/** The bot scopes the code uses (and manifest.yml declares). */
export const BOT_SCOPES = ['commands', 'chat:write', 'channels:read', 'groups:read', 'users:read'] as const;

export interface SlackApp {
  app: App;
  /** The app's own HTTP listener (events in HTTP mode; health, TLS-RPT intake and OAuth pages in both). */
  server: Server;
  /** Starts listening; resolves to the HTTP port in use. */
  start(): Promise<number>;
  /** Stops taking work: Slack's WebSocket closes, the listener stops accepting and lets requests finish briefly. */
  stop(): Promise<void>;
  /** Socket Mode: the WebSocket's state; null in HTTP mode. */
  socket(): SocketStatus | null;
  /** The Web API client options the app's own clients use (the API's URL, a fetch that counts errors). */
  webClientOptions: webApi.WebClientOptions;
  /** Adds routes to the listener (readiness, metrics), before or after it started. */
  serve(routes: HttpRoute[]): void;
  /** Who counts the answers of the app's routes and the Slack API calls that failed, from now on. */
  countInto(metrics: SlackMetrics): void;
}

export type SlackMetrics = Pick<AppMetrics, 'slackApiError' | 'httpRequest'>;

export type SlackAppConfig = Pick<
  AppConfig,
  | 'botToken'
  | 'appToken'
  | 'signingSecret'
  | 'apiUrl'
  | 'port'
  | 'oauth'
  | 'http'
  | 'checkLimits'
  | 'service'
  | 'slackTimeoutMs'
>;

export interface SlackAppOptions {
  /** Where the app and Bolt log (default: the process's standard error). */
  logs?: LogSink;
}

/** Logs a kind of line at most once per 10 s, with the count of those left out: floods do not flood the log. */
function throttled(write: (message: string) => void): Note {
  const last = new Map<string, { at: number; skipped: number }>();
  return (kind, message) => {
    const now = Date.now();
    const seen = last.get(kind);
    if (seen && now - seen.at < 10_000) {
      seen.skipped++;
      return;
    }
    last.set(kind, { at: now, skipped: 0 });
    write(seen?.skipped ? `${message} (and ${seen.skipped} more like it)` : message);
  };
}

type Note = (kind: string, message: string) => void;

/**
 * The app's HTTP listener: /healthz and the other routes (`routes`, which may grow later), /slack/events (verified) and
 * the OAuth pages, with limits. Each answer is counted by route (or `other`) and status once `metrics()` gives a sink.
 */
function appServer(
  config: SlackAppConfig,
  route: Omit<RouterParts, 'routes' | 'guard'>,
  routes: HttpRoute[],
  note: Note,
  metrics: () => SlackMetrics | null,
): { server: Server; events: ServerEvents } {
  const health: HttpRoute = {
    path: '/healthz',
    method: ['GET'],
    handler: (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: true, mode: config.appToken ? 'socket' : 'http' }));
    },
  };
  routes.unshift(health);
  const routed = router({
    ...route,
    routes,
    guard: {
      maxBodyBytes: config.http.slackBodyBytes,
      replay: new ReplayMemory(config.http.replayMemory),
      now: Date.now,
      onRefused: (status, reason) =>
        note(`refused-${status}`, `/slack/events refused (${status}): ${reason}`),
    },
  });
  const events: ServerEvents = {
    onDropped: (why, address) =>
      note(
        `dropped-${why}`,
        why === 'all'
          ? `HTTP: ${config.http.maxConnections} connections open, the most allowed: a new one was closed`
          : `HTTP: ${address} holds ${config.http.maxConnectionsPerAddress} connections, the most per address: a new one was closed`,
      ),
    onError: (err) => note('server-error', `HTTP listener: ${err.message}`),
  };
  const listener: RequestListener = (req, res) => {
    const sink = metrics();
    if (sink) {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const known = path === EVENTS_PATH || routes.some((r) => r.path === path);
      res.once('finish', () => sink.httpRequest(known ? path : 'other', res.statusCode));
    }
    routed(req, res);
  };
  return { server: limitedServer(config.http, listener, events), events };
}

/** What a Slack payload was, in a few words for a log line: kind, command/action/event/view, workspace. */
export function payloadContext(body: unknown): string {
  if (typeof body !== 'object' || body === null) return 'payload of no known shape';
  const b = body as Record<string, unknown>;
  const at = (v: unknown, key: string): unknown =>
    typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  const word = (v: unknown) => (typeof v === 'string' ? v.replace(/[^\w./:-]/g, '?').slice(0, 60) : null);
  const parts = [
    word(b.command) ? `command ${word(b.command)}` : null,
    word(b.type) ? `type ${word(b.type)}` : null,
    word(at(b.event, 'type')) ? `event ${word(at(b.event, 'type'))}` : null,
    Array.isArray(b.actions) && word(at(b.actions[0], 'action_id'))
      ? `action ${word(at(b.actions[0], 'action_id'))}`
      : null,
    word(at(b.view, 'callback_id')) ? `view ${word(at(b.view, 'callback_id'))}` : null,
    word(b.team_id ?? at(b.team, 'id')) ? `team ${word(b.team_id ?? at(b.team, 'id'))}` : null,
  ];
  return parts.filter((p) => p !== null).join(', ') || 'payload of no known shape';
}

/** The error a listener threw, with the stack of what it wraps (Bolt wraps listener errors in its own). */
function listenerFault(error: Error & { original?: unknown; originals?: unknown[] }): string {
  const inner = error.originals?.[0] ?? error.original ?? error;
  return inner instanceof Error ? (inner.stack ?? `${inner.name}: ${inner.message}`) : String(inner);
}

/**
 * The Bolt app: Socket Mode when an app-level token is set (no public URL needed), HTTP mode otherwise with events
 * at /slack/events. In both, the app's own HTTP listener (with its limits: see server.ts) serves GET /healthz, the
 * extra routes (the TLS-RPT intake, readiness, metrics) and, with OAuth, the install pages on PORT. A listener that
 * throws is logged with what it was handling, and the app goes on.
 */
export function createSlackApp(
  config: SlackAppConfig,
  deps: Omit<SlackContext, 'limiter'>,
  extraRoutes: HttpRoute[] = [],
  options: SlackAppOptions = {},
): SlackApp {
  const logs = options.logs ?? processLogs;
  const log = logs.logger('slack');
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal); // every lookup and probe of every running check listens
  const ctx: SlackContext = {
    ...deps,
    limiter: new CheckLimiter(config.checkLimits),
    stopping: stopping.signal,
  };
  const oauth = config.oauth && ctx.installations ? { ...config.oauth, store: ctx.installations } : null;
  const receiverConfig = { ...config, oauth };
  const note = throttled((message) => log.warn(message));
  let metrics: SlackMetrics | null = null;
  const webClientOptions: webApi.WebClientOptions = {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    fetch: countingFetch((method, error) => metrics?.slackApiError(method, error)),
  };
  const receiver = boltReceiver(receiverConfig, [...BOT_SCOPES], {
    log,
    note: (m) => note('socket-payload', m),
    reconnect: {
      minMs: config.service.reconnectMinMs,
      maxMs: config.service.reconnectMaxMs,
      attemptTimeoutMs: config.slackTimeoutMs,
    },
    webClient: { ...webClientOptions, timeout: config.slackTimeoutMs },
    libraryLogger: logs.slackLogger('slack'),
  });
  const app = new App({
    receiver,
    logger: logs.slackLogger('slack'),
    logLevel: LogLevel.INFO,
    extendedErrorHandler: true,
    clientOptions: webClientOptions,
    // One workspace: the bot token as configured, without waiting on Slack. (Bolt's own would call auth.test at start
    // and keep its failure for the life of the process: an unhandled rejection, then every event refused; during an
    // outage every event would wait on its retries.) A token Slack refuses shows in /readyz and in the listeners' errors.
    ...(oauth ? {} : { authorize: async () => ({ botToken: config.botToken }) }),
  });
  // What the listeners are doing now, so that stop() lets it end (checks abort at once) and answer before the exit.
  const inFlight = new Set<Promise<unknown>>();
  app.use(async ({ next }) => {
    const work = next();
    inFlight.add(work);
    try {
      await work;
    } finally {
      inFlight.delete(work);
    }
  });
  app.command('/mtasts', mtastsCommand(ctx));
  registerButtons(app, ctx);
  registerSetup(app, ctx);
  registerHome(app, ctx);
  registerUninstall(app, ctx);
  // With extendedErrorHandler on, Bolt calls the handler with the payload beside the error (the last overload's type).
  const onError: Parameters<App['error']>[0] = async ({ error, body }) => {
    log.error(`a Slack listener failed (${payloadContext(body)}): ${listenerFault(error)}`);
  };
  app.error(onError);
  const route = {
    config: receiverConfig,
    scopes: [...BOT_SCOPES],
    receiver,
    log: (m: string) => log.error(m),
  };
  const routes = [...extraRoutes];
  const { server, events } = appServer(config, route, routes, note, () => metrics);
  return {
    app,
    server,
    webClientOptions,
    socket: () => socketStatus(receiver),
    serve: (more) => void routes.push(...more),
    countInto: (sink) => {
      metrics = sink;
    },
    async start() {
      const port = await listen(server, config.port, events);
      if (config.appToken) await app.start();
      return port;
    },
    async stop() {
      stopping.abort(); // the checks users started end now, and answer that the app is restarting
      await Promise.allSettled([...inFlight]);
      if (config.appToken) await app.stop().catch(() => {});
      await closeServer(server);
    },
  };
}
