import type { Server } from 'node:http';
import { App, LogLevel } from '@slack/bolt';
import type { AppConfig } from '../config.js';
import { registerButtons } from './actions/buttons.js';
import { mtastsCommand } from './commands/mtasts.js';
import type { SlackContext } from './context.js';
import { registerHome } from './events/app-home.js';
import { registerUninstall } from './events/uninstall.js';
import { CheckLimiter } from './limiter.js';
import { boltReceiver, type HttpRoute, type RouterParts, router } from './receiver.js';
import { closeServer, limitedServer, listen, type ServerEvents } from './server.js';
import { ReplayMemory } from './signature.js';
import { registerSetup } from './views/setup.js';

/** The bot scopes the code uses (and manifest.yml declares). */
export const BOT_SCOPES = ['commands', 'chat:write', 'channels:read', 'groups:read'] as const;

export interface SlackApp {
  app: App;
  /** The app's own HTTP listener (events in HTTP mode; health, TLS-RPT intake and OAuth pages in both). */
  server: Server;
  /** Starts listening; resolves to the HTTP port in use. */
  start(): Promise<number>;
  stop(): Promise<void>;
}

export type SlackAppConfig = Pick<
  AppConfig,
  'botToken' | 'appToken' | 'signingSecret' | 'apiUrl' | 'port' | 'oauth' | 'http' | 'checkLimits'
>;

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

/** The app's HTTP listener: /healthz and the extra routes, /slack/events (verified) and the OAuth pages, with limits. */
function appServer(
  config: SlackAppConfig,
  route: Omit<RouterParts, 'routes' | 'guard'>,
  extraRoutes: HttpRoute[],
  note: Note,
): { server: Server; events: ServerEvents } {
  const health: HttpRoute = {
    path: '/healthz',
    method: ['GET'],
    handler: (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: true, mode: config.appToken ? 'socket' : 'http' }));
    },
  };
  const listener = router({
    ...route,
    routes: [health, ...extraRoutes],
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
  return { server: limitedServer(config.http, listener, events), events };
}

/**
 * The Bolt app: Socket Mode when an app-level token is set (no public URL needed), HTTP mode otherwise with events
 * at /slack/events. In both, the app's own HTTP listener (with its limits: see server.ts) serves GET /healthz, the
 * extra routes (the TLS-RPT intake) and, with OAuth, the install pages on PORT.
 */
export function createSlackApp(
  config: SlackAppConfig,
  deps: Omit<SlackContext, 'limiter'>,
  extraRoutes: HttpRoute[] = [],
): SlackApp {
  const ctx: SlackContext = { ...deps, limiter: new CheckLimiter(config.checkLimits) };
  const oauth = config.oauth && ctx.installations ? { ...config.oauth, store: ctx.installations } : null;
  const receiverConfig = { ...config, oauth };
  const note = throttled((message) => app.logger.warn(message));
  const receiver = boltReceiver(receiverConfig, [...BOT_SCOPES], (m) => note('socket-payload', m));
  const app = new App({
    receiver,
    logLevel: LogLevel.INFO,
    ...(config.apiUrl ? { clientOptions: { slackApiUrl: config.apiUrl } } : {}),
    ...(oauth ? {} : { token: config.botToken }),
  });
  app.command('/mtasts', mtastsCommand(ctx));
  registerButtons(app, ctx);
  registerSetup(app, ctx);
  registerHome(app, ctx);
  registerUninstall(app, ctx);
  app.error(async (error) => {
    app.logger.error(`unhandled Slack listener error: ${error.message}`);
  });
  const route = {
    config: receiverConfig,
    scopes: [...BOT_SCOPES],
    receiver,
    log: (m: string) => app.logger.error(m),
  };
  const { server, events } = appServer(config, route, extraRoutes, note);
  return {
    app,
    server,
    async start() {
      const port = await listen(server, config.port, events);
      if (config.appToken) await app.start();
      return port;
    },
    async stop() {
      if (config.appToken) await app.stop().catch(() => {});
      await closeServer(server);
    },
  };
}
