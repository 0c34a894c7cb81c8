import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  HTTPReceiver,
  type InstallationStore,
  type Logger as SlackLibraryLogger,
  SocketModeReceiver,
  type SocketModeReceiverOptions,
  webApi,
} from '@slack/bolt';
import type { AppConfig, OAuthConfig } from '../config.js';
import type { Logger } from '../monitor/deliver.js';
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

/** Socket Mode answers to apps.connections.open that mean the app-level token itself was refused. */
const TOKEN_REFUSED = new Set([
  'not_authed',
  'invalid_auth',
  'token_revoked',
  'account_inactive',
  'user_removed_from_team',
  'team_disabled',
]);

/** What went wrong with a connection attempt, in one line that names no token. */
function socketFailure(err: unknown): { text: string; tokenRefused: boolean } {
  const e = err as { code?: string; data?: { error?: string }; statusCode?: number; original?: Error } | null;
  if (e?.code === webApi.ErrorCode.PlatformError) {
    const code = String(e.data?.error ?? 'unknown_error');
    return TOKEN_REFUSED.has(code)
      ? { text: `Slack refused the app-level token (${code}): rotate SLACK_APP_TOKEN`, tokenRefused: true }
      : { text: `apps.connections.open answered ${code}`, tokenRefused: false };
  }
  if (e?.code === webApi.ErrorCode.HTTPError)
    return { text: `apps.connections.open: HTTP ${e.statusCode}`, tokenRefused: false };
  if (e?.code === webApi.ErrorCode.RequestError)
    return {
      text: `apps.connections.open failed: ${e.original?.message ?? 'no answer'}`,
      tokenRefused: false,
    };
  if (err instanceof Error) return { text: err.message.slice(0, 300), tokenRefused: false };
  return { text: 'the connection closed before Slack said hello', tokenRefused: false };
}

/** The WebSocket's state, for /readyz and /metrics. */
export interface SocketStatus {
  connected: boolean;
  /** When it last connected or went down. */
  since: Date;
  /** Why it is down (null while connected). */
  error: string | null;
  /** When the next attempt is due while down, else null. */
  retryAt: Date | null;
}

export interface ReconnectSettings {
  /** First wait after the connection dropped; doubled for each failed attempt in a row, up to maxMs. */
  minMs: number;
  maxMs: number;
  /** An attempt that has not connected (Slack's hello) within this is given up and retried. */
  attemptTimeoutMs: number;
}

/**
 * Socket Mode without Bolt's own HTTP listener (which has no limits, and would take the port): the app's listener
 * serves the install pages and the routes instead. Only the WebSocket client is started and stopped, and this class
 * reconnects it rather than the client's own loop (whose failure to reconnect, such as a revoked app token, is an
 * unhandled rejection, and whose wait is a silent 5 s): each drop is logged with the wait before the next attempt, a
 * refresh Slack asks for (`disconnect`) is made at once, failures wait longer each time up to a limit, and a refused
 * token is retried at that pace too, so that the rest of the app keeps serving meanwhile.
 */
class SocketOnlyReceiver extends SocketModeReceiver {
  private stopping = false;
  private attempting = false;
  private everConnected = false;
  private failures = 0;
  private refreshAsked = false;
  private timer: NodeJS.Timeout | null = null;
  readonly status: SocketStatus = {
    connected: false,
    since: new Date(),
    error: 'not connected yet',
    retryAt: null,
  };

  constructor(
    options: SocketModeReceiverOptions,
    private readonly hooks: Pick<ReceiverHooks, 'log' | 'note' | 'reconnect'>,
  ) {
    super({ ...options, autoReconnectEnabled: false });
    // A WebSocket message the client cannot take apart (an events_api envelope with a null payload) makes its async
    // listener reject with nobody to catch it: caught here, logged, and the connection keeps serving.
    const listeners = this.client.listeners('ws_message') as ((...args: unknown[]) => unknown)[];
    this.client.removeAllListeners('ws_message');
    for (const listener of listeners) {
      this.client.on('ws_message', (...args: unknown[]) => {
        this.noteRefresh(args[0]);
        void Promise.resolve()
          .then(() => listener(...args))
          .catch((err: unknown) =>
            hooks.note(`Socket Mode message not taken apart: ${String(err).slice(0, 300)}`),
          );
      });
    }
    this.client.on('disconnected', () => this.dropped());
  }

  /** Connects once; whether or not that worked, the app goes on starting (a failure is retried in the background). */
  override async start(): Promise<webApi.AppsConnectionsOpenResponse> {
    this.stopping = false;
    await this.attempt();
    return { ok: this.status.connected };
  }

  override async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const closed = this.client.disconnect();
    // A peer that never answers the close frame is cut after a second rather than the client's 30 s.
    const cut = setTimeout(() => this.client.websocket?.disconnect(), 1000);
    await closed;
    clearTimeout(cut);
    this.set(false, 'stopped', null);
  }

  /** Slack's `disconnect` message: the connection is to be replaced now (refresh_requested, or a server going away). */
  private noteRefresh(data: unknown): void {
    if (typeof data !== 'string' || !data.includes('"disconnect"')) return;
    try {
      const m = JSON.parse(data) as { type?: unknown; reason?: unknown };
      if (m.type === 'disconnect') {
        this.refreshAsked = true;
        this.hooks.log.info(`Slack socket: Slack asked to reconnect (${String(m.reason).slice(0, 40)})`);
      }
    } catch {
      // not JSON: the client ignores it too
    }
  }

  private async attempt(): Promise<void> {
    this.attempting = true;
    const giveUp = setTimeout(
      () => this.client.websocket?.disconnect(),
      this.hooks.reconnect.attemptTimeoutMs,
    );
    try {
      await this.client.start();
      if (this.everConnected) this.hooks.log.info('Slack socket connected again');
      this.everConnected = true;
      this.failures = 0;
      this.set(true, null, null);
    } catch (err) {
      if (this.stopping) return;
      this.failures++;
      const failure = socketFailure(err);
      this.retryLater(failure.text, failure.tokenRefused ? 'error' : 'warn');
    } finally {
      clearTimeout(giveUp);
      this.attempting = false;
    }
  }

  /** The client reports a closed connection: one that was up went down (an attempt reports its own failure). */
  private dropped(): void {
    if (this.stopping || this.attempting || !this.status.connected) return;
    if (this.refreshAsked) {
      this.refreshAsked = false;
      this.set(false, "refreshing at Slack's request", null);
      this.hooks.log.info('Slack socket: reconnecting now, as Slack asked');
      void this.attempt();
      return;
    }
    this.retryLater('the connection dropped', 'warn');
  }

  private retryLater(why: string, level: 'warn' | 'error'): void {
    const { minMs, maxMs } = this.hooks.reconnect;
    const wait = Math.min(maxMs, minMs * 2 ** Math.min(this.failures, 30));
    this.set(false, why, new Date(Date.now() + wait));
    this.hooks.log[level](`Slack socket down (${why}), retrying in ${formatWait(wait)}`);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopping) void this.attempt();
    }, wait);
  }

  private set(connected: boolean, error: string | null, retryAt: Date | null): void {
    if (connected !== this.status.connected) this.status.since = new Date();
    Object.assign(this.status, { connected, error, retryAt });
  }
}

/** A wait in seconds, as a person reads it ("0.5 s", "1 s", "300 s"). */
function formatWait(ms: number): string {
  return ms < 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export type BoltReceiver = HTTPReceiver | SocketOnlyReceiver;
type Installer = NonNullable<HTTPReceiver['installer']>;

/**
 * Bolt's options for the multi-workspace install, or none. `clientOptions` go to the Web API clients the receiver
 * makes: the installer's (oauth.v2.access) and, in Socket Mode, the WebSocket client's (apps.connections.open).
 */
function oauthOptions(c: ReceiverConfig, scopes: string[], webClient: webApi.WebClientOptions) {
  const clientOptions = { clientOptions: webClient };
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

export interface ReceiverHooks {
  /** Lines about the Socket Mode connection (down, retrying, back). */
  log: Logger;
  /** Throttled warnings (payloads that could not be processed). */
  note: (message: string) => void;
  reconnect: ReconnectSettings;
  /** Options of the receiver's Web API clients (the API's URL, a timeout, a fetch that counts errors). */
  webClient: webApi.WebClientOptions;
  /** What Bolt's receiver and its clients log through. */
  libraryLogger?: SlackLibraryLogger;
}

/**
 * Bolt's receiver for the mode: HTTP (events handed over by the app's listener once verified) or Socket Mode (a
 * WebSocket; a payload Bolt cannot process is logged and acknowledged, so that Slack does not send it again). The
 * Socket Mode client's own calls are not retried by its Web API client: the receiver retries the connection itself.
 */
export function boltReceiver(c: ReceiverConfig, scopes: string[], hooks: ReceiverHooks): BoltReceiver {
  const logger = hooks.libraryLogger ? { logger: hooks.libraryLogger } : {};
  if (c.appToken) {
    return new SocketOnlyReceiver(
      {
        appToken: c.appToken,
        ...logger,
        ...oauthOptions(c, scopes, { ...hooks.webClient, retryConfig: { retries: 0 } }),
        processEventErrorHandler: async ({ error, event }) => {
          const body = event.body as unknown;
          const type =
            body === null ? 'null' : typeof body === 'object' ? String(event.body.type) : typeof body;
          hooks.note(
            `Socket Mode payload (type ${type.slice(0, 40)}) not processed: ${String(error).slice(0, 300)}`,
          );
          return true;
        },
      },
      hooks,
    );
  }
  return new HTTPReceiver({
    signingSecret: c.signingSecret ?? '',
    endpoints: EVENTS_PATH,
    bodyLimit: c.http.slackBodyBytes,
    ...logger,
    ...oauthOptions(c, scopes, hooks.webClient),
  });
}

/** The Socket Mode connection's state; null in HTTP mode. */
export function socketStatus(receiver: BoltReceiver): SocketStatus | null {
  return receiver instanceof SocketOnlyReceiver ? receiver.status : null;
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
