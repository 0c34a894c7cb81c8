import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Report } from './core/check.js';
import type { Engine } from './engine.js';
import type { OutboxBacklog } from './store/health.js';

/** What /metrics reads at each scrape rather than counts: the outbox, the monitor's lease, the Slack connection. */
export interface MetricSources {
  /** Whether the database takes writes now (its write lock can be had). */
  databaseUp(): Promise<boolean>;
  /** May throw (the database busy or gone): then the outbox gauges are left out. */
  outbox(): Promise<OutboxBacklog>;
  /** The monitor's lease holder (host:pid), or null; may throw like outbox(). */
  passWorkers(): Promise<string[]>;
  /** This process as a lease holder. */
  self: string;
  /** Socket Mode: connected; HTTP mode: Slack's Web API answered the last probe; null before the first answer. */
  slackUp(): boolean | null;
  now(): Date;
}

const CHECK_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];
const PASS_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** The hosted policy listener's and the certificate manager's counters. */
function hostingCounters(registers: Registry[]) {
  return {
    requests: new Counter({
      name: 'mtasts_hosting_policy_requests_total',
      help: 'Answers of the hosted policy listener, by status (200 the policy; 404, 405, 408, 421, 431, 400, 503)',
      labelNames: ['status'],
      registers,
    }),
    refused: new Counter({
      name: 'mtasts_hosting_connections_refused_total',
      help: 'Policy listener connections refused (not-tls, no-name, unknown-name, no-challenge, handshake-timeout, error) or dropped over a cap (all, address)',
      labelNames: ['reason'],
      registers,
    }),
    certificates: new Counter({
      name: 'mtasts_hosting_certificates_total',
      help: 'Certificate manager outcomes: issued, renewed, failed (orders that failed)',
      labelNames: ['kind'],
      registers,
    }),
  };
}

/** A label value as it came from the network, kept to a small alphabet and length so that it cannot explode series. */
export function labelValue(value: string): string {
  const v = value.trim();
  return /^[A-Za-z0-9_.-]{1,64}$/.test(v) ? v : 'other';
}

/**
 * The app's Prometheus metrics (prom-client, a registry of its own): monitoring passes and their duration, checks by
 * status and their duration, the outbox backlog and its oldest alert's age, Slack API errors by method and error code,
 * TLS-RPT reports received, the monitor's lease holder, requests to the app's HTTP routes, and Node's process metrics.
 */
export class AppMetrics {
  readonly registry = new Registry();
  private readonly passes: Counter<'result'>;
  private readonly passSeconds: Histogram;
  private readonly lastPass: Gauge;
  private readonly checks: Counter<'status'>;
  private readonly checkSeconds: Histogram;
  private readonly slackErrors: Counter<'method' | 'error'>;
  private readonly reports: Counter;
  private readonly requests: Counter<'route' | 'status'>;
  private readonly hosting: {
    requests: Counter<'status'>;
    refused: Counter<'reason'>;
    certificates: Counter<'kind'>;
  };

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    this.passes = new Counter({
      name: 'mtasts_monitor_passes_total',
      help: 'Monitoring passes by result: completed, interrupted (by a shutdown; resumed at the next start), failed',
      labelNames: ['result'],
      registers,
    });
    this.passSeconds = new Histogram({
      name: 'mtasts_monitor_pass_duration_seconds',
      help: 'Wall time of a monitoring pass in this process',
      buckets: PASS_BUCKETS,
      registers,
    });
    this.lastPass = new Gauge({
      name: 'mtasts_monitor_last_pass_timestamp_seconds',
      help: 'When the last monitoring pass in this process completed (Unix time)',
      registers,
    });
    this.checks = new Counter({
      name: 'mtasts_checks_total',
      help: 'Domain checks by status (pass, warn, fail; aborted when shutdown cut one short)',
      labelNames: ['status'],
      registers,
    });
    this.checkSeconds = new Histogram({
      name: 'mtasts_check_duration_seconds',
      help: 'Wall time of one domain check',
      buckets: CHECK_BUCKETS,
      registers,
    });
    this.slackErrors = new Counter({
      name: 'mtasts_slack_api_errors_total',
      help: 'Slack Web API calls that failed, by method and error code (ratelimited, http_NNN, request_failed, timeout)',
      labelNames: ['method', 'error'],
      registers,
    });
    this.reports = new Counter({
      name: 'mtasts_tlsrpt_reports_received_total',
      help: 'TLS-RPT reports received and stored (HTTPS, e-mail, IMAP); duplicates and refusals not counted',
      registers,
    });
    this.requests = new Counter({
      name: 'mtasts_http_requests_total',
      help: "Requests to the app's own HTTP routes, by route and status",
      labelNames: ['route', 'status'],
      registers,
    });
    this.hosting = hostingCounters(registers);
    scrapedGauges(registers, sources);
    collectDefaultMetrics({ register: this.registry });
  }

  passFinished(result: 'completed' | 'interrupted' | 'failed', seconds: number, at: Date): void {
    this.passes.inc({ result });
    this.passSeconds.observe(seconds);
    if (result === 'completed') this.lastPass.set(at.getTime() / 1000);
  }

  checkFinished(report: Report, seconds: number): void {
    this.checks.inc({ status: (report as { aborted?: boolean }).aborted ? 'aborted' : report.status });
    this.checkSeconds.observe(seconds);
  }

  slackApiError(method: string, error: string): void {
    this.slackErrors.inc({ method: labelValue(method), error: labelValue(error) });
  }

  reportReceived(): void {
    this.reports.inc();
  }

  httpRequest(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }

  /** Hosted MTA-STS: an answer of the policy listener. */
  hostingRequest(status: number): void {
    this.hosting.requests.inc({ status: String(status) });
  }

  /** Hosted MTA-STS: a connection refused before or during its handshake, or dropped over a connection cap. */
  hostingRefused(reason: string): void {
    this.hosting.refused.inc({ reason: labelValue(reason) });
  }

  /** Hosted MTA-STS: a certificate issued, renewed, or a failed order. */
  certificateEvent(kind: 'issued' | 'renewed' | 'failed'): void {
    this.hosting.certificates.inc({ kind });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The gauges read at each scrape. A database that does not answer is itself a figure, not a failed scrape. (prom-client
 * starts every metric's collect() in the order they were made, then awaits them all: the first one starts the outbox
 * query that the next two await.)
 */
function scrapedGauges(registers: Registry[], sources: MetricSources): void {
  let backlog: Promise<OutboxBacklog | null> = Promise.resolve(null);
  new Gauge({
    name: 'mtasts_database_up',
    help: 'Whether the database takes writes at this scrape (1) or not (0: locked by another process, gone, closed)',
    registers,
    async collect() {
      // the database does not answer reads either: the outbox gauges are left out of this scrape
      backlog = sources.outbox().catch(() => null);
      this.set((await sources.databaseUp()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'mtasts_outbox_pending',
    help: 'Alerts in the outbox waiting to be posted',
    registers,
    async collect() {
      this.reset();
      const b = await backlog;
      if (b) this.set(b.pending);
    },
  });
  new Gauge({
    name: 'mtasts_outbox_oldest_age_seconds',
    help: 'Age of the oldest alert waiting in the outbox (0 when none waits)',
    registers,
    async collect() {
      this.reset();
      const b = await backlog;
      if (!b) return;
      const at = b.oldestCreatedAt ? Date.parse(b.oldestCreatedAt) : Number.NaN;
      this.set(Number.isNaN(at) ? 0 : Math.max(0, (sources.now().getTime() - at) / 1000));
    },
  });
  new Gauge({
    name: 'mtasts_monitor_lease_holder',
    help: 'Each process (host:pid) holding a page of the running pass, with value 1, self=1 for this one; none between passes',
    labelNames: ['holder', 'self'],
    registers,
    async collect() {
      this.reset();
      try {
        for (const holder of await sources.passWorkers())
          this.set({ holder, self: holder === sources.self ? '1' : '0' }, 1);
      } catch {
        // the database did not answer: mtasts_database_up says so
      }
    },
  });
  new Gauge({
    name: 'mtasts_slack_up',
    help: 'Socket Mode: the WebSocket is connected; HTTP mode: Slack answered the last probe (1), or not (0)',
    registers,
    collect() {
      this.reset();
      const up = sources.slackUp();
      if (up !== null) this.set(up ? 1 : 0);
    },
  });
}

/** Times every check the engine runs (the Slack app's and the monitor's) into the metrics; returns the engine. */
export function instrumentEngine(engine: Engine, metrics: AppMetrics): Engine {
  const timed =
    <A extends unknown[]>(check: (...args: A) => Promise<Report>) =>
    async (...args: A): Promise<Report> => {
      const started = performance.now();
      const report = await check(...args);
      metrics.checkFinished(report, (performance.now() - started) / 1000);
      return report;
    };
  engine.check = timed(engine.check);
  engine.checkWith = timed(engine.checkWith);
  return engine;
}

type Fetch = typeof globalThis.fetch;

/** The Web API method a request goes to (the last path segment of …/api/chat.postMessage). */
function methodOf(input: Parameters<Fetch>[0]): string {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  return url.split('?')[0]?.split('/').pop() ?? 'unknown';
}

/**
 * A fetch for Slack's Web API clients that reports every failed call: network failures and timeouts, 429s, other HTTP
 * statuses, and `ok: false` answers with their error code. The answer itself is passed on untouched.
 */
export function countingFetch(onError: (method: string, error: string) => void, base: Fetch = fetch): Fetch {
  return async (input, init) => {
    const method = methodOf(input);
    let res: Response;
    try {
      res = await base(input, init);
    } catch (err) {
      onError(method, (err as Error)?.name === 'TimeoutError' ? 'timeout' : 'request_failed');
      throw err;
    }
    if (res.status === 429) onError(method, 'ratelimited');
    else if (res.status !== 200) onError(method, `http_${res.status}`);
    else {
      try {
        const body = (await res.clone().json()) as { ok?: unknown; error?: unknown };
        if (body?.ok === false)
          onError(method, typeof body.error === 'string' ? body.error : 'unknown_error');
      } catch {
        // not JSON: the client reports it to its caller
      }
    }
    return res;
  };
}
