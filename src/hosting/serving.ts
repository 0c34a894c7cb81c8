import type { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AppConfig } from '../config.js';
import { CertificateStore } from '../store/certificates.js';
import type { Db } from '../store/db.js';
import type { ChallengeType } from './acme.js';
import { CertificateManager } from './certificates.js';
import { challengeServer, PolicyServer, type PolicyServerEvents } from './server.js';
import type { CertificateEvent, CertificateEventSink, HostedPolicies } from './types.js';

/**
 * The serving half as the app runs it (start it only while hosting is on, i.e. MTASTS_HOSTING_NAME is set): the
 * policy listener on MTASTS_HOSTING_LISTEN, the http-01 listener on MTASTS_HOSTING_HTTP_LISTEN when set, and the
 * certificate manager reconciling every MTASTS_ACME_INTERVAL_SECONDS. `stop()` closes the listeners (requests in
 * progress get `graceMs`) and waits for a reconcile pass in progress.
 */
export interface ServingDeps {
  db: Db;
  policies: HostedPolicies;
  onEvent: CertificateEventSink;
  log: (line: string) => void;
  /** Counters for /metrics (AppMetrics has these three). */
  metrics?: {
    hostingRequest(status: number): void;
    hostingRefused(reason: string): void;
    certificateEvent(kind: CertificateEvent['kind']): void;
  };
  /** For tests: trust of the ACME server's own HTTPS (a test CA). */
  httpsAgent?: Agent;
}

export interface Serving {
  port: number;
  httpPort: number | null;
  manager: CertificateManager;
  store: CertificateStore;
  stop(graceMs?: number): Promise<void>;
}

export async function startServing(settings: AppConfig['serving'], deps: ServingDeps): Promise<Serving> {
  const store = new CertificateStore(deps.db);
  const limits = settings;
  const server = new PolicyServer({
    policies: deps.policies,
    certificates: store,
    limits,
    events: serverEvents(deps),
  });
  const port = await server.listen(settings.listen.port, settings.listen.host);
  const http = settings.httpListen ? challengeServer({ certificates: store, limits }) : null;
  let httpPort: number | null = null;
  if (http && settings.httpListen) {
    const { host, port: wanted } = settings.httpListen;
    httpPort = await new Promise<number>((resolve, reject) => {
      http.once('error', reject);
      http.listen(wanted, host, () => resolve((http.address() as AddressInfo).port));
    }).catch(async (e: unknown) => {
      await server.close(0);
      throw e;
    });
    http.on('error', (e) => deps.log(`hosting: http-01 listener: ${e.message}`));
  }
  const challengeTypes: ChallengeType[] = http ? ['tls-alpn-01', 'http-01'] : ['tls-alpn-01'];
  const manager = new CertificateManager({
    ...settings,
    store,
    policies: deps.policies,
    directoryUrl: settings.acmeDirectory,
    email: settings.acmeEmail,
    challengeTypes,
    poll: { attempts: 10, minMs: 1000, maxMs: 10000 },
    onEvent: async (event) => {
      deps.metrics?.certificateEvent(event.kind);
      await deps.onEvent(event);
    },
    log: deps.log,
    ...(deps.httpsAgent ? { httpsAgent: deps.httpsAgent } : {}),
  });
  manager.start(settings.reconcileIntervalMs);
  return {
    port,
    httpPort,
    manager,
    store,
    async stop(graceMs = 1000) {
      await manager.stop();
      await server.close(graceMs);
      if (http?.listening) {
        http.closeIdleConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    },
  };
}

function serverEvents(deps: ServingDeps): PolicyServerEvents {
  const m = deps.metrics;
  return {
    onError: (e) => deps.log(`hosting: policy listener: ${e.message}`),
    ...(m
      ? {
          onRequest: (status) => m.hostingRequest(status),
          onRefused: (why) => m.hostingRefused(why),
          onDropped: (why) => m.hostingRefused(why),
        }
      : {}),
  };
}
