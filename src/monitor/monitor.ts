import { setMaxListeners } from 'node:events';
import { schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import { type CheckDeps, impactNow, type Report, withSignal } from '../core/check.js';
import { parseDomain } from '../core/domain.js';
import { SEVERITY_ORDER, statusOf } from '../core/findings.js';
import type { Engine } from '../engine.js';
import { bindFragment, planRecords } from '../generate/records.js';
import type { CheckStore } from '../store/checks.js';
import type { LockStore } from '../store/locks.js';
import type { MonitorStore } from '../store/monitor.js';
import type { AlertPayload, MonitorEvent } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import { isActive, type SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';
import {
  DEFAULT_DELIVERY,
  type DeliverySettings,
  type DeliverySummary,
  DeliveryWorker,
  type Logger,
  type Poster,
  type PostResult,
  workerName,
} from './deliver.js';
import { DEFAULT_DIFF_SETTINGS, type DiffSettings, diff } from './diff.js';
import {
  type HostingHooks,
  hostingAfterCheck,
  hostingRound,
  hostingUnwatched,
  seenInReport,
} from './hosting.js';
import { DEFAULT_PASS_CACHE, type PassCacheSettings, type PassCacheStats, passDeps } from './pass-cache.js';
import { pool } from './pool.js';
import { snapshotOf } from './snapshot.js';

export interface MonitorSettings {
  /** Domains checked at once. */
  concurrency: number;
  /** Each check starts after a random delay up to this, so that a pass does not burst. */
  jitterMs: number;
  /** Domains read from the store at a time; the pass's resume point advances a page at a time. */
  pageSize: number;
  diff: DiffSettings;
  delivery: DeliverySettings;
  cache: PassCacheSettings;
}

export const DEFAULT_MONITOR: MonitorSettings = {
  concurrency: 8,
  jitterMs: 100,
  pageSize: 100,
  diff: DEFAULT_DIFF_SETTINGS,
  delivery: DEFAULT_DELIVERY,
  cache: DEFAULT_PASS_CACHE,
};

/** The lease a pass holds (health and metrics read who holds it). */
export const PASS_LOCK = 'monitor-pass';
/** A pass renews its lease after every page of domains; one left by a crashed process lapses after this. */
const LEASE_MS = 10 * 60_000;

export interface MonitorDeps {
  engine: Engine;
  /** Leases shared with other processes on the same database (the app and `mtasts sweep`). */
  locks?: LockStore;
  /** Reported TLS failures hold back "ready to enforce". */
  tlsrpt?: Pick<TlsRptStore, 'lastFailureAt'>;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  store: MonitorStore;
  poster: Poster;
  now: () => Date;
  logger: Logger;
  settings?: Partial<MonitorSettings>;
  /** Hosted MTA-STS (monitor/hosting.ts); absent when hosting is off. */
  hosting?: HostingHooks;
}

export interface PassSummary {
  passId: number;
  resumed: boolean;
  domains: number;
  events: number;
  alerts: number;
  failures: number;
  /** Distinct MX endpoints probed, probe results reused, DNS questions asked and answered from the pass cache. */
  network: PassCacheStats;
  /** Milliseconds spent in SQLite (state, reports, outbox) during the pass. */
  sqliteMs: number;
  delivery: DeliverySummary;
  /** stop() cut the pass short: it resumes from its last unfinished page at the next start. */
  interrupted?: true;
}

/** Told how passes and alert posts end (the app's metrics). */
export interface MonitorObserver {
  passEnded?(result: 'completed' | 'interrupted' | 'failed', seconds: number, at: Date): void;
  postFailed?(result: Exclude<PostResult, { ok: true }>): void;
}

/**
 * The monitor: a pass re-checks every watched domain once (however many channels watch it), compares each with the
 * state the previous passes left, and writes the alerts for what changed to the outbox in the same transaction; then
 * the outbox is delivered. Passes never overlap; an interrupted pass is resumed after a restart.
 */
export class Monitor {
  private running: Promise<PassSummary | null> | null = null;
  /** Aborts the running pass's checks (stop()). */
  private passAbort: AbortController | null = null;
  private task: ScheduledTask | null = null;
  private readonly settings: MonitorSettings;
  /** This process's one delivery worker: every way alerts get delivered goes through it. */
  private readonly delivery: DeliveryWorker;
  private observer: MonitorObserver = {};
  /** Set by stop(): the delivery worker claims no further alert (the post under way finishes and is recorded). */
  private stopping = false;

  constructor(private readonly deps: MonitorDeps) {
    this.settings = { ...DEFAULT_MONITOR, ...deps.settings };
    const { store, subscriptions, poster, now, logger } = deps;
    this.delivery = new DeliveryWorker({
      store: claimsUntil(store, () => this.stopping),
      subscriptions,
      poster: {
        ...(poster.timeoutMs !== undefined ? { timeoutMs: poster.timeoutMs } : {}),
        post: async (row, threadTs) => {
          const result = await poster.post(row, threadTs);
          if (!result.ok) this.observer.postFailed?.(result);
          return result;
        },
      },
      now,
      logger,
      settings: this.settings.delivery,
      holder: workerName(),
    });
  }

  /**
   * Runs one pass now; resolves to null when a pass is already running, here or in another process on the same
   * database.
   */
  runPass(): Promise<PassSummary | null> {
    if (this.running) return Promise.resolve(null);
    const abort = new AbortController();
    setMaxListeners(0, abort.signal); // every lookup and probe of the pass listens
    this.passAbort = abort;
    const run = this.leasedPass(abort.signal).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  /** A pass under the pass lease, when it can be had; told to the observer when it ends. */
  private async leasedPass(signal: AbortSignal): Promise<PassSummary | null> {
    const { locks, now } = this.deps;
    if (locks && !(await locks.acquire(PASS_LOCK, LEASE_MS, now()))) return null;
    const started = performance.now();
    const ended = (result: 'completed' | 'interrupted' | 'failed') =>
      this.observer.passEnded?.(result, (performance.now() - started) / 1000, now());
    try {
      const summary = await this.pass(signal);
      ended(summary.interrupted ? 'interrupted' : 'completed');
      return summary;
    } catch (err) {
      ended('failed');
      throw err;
    } finally {
      await locks?.release(PASS_LOCK).catch(() => {});
    }
  }

  /** Who is told how passes and posts end. */
  observe(observer: MonitorObserver): void {
    this.observer = observer;
  }

  /**
   * Delivers what the outbox holds (also at start, for alerts a crash or restart left unsent). Calls never run side by
   * side: one made while a round runs gets the round that follows it, shared with every other call made meanwhile.
   */
  deliver(): Promise<DeliverySummary> {
    return this.delivery.deliver();
  }

  /** Schedules passes with a cron expression (node-cron). */
  schedule(expression: string): void {
    this.task = cronSchedule(
      expression,
      async () => {
        try {
          const s = await this.runPass();
          if (!s) {
            this.deps.logger.warn(
              'monitor: a pass is still running (here, or a sweep in another process); this one is skipped',
            );
            return;
          }
          if (s.interrupted) {
            this.deps.logger.info(`monitor: pass ${s.passId} interrupted; it resumes at the next start`);
            return;
          }
          this.deps.logger.info(
            `monitor: pass ${s.passId} checked ${s.domains} domain(s), ${s.events} event(s), ${s.alerts} alert(s); sent ${s.delivery.sent}, retrying ${s.delivery.retrying}`,
          );
        } catch (err) {
          this.deps.logger.error(`monitor: pass failed: ${(err as Error).stack ?? String(err)}`);
        }
      },
      { noOverlap: true },
    );
  }

  /** Stops scheduling; the running pass's checks are aborted, and it ends before its page is counted as done. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.task?.stop();
    this.passAbort?.abort();
    await this.running?.catch(() => {});
    await this.delivery.idle();
  }

  private async pass(signal: AbortSignal): Promise<PassSummary> {
    const { store, subscriptions, now } = this.deps;
    const pass = await store.beginPass(now());
    const summary: PassSummary = {
      passId: pass.id,
      resumed: pass.resumed,
      domains: 0,
      events: 0,
      alerts: 0,
      failures: 0,
      network: { dnsQueries: 0, dnsHits: 0, probes: 0, probeHits: 0 },
      sqliteMs: 0,
      delivery: { sent: 0, retrying: 0, dead: 0, channelsPaused: 0 },
    };
    await this.announceHosting(true);
    const network = passDeps(withSignal(this.deps.engine.deps, signal), this.settings.cache);
    summary.network = network.stats;
    let cursor = pass.cursor;
    for (;;) {
      const page = await subscriptions.domainsAfter(cursor, this.settings.pageSize);
      if (page.length === 0) break;
      await pool(page, this.settings.concurrency, async (domain) => {
        try {
          const { events, alerts, sqliteMs } = await this.checkOne(domain, network.deps, signal);
          summary.events += events;
          summary.alerts += alerts;
          summary.sqliteMs += sqliteMs;
        } catch (err) {
          summary.failures++;
          this.deps.logger.error(
            `monitor: ${domain} could not be checked: ${(err as Error).stack ?? String(err)}`,
          );
        }
      });
      if (signal.aborted) return { ...summary, interrupted: true }; // resumed from this page after a restart
      cursor = page[page.length - 1] ?? cursor;
      const t = performance.now();
      await store.advancePass(pass.id, cursor, page.length);
      await this.deps.locks?.acquire(PASS_LOCK, LEASE_MS, now()); // renew the lease
      summary.sqliteMs += performance.now() - t;
      summary.domains += page.length;
    }
    await this.followUnwatchedHosting(signal);
    await store.finishPass(pass.id, now());
    await this.announceHosting(false);
    summary.delivery = await this.deliver();
    return summary;
  }

  /** Checks one domain, compares, and commits the new state with its alerts. */
  async checkOne(
    domain: string,
    deps?: CheckDeps,
    signal?: AbortSignal,
  ): Promise<{ events: number; alerts: number; sqliteMs: number }> {
    const { engine, checks, store, subscriptions, now } = this.deps;
    const parsed = parseDomain(domain);
    if (!parsed.ok) throw new Error(`stored domain "${domain}" is not valid: ${parsed.error}`);
    if (this.settings.jitterMs > 0)
      await new Promise((r) => setTimeout(r, Math.random() * this.settings.jitterMs));
    const report = deps
      ? await engine.checkWith(parsed.domain, deps, signal)
      : await engine.check(parsed.domain, signal);
    if (report.aborted) return { events: 0, alerts: 0, sqliteMs: 0 }; // cut short: not the domain's state
    const at = now();
    const t0 = performance.now();
    const previous = await store.loadState(domain);
    const audience = (await subscriptions.forDomain(domain)).filter((s) => isActive(s, at));
    const lastFailure = (await this.deps.tlsrpt?.lastFailureAt(domain)) ?? null;
    let sqliteMs = performance.now() - t0;
    const { state, events, extraFindings, lastPolicy } = diff(
      previous,
      snapshotOf(report),
      report,
      at,
      this.settings.diff,
      { lastReportedFailureAt: lastFailure },
    );
    if (lastPolicy !== undefined) report.lastPolicy = lastPolicy; // kept with the report: its impact speaks of it
    if (extraFindings.length > 0) {
      report.findings = [...report.findings, ...extraFindings].sort(
        (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity],
      );
      report.status = statusOf(report.findings);
    }
    const alerts: NewAlert[] = [];
    for (const event of events) {
      const payload = payloadOf(event, report, at);
      for (const s of audience) {
        alerts.push({
          eventKey: event.key,
          teamId: s.teamId,
          channelId: s.channelId,
          threadEventKey: event.threadKey,
          broadcast: event.kind === 'reminder',
          payload,
        });
      }
    }
    alerts.push(...(await this.hostingAlerts(report, at)));
    const t1 = performance.now();
    await store.atomically(async () => {
      await checks.save(report);
      await store.commit(domain, state, alerts, at);
    });
    sqliteMs += performance.now() - t1;
    return { events: events.length, alerts: alerts.length, sqliteMs };
  }

  /**
   * Hosted domains' news to the outbox: enrollments looked at again first when `reconcile` (each pass), then every
   * event the hosting side recorded for the channels (also right after a certificate event). Never throws: a failure
   * is logged, and what was not announced is announced next time. Returns the alerts queued.
   */
  async announceHosting(reconcile: boolean): Promise<number> {
    const { hosting, store, subscriptions, now, logger } = this.deps;
    if (!hosting) return 0;
    try {
      const { alerts, announced } = await hostingRound(hosting, subscriptions, now, reconcile);
      let queued = 0;
      await store.atomically(async () => {
        for (const [domain, list] of alerts) {
          await store.queue(domain, list, now());
          queued += list.length;
        }
      });
      if (announced.length > 0) await hosting.service.markAnnounced(announced);
      return queued;
    } catch (err) {
      logger.error(`monitor: hosted domains' news not announced: ${(err as Error).stack ?? String(err)}`);
      return 0;
    }
  }

  /** The hosted domains no channel watches: their MX hosts and id read from DNS, followed up alike; a failure is logged. */
  private async followUnwatchedHosting(signal: AbortSignal): Promise<void> {
    const { hosting, store, subscriptions, engine, now, logger } = this.deps;
    if (!hosting) return;
    try {
      const alerts = await hostingUnwatched(hosting, subscriptions, engine.deps.dns, now, signal);
      await store.atomically(async () => {
        for (const [domain, list] of alerts) await store.queue(domain, list, now());
      });
    } catch (err) {
      logger.error(
        `monitor: unwatched hosted domains not followed up: ${(err as Error).stack ?? String(err)}`,
      );
    }
  }

  /** A hosted domain's MX change and id after its check (none for a domain not hosted); a failure is logged. */
  private async hostingAlerts(report: Report, at: Date): Promise<NewAlert[]> {
    const { hosting, subscriptions, logger } = this.deps;
    if (!hosting) return [];
    try {
      return await hostingAfterCheck(hosting, subscriptions, seenInReport(report), at);
    } catch (err) {
      logger.error(
        `monitor: hosting of ${report.domain} not followed up: ${(err as Error).stack ?? String(err)}`,
      );
      return [];
    }
  }
}

function payloadOf(event: MonitorEvent, report: Report, now: Date): AlertPayload {
  const mode = report.evidence.policy.valid ? (report.evidence.policy.policy?.mode ?? null) : null;
  const payload: AlertPayload = {
    domain: report.domain,
    domainUnicode: report.domainUnicode,
    mode,
    event,
    impact: impactNow(report),
  };
  if (event.kind === 'ready') {
    const plan = planRecords(
      { ascii: report.domain, unicode: report.domainUnicode },
      { mode: 'enforce' },
      report,
      report.domain,
      now,
    );
    payload.ready = { id: plan.id, bind: bindFragment(plan), policyText: plan.policyText };
  }
  return payload;
}

/**
 * The outbox as the delivery worker sees it: once `closed()` holds, no alert can be claimed, so the worker ends its
 * round after the posts under way (each recorded as it ended) instead of starting the next ones.
 */
function claimsUntil(store: MonitorStore, closed: () => boolean): MonitorStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'claim' && closed()) return async () => null;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
