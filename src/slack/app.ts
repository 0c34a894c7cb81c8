import type { Server } from 'node:http';
import { App, type CustomRoute, LogLevel } from '@slack/bolt';
import type { AppConfig } from '../config.js';
import { registerButtons } from './actions/buttons.js';
import { mtastsCommand } from './commands/mtasts.js';
import type { SlackContext } from './context.js';
import { registerHome } from './events/app-home.js';
import { registerUninstall } from './events/uninstall.js';
import { registerSetup } from './views/setup.js';

/** The bot scopes the code uses (and manifest.yml declares). */
export const BOT_SCOPES = ['commands', 'chat:write', 'channels:read', 'groups:read'] as const;

export interface SlackApp {
  app: App;
  /** Starts listening; resolves to the HTTP port in use (for events in HTTP mode, and the custom routes in both). */
  start(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The Bolt app: Socket Mode when an app-level token is set (no public URL needed), HTTP mode otherwise with events
 * at /slack/events. Both serve GET /healthz and any extra routes (the TLS-RPT intake) on PORT.
 */
export function createSlackApp(
  config: Pick<AppConfig, 'botToken' | 'appToken' | 'signingSecret' | 'apiUrl' | 'port' | 'oauth'>,
  ctx: SlackContext,
  extraRoutes: CustomRoute[] = [],
): SlackApp {
  const customRoutes: CustomRoute[] = [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ ok: true, mode: config.appToken ? 'socket' : 'http' }));
      },
    },
    ...extraRoutes,
  ];
  const clientOptions = config.apiUrl ? { clientOptions: { slackApiUrl: config.apiUrl } } : {};
  const oauth = config.oauth && ctx.installations ? { ...config.oauth, store: ctx.installations } : null;
  // One workspace with its bot token, or any number through OAuth (/slack/install, /slack/oauth_redirect).
  const auth = oauth
    ? {
        clientId: oauth.clientId,
        clientSecret: oauth.clientSecret,
        stateSecret: oauth.stateSecret,
        scopes: [...BOT_SCOPES],
        installationStore: oauth.store,
        ...(oauth.redirectUri ? { redirectUri: oauth.redirectUri } : {}),
        installerOptions: {
          directInstall: true,
          stateVerification: true,
          ...(config.appToken ? { port: config.port } : {}),
          ...(oauth.redirectUri ? { redirectUriPath: new URL(oauth.redirectUri).pathname } : {}),
          ...clientOptions,
        },
      }
    : { token: config.botToken, ...(config.appToken ? { installerOptions: { port: config.port } } : {}) };
  const common = { logLevel: LogLevel.INFO, customRoutes, ...clientOptions, ...auth };
  const app = config.appToken
    ? new App({ ...common, appToken: config.appToken, socketMode: true })
    : new App({ ...common, signingSecret: config.signingSecret ?? '' });

  app.command('/mtasts', mtastsCommand(ctx));
  registerButtons(app, ctx);
  registerSetup(app, ctx);
  registerHome(app, ctx);
  registerUninstall(app, ctx);
  app.error(async (error) => {
    app.logger.error(`unhandled Slack listener error: ${error.message}`);
  });

  let server: Server | null = null;
  return {
    app,
    async start() {
      const started = (await app.start(config.port)) as unknown;
      if (started && typeof (started as Server).address === 'function') server = started as Server;
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : config.port;
    },
    async stop() {
      await app.stop();
    },
  };
}
