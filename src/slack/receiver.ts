import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  HTTPReceiver,
  type InstallationStore,
  SocketModeReceiver,
  type SocketModeReceiverOptions,
} from '@slack/bolt';
import type { AppConfig, OAuthConfig } from '../config.js';
import { type GuardSettings, guardSlackRequest, refuse } from './signature.js';

/** A route of the app's own HTTP listener (the health check, the TLS-RPT intake). */
export interface HttpRoute {
  path: string;
  method: string | string[];
  handler: (req: IncomingMessage, res: ServerResponse) => void;
}

export type ReceiverConfig = Pick<AppConfig, 'appToken' | 'signingSecret' | 'apiUrl' | 'http'> & {
  oauth: (OAuthConfig & { store: InstallationStore }) | null;
};

export const EVENTS_PATH = '/slack/events';
const INSTALL_PATH = '/slack/install';
const REDIRECT_PATH = '/slack/oauth_redirect';

/**
 * Socket Mode without Bolt's own HTTP listener (which has no limits, and would take the port): the app's listener
 * serves the install pages and the routes instead. Only the WebSocket client is started and stopped.
 */
class SocketOnlyReceiver extends SocketModeReceiver {
  constructor(options: SocketModeReceiverOptions, log: (message: string) => void) {
    super(options);
    // A WebSocket message the client cannot take apart (an events_api envelope with a null payload) makes its async
    // listener reject with nobody to catch it: caught here, logged, and the connection keeps serving.
    const listeners = this.client.listeners('ws_message') as ((...args: unknown[]) => unknown)[];
    this.client.removeAllListeners('ws_message');
    for (const listener of listeners) {
      this.client.on('ws_message', (...args: unknown[]) => {
        void Promise.resolve()
          .then(() => listener(...args))
          .catch((err: unknown) => log(`Socket Mode message not taken apart: ${String(err).slice(0, 300)}`));
      });
    }
  }

  override start() {
    return this.client.start();
  }

  override stop() {
    return this.client.disconnect();
  }
}

export type BoltReceiver = HTTPReceiver | SocketOnlyReceiver;
type Installer = NonNullable<HTTPReceiver['installer']>;

/** Bolt's options for the multi-workspace install, or none. */
function oauthOptions(c: ReceiverConfig, scopes: string[]) {
  const clientOptions = c.apiUrl ? { clientOptions: { slackApiUrl: c.apiUrl } } : {};
  if (!c.oauth) return { installerOptions: clientOptions };
  return {
    clientId: c.oauth.clientId,
    clientSecret: c.oauth.clientSecret,
    stateSecret: c.oauth.stateSecret,
    scopes,
    installationStore: c.oauth.store,
    ...(c.oauth.redirectUri ? { redirectUri: c.oauth.redirectUri } : {}),
    installerOptions: { directInstall: true, stateVerification: true, ...clientOptions },
  };
}

/**
 * Bolt's receiver for the mode: HTTP (events handed over by the app's listener once verified) or Socket Mode (a
 * WebSocket; a payload Bolt cannot process is logged and acknowledged, so that Slack does not send it again).
 */
export function boltReceiver(
  c: ReceiverConfig,
  scopes: string[],
  log: (message: string) => void,
): BoltReceiver {
  if (c.appToken) {
    return new SocketOnlyReceiver(
      {
        appToken: c.appToken,
        ...oauthOptions(c, scopes),
        processEventErrorHandler: async ({ error, event }) => {
          const body = event.body as unknown;
          const type =
            body === null ? 'null' : typeof body === 'object' ? String(event.body.type) : typeof body;
          log(
            `Socket Mode payload (type ${type.slice(0, 40)}) not processed: ${String(error).slice(0, 300)}`,
          );
          return true;
        },
      },
      log,
    );
  }
  return new HTTPReceiver({
    signingSecret: c.signingSecret ?? '',
    endpoints: EVENTS_PATH,
    bodyLimit: c.http.slackBodyBytes,
    ...oauthOptions(c, scopes),
  });
}

/** The install page and the OAuth redirect, answered by Bolt's installer; false when the request is neither. */
function oauthPaths(installer: Installer | undefined, c: ReceiverConfig, scopes: string[]) {
  const redirectPath = c.oauth?.redirectUri ? new URL(c.oauth.redirectUri).pathname : REDIRECT_PATH;
  const urlOptions = { scopes, ...(c.oauth?.redirectUri ? { redirectUri: c.oauth.redirectUri } : {}) };
  return (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> | null => {
    if (!installer || req.method !== 'GET') return null;
    if (path === INSTALL_PATH) return installer.handleInstallPath(req, res, {}, urlOptions);
    if (path === redirectPath) return installer.handleCallback(req, res, {});
    return null;
  };
}

export interface RouterParts {
  config: ReceiverConfig;
  scopes: string[];
  receiver: BoltReceiver;
  routes: HttpRoute[];
  /** The verification of /slack/events (HTTP mode). */
  guard: Omit<GuardSettings, 'signingSecret'>;
  log: (message: string) => void;
}

const pathOf = (url: string | undefined): string | null => {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return null;
  }
};

/**
 * The app's request listener in both modes: its own routes; in HTTP mode POST /slack/events, verified before Bolt
 * sees it; the OAuth pages when installs are on; 404 for anything else. A handler that throws gets a 500.
 */
export function router(p: RouterParts): RequestListener {
  const oauth = oauthPaths(p.receiver.installer, p.config, p.scopes);
  const httpReceiver = p.receiver instanceof HTTPReceiver ? p.receiver : null;
  const failed = (res: ServerResponse) => (err: unknown) => {
    p.log(`HTTP request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    refuse(res, 500, 'internal error');
  };
  const events = (receiver: HTTPReceiver, req: IncomingMessage, res: ServerResponse) =>
    guardSlackRequest(req, res, { ...p.guard, signingSecret: p.config.signingSecret ?? '' }, (body) => {
      // Bolt reads a request's `rawBody` instead of the stream, and checks the signature again (harmlessly).
      Object.assign(req, { rawBody: body });
      receiver.requestListener(req, res);
    });
  return (req, res) => {
    const path = pathOf(req.url);
    const method = (req.method ?? '').toUpperCase();
    try {
      if (path === null) return refuse(res, 400, 'malformed request target');
      const route = p.routes.find((r) => r.path === path);
      if (route) {
        const allowed = Array.isArray(route.method) ? route.method : [route.method];
        if (allowed.includes(method)) return route.handler(req, res);
        return refuse(res, 405, `use ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
      }
      if (httpReceiver && path === EVENTS_PATH && method === 'POST') {
        return void events(httpReceiver, req, res).catch(failed(res));
      }
      const install = oauth(req, res, path);
      if (install) return void install.catch(failed(res));
      refuse(res, 404, 'not found');
    } catch (err) {
      failed(res)(err);
    }
  };
}
