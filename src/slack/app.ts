import type { Server } from 'node:http';
import { App, type CustomRoute, LogLevel } from '@slack/bolt';
import type { AppConfig } from '../config.js';
import { registerButtons } from './actions/buttons.js';
import { mtastsCommand } from './commands/mtasts.js';
import type { SlackContext } from './context.js';
import { registerHome } from './events/app-home.js';
import { registerSetup } from './views/setup.js';

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
  config: Pick<AppConfig, 'botToken' | 'appToken' | 'signingSecret' | 'apiUrl' | 'port'>,
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
  const common = {
    token: config.botToken,
    logLevel: LogLevel.INFO,
    customRoutes,
    ...(config.apiUrl ? { clientOptions: { slackApiUrl: config.apiUrl } } : {}),
  };
  const app = config.appToken
    ? new App({
        ...common,
        appToken: config.appToken,
        socketMode: true,
        installerOptions: { port: config.port },
      })
    : new App({ ...common, signingSecret: config.signingSecret ?? '' });

  app.command('/mtasts', mtastsCommand(ctx));
  registerButtons(app, ctx);
  registerSetup(app, ctx);
  registerHome(app, ctx);
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
