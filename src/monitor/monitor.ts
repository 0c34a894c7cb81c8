import { setMaxListeners } from 'node:events';
import { schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import { type CheckDeps, impactNow, type Report, withSignal } from '../core/check.js';
import { parseDomain } from '../core/domain.js';
import { SEVERITY_ORDER, statusOf } from '../core/findings.js';
import type { Engine } from '../engine.js';
import { bindFragment, planRecords } from '../generate/records.js';
import { whenFree } from '../store/busy.js';
import type { CheckStore } from '../store/checks.js';
import type { MonitorStore } from '../store/monitor.js';
import type { AlertPayload, MonitorEvent } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import type { PageClaim, PassStore } from '../store/passes.js';
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
  /** Domains in a page: the share of a pass a process claims at a time (see store/passes.ts). */
  pageSize: number;
  /**
   * A process's claim on a page lasts this long and is renewed every third of it while it works; a page whose process
   * died is taken over when it runs out (at once when that process ran on this host).
   */
  pageLeaseMs: number;
  diff: DiffSettings;
  delivery: DeliverySettings;
  cache: PassCacheSettings;
}

export const DEFAULT_MONITOR: MonitorSettings = {
  concurrency: 8,
  jitterMs: 100,
  pageSize: 100,
  pageLeaseMs: 60_000,
  diff: DEFAULT_DIFF_SETTINGS,
  delivery: DEFAULT_DELIVERY,
  cache: DEFAULT_PASS_CACHE,
};

export interface MonitorDeps {
  engine: Engine;
  /** The passes, shared with every other process on the database (replicas, the app and `mtasts sweep`). */
  passes: PassStore;
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

/** What checkOne did: stored the check, or kept nothing (cut short; page lost; stored by another in this pass). */
export interface Checked {
  events: number;
  alerts: number;
  sqliteMs: number;
  outcome: 'stored' | 'aborted' | 'lost' | 'done';
}

export interface PassSummary {
  passId: number;
  /** The pass was open already (begun by another process, or before a restart): this process joined it. */
  resumed: boolean;
  /** This scheduled tick's pass had been run to its end by another process: nothing was done. */
  alreadyRun?: true;
  /** The domains this process checked and stored (other processes check the rest of the pass). */
  domains: number;
  events: number;
  alerts: number;
  failures: number;
  /** Distinct MX endpoints probed, probe results reused, DNS questions asked and answered from the pass cache. */
  network: PassCacheStats;
  /** Pages of the pass this process worked through; pages it lost to another process (its lease ran out meanwhile). */
  pages: number;
  pagesLost: number;
  /** This process ended the pass (its last page was done here): it did what follows a pass. */
  ended: boolean;
  /** Milliseconds spent in the database (state, reports, outbox) during the pass. */
  sqliteMs: number;
  delivery: DeliverySummary;
  /** stop() cut the pass short: its page is given back, and the pass resumes there (here or in another process). */
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
 * the outbox is delivered. Passes never overlap. A pass is shared by every process on the database: each claims pages
 * of its domains until none is left (store/passes.ts), and a pass interrupted by a restart or a crash is taken up where
 * it stopped, by this process or another.
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
   * Runs (or joins) one pass now; resolves to null when this process is already running one. `slot` names the
   * scheduled tick it runs for: replicas firing for the same tick share one pass, and one that fires after that pass
   * ended does nothing (`alreadyRun`). With `joinOnly`, only a pass under way is joined (`alreadyRun` when none is).
   */
  runPass(slot: string | null = null, joinOnly = false): Promise<PassSummary | null> {
    if (this.running) return Promise.resolve(null);
    const abort = new AbortController();
    setMaxListeners(0, abort.signal); // every lookup and probe of the pass listens
    this.passAbort = abort;
    const run = this.observedPass(abort.signal, slot, joinOnly).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  /** A pass, told to the observer when it ends. */
  private async observedPass(
    signal: AbortSignal,
    slot: string | null,
    joinOnly: boolean,
  ): Promise<PassSummary> {
    const started = performance.now();
    const ended = (result: 'completed' | 'interrupted' | 'failed') =>
      this.observer.passEnded?.(result, (performance.now() - started) / 1000, this.deps.now());
    try {
      const summary = await this.pass(signal, slot, joinOnly);
      if (!summary.alreadyRun) ended(summary.interrupted ? 'interrupted' : 'completed');
      return summary;
    } catch (err) {
      ended('failed');
      throw err;
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

  /** Schedules passes with a cron expression (node-cron); each tick's pass is shared with the other replicas. */
  schedule(expression: string): void {
    this.task = cronSchedule(expression, (context) => this.runLogged(slotOf(context.date)), {
      noOverlap: true,
    });
  }

  /**
   * Runs (or joins) a pass and logs how this process's share of it went; never throws (a failure is logged). Used by
   * the schedule, and at start to take up a pass a crash or restart left unfinished.
   */
  async runLogged(slot: string | null = null, joinOnly = false): Promise<void> {
    const { logger } = this.deps;
    try {
      const s = await this.runPass(slot, joinOnly);
      if (!s) logger.warn('monitor: the previous pass is still running here; this tick is skipped');
      else if (s.alreadyRun)
        logger.info(
          s.passId
            ? `monitor: pass ${s.passId} for this tick was run by another process`
            : 'monitor: the unfinished pass was ended by another process meanwhile',
        );
      else if (s.interrupted)
        logger.info(`monitor: pass ${s.passId} interrupted; it resumes at the next start`);
      else
        logger.info(
          `monitor: pass ${s.passId}: ${s.domains} domain(s) checked here in ${s.pages} page(s)${s.ended ? ', pass ended' : ''}, ${s.events} event(s), ${s.alerts} alert(s); sent ${s.delivery.sent}, retrying ${s.delivery.retrying}`,
        );
    } catch (err) {
      logger.error(`monitor: pass failed: ${(err as Error).stack ?? String(err)}`);
    }
  }

  /** Stops scheduling; the running pass's checks are aborted, and it ends before its page is counted as done. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.task?.stop();
    this.passAbort?.abort();
    await this.running?.catch(() => {});
    await this.delivery.idle();
  }

  private async pass(signal: AbortSignal, slot: string | null, joinOnly: boolean): Promise<PassSummary> {
    const { passes, now } = this.deps;
    // Each step on the shared passes waits out another process's hold on the database (SQLite's lock) a little.
    const entry = await whenFree(() => passes.begin(now(), slot, joinOnly));
    const summary: PassSummary = {
      passId: entry.kind === 'none' ? 0 : entry.id,
      resumed: entry.kind === 'open' && entry.resumed,
      domains: 0,
      events: 0,
      alerts: 0,
      failures: 0,
      network: { dnsQueries: 0, dnsHits: 0, probes: 0, probeHits: 0 },
      pages: 0,
      pagesLost: 0,
      ended: false,
      sqliteMs: 0,
      delivery: { sent: 0, retrying: 0, dead: 0, channelsPaused: 0 },
    };
    if (entry.kind !== 'open') return { ...summary, alreadyRun: true };
    await whenFree(() => passes.plan(entry.id, this.settings.pageSize));
    if (!entry.resumed) await this.announceHosting(true); // once per pass: by the process that began it
    const network = passDeps(withSignal(this.deps.engine.deps, signal), this.settings.cache);
    summary.network = network.stats;
    const { pageLeaseMs } = this.settings;
    let wait = WAIT_FIRST_MS;
    for (;;) {
      if (signal.aborted) return { ...summary, interrupted: true };
      const claim = await whenFree(() => passes.claim(entry.id, now(), pageLeaseMs));
      if (!claim) {
        // Every page is done, or held by another process: wait for those (or for a lease to run out: take over),
        // looking less often the longer it takes, and at least four times a lease.
        if ((await whenFree(() => passes.outstanding(entry.id))) === 0) break;
        await pause(wait, signal);
        wait = Math.min(wait * 2, pageLeaseMs / 4);
        continue;
      }
      wait = WAIT_FIRST_MS;
      const { lost } = await this.workPage(claim, network.deps, signal, summary);
      if (signal.aborted) {
        await passes.release(claim).catch(() => {}); // the next process to ask takes it up at once
        return { ...summary, interrupted: true };
      }
      const t = performance.now();
      if (!lost && (await whenFree(() => passes.pageDone(claim, now())))) summary.pages++;
      else summary.pagesLost++;
      summary.sqliteMs += performance.now() - t;
    }
    if (await whenFree(() => passes.finish(entry.id, now()))) {
      summary.ended = true;
      await this.afterPass(signal);
    }
    summary.delivery = await this.deliver();
    return summary;
  }

  /** What the process that ended a pass does next; the pass is over, so a failure here is logged, not the pass's. */
  private async afterPass(signal: AbortSignal): Promise<void> {
    const { store, now, logger } = this.deps;
    await this.followUnwatchedHosting(signal);
    try {
      await whenFree(() => store.prune(now()));
    } catch (err) {
      logger.error(`monitor: old alerts and passes not pruned (next pass tries again): ${String(err)}`);
    }
    await this.announceHosting(false);
  }

  /**
   * Checks the page's domains not yet checked in the pass, renewing the page's lease meanwhile. When the lease is
   * found lost (this process stalled past it and another took the page over) the page's checks are abandoned: what
   * they saw is not stored. Returns whether the page was lost (the domains stored are counted in `summary`).
   */
  private async workPage(
    claim: PageClaim,
    deps: CheckDeps,
    signal: AbortSignal,
    summary: PassSummary,
  ): Promise<{ lost: boolean }> {
    const { passes, now, logger } = this.deps;
    const { pageLeaseMs, concurrency } = this.settings;
    const page = new AbortController();
    setMaxListeners(0, page.signal);
    const onStop = () => page.abort();
    signal.addEventListener('abort', onStop, { once: true });
    let lost = false;
    const heartbeat = setInterval(() => {
      passes.renew(claim, now(), pageLeaseMs).then(
        (held) => {
          if (held || page.signal.aborted) return;
          lost = true;
          logger.warn(`monitor: page ${claim.seq} of pass ${claim.passId} was taken over by another process`);
          page.abort();
        },
        (err: unknown) => logger.warn(`monitor: renewing the page's lease failed: ${String(err)}`),
      );
    }, pageLeaseMs / 3);
    try {
      const domains = await passes.domains(claim);
      await pool(domains, concurrency, async (domain) => {
        if (page.signal.aborted) return;
        try {
          const r = await this.checkOne(domain, deps, page.signal, claim);
          if (r.outcome === 'lost' && !page.signal.aborted) {
            lost = true; // another process took the page over: its checks are its own now
            page.abort();
          }
          if (r.outcome !== 'stored') return;
          summary.domains++;
          summary.events += r.events;
          summary.alerts += r.alerts;
          summary.sqliteMs += r.sqliteMs;
        } catch (err) {
          summary.failures++;
          logger.error(`monitor: ${domain} could not be checked: ${(err as Error).stack ?? String(err)}`);
        }
      });
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onStop);
    }
    return { lost };
  }

  /**
   * Checks one domain, compares, and commits the new state with its alerts; within a pass (`claim`), only while the
   * page is still this process's ('lost') and the domain was not stored in the pass yet ('done'). Nothing is kept
   * unless the outcome is 'stored'.
   */
  async checkOne(
    domain: string,
    deps?: CheckDeps,
    signal?: AbortSignal,
    claim?: PageClaim,
  ): Promise<Checked> {
    const { engine, checks, store, subscriptions, passes, now } = this.deps;
    const parsed = parseDomain(domain);
    if (!parsed.ok) throw new Error(`stored domain "${domain}" is not valid: ${parsed.error}`);
    if (this.settings.jitterMs > 0)
      await new Promise((r) => setTimeout(r, Math.random() * this.settings.jitterMs));
    const report = deps
      ? await engine.checkWith(parsed.domain, deps, signal)
      : await engine.check(parsed.domain, signal);
    if (report.aborted) return { events: 0, alerts: 0, sqliteMs: 0, outcome: 'aborted' }; // not its state
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
    const t1 = performance.now();
    let outcome: Checked['outcome'] = 'stored';
    // Tried again while another process holds the database (a rolled-back try left nothing; record() decides anew).
    // A hosted domain's follow-up (what is served, reminders) is part of the transaction: kept with the check, or not.
    await whenFree(() =>
      store.atomically(async () => {
        outcome = claim ? await passes.record(claim, domain) : 'stored';
        if (outcome !== 'stored') return;
        const all = [...alerts, ...(await this.hostingAlerts(report, at))];
        await checks.save(report);
        await store.commit(domain, state, all, at);
        alerts.splice(0, alerts.length, ...all);
      }),
    );
    sqliteMs += performance.now() - t1;
    return outcome === 'stored'
      ? { events: events.length, alerts: alerts.length, sqliteMs, outcome }
      : { events: 0, alerts: 0, sqliteMs, outcome };
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
      // Its own writes undone when it fails; the check is stored all the same.
      return await this.deps.store.apart(() =>
        hostingAfterCheck(hosting, subscriptions, seenInReport(report), at),
      );
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

/** The scheduled tick a cron run is for, to the second: the same on every replica whatever its clock's drift. */
function slotOf(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();
}

/** The first wait for other processes' pages; doubled up to a quarter of the page lease. */
const WAIT_FIRST_MS = 250;

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
