import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../slack/receiver.js';
import { closeServer, limitedServer, listen } from '../slack/server.js';
import type { Db } from '../store/db.js';
import { HealthStore } from '../store/health.js';
import { type IntakeDeps, tlsrptHandler } from '../tlsrpt/intake.js';

/** What `npm start` serves without a Slack app: /healthz, /readyz and the TLS-RPT intake, on PORT. */
export interface LocalService {
  health: HealthStore;
  start(): Promise<number>;
  stop(): Promise<void>;
}

export interface LocalServiceParts {
  db: Db;
  databasePath: string;
  port: number;
  http: Parameters<typeof limitedServer>[0];
  intake: IntakeDeps;
  log: (message: string) => void;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The database takes writes and is still the file opened: the local mode's readiness. */
async function ready(health: HealthStore): Promise<{
  ready: boolean;
  mode: 'local';
  database: { ok: boolean; error?: string };
}> {
  const file = health.fileCheck();
  if (!file.ok)
    return {
      ready: false,
      mode: 'local',
      database: { ok: false, error: `the database file was ${file.reason}` },
    };
  try {
    await health.probeWrite();
    return { ready: true, mode: 'local', database: { ok: true } };
  } catch (err) {
    return { ready: false, mode: 'local', database: { ok: false, error: String(err).split('\n')[0] } };
  }
}

/**
 * The HTTP listener of `npm start` with no Slack app configured (the watch list's alerts go to the log or webhooks):
 * the same limits as the app's listener, GET /healthz, GET /readyz and POST /tlsrpt; 404 for anything else.
 */
export function localService(p: LocalServiceParts): LocalService {
  const health = new HealthStore(p.db, p.databasePath);
  const routes: HttpRoute[] = [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req, res) => json(res, 200, { ok: true, mode: 'local' }),
    },
    {
      path: '/readyz',
      method: ['GET'],
      handler: (_req, res) => void ready(health).then((r) => json(res, r.ready ? 200 : 503, r)),
    },
    { path: '/tlsrpt', method: ['POST'], handler: tlsrptHandler(p.intake) },
  ];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes.find((r) => r.path === path);
    if (!route) return json(res, 404, { error: 'not found' });
    const allowed = Array.isArray(route.method) ? route.method : [route.method];
    if (!allowed.includes((req.method ?? '').toUpperCase())) {
      res.setHeader('Allow', allowed.join(', '));
      return json(res, 405, { error: `use ${allowed.join(' or ')}` });
    }
    try {
      route.handler(req, res);
    } catch (err) {
      p.log(`HTTP request failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
    }
  };
  const server = limitedServer(p.http, listener, {
    onError: (err) => p.log(`HTTP listener: ${err.message}`),
  });
  return {
    health,
    start: () => listen(server, p.port, { onError: (err) => p.log(`HTTP listener: ${err.message}`) }),
    stop: () => closeServer(server),
  };
}
