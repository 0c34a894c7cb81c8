import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as acme from 'acme-client';
import type { CertificateStore, StoredCertificate } from '../store/certificates.js';
import { AcmeAccount, AcmeFailure, type AcmeSettings, oneLine } from './acme.js';
import type { CertificateEvent, CertificateEventSink, HostedPolicies } from './types.js';

/**
 * Keeps a certificate for every hosted policy host name: `reconcile()` orders one for each name that has none, or one
 * due for renewal (within `renewBeforeDays` of its expiry, or a third of its lifetime for a short-lived one), except
 * names in backoff after a failure. Renewals go first, the soonest expiry first; new names follow, at most
 * `maxNewOrdersPerPass` of them. Safe with several replicas on one database: an order holds a lease row per name (a
 * second replica skips the name), the account key is stored once, challenges are answered from the store. A failure
 * doubles the wait from `retryMinMs` up to `retryMaxMs`; a CA's rate limit (429) blocks every order to that CA, from
 * every replica, for at least its Retry-After (one failure told, for the name that met it), and ends the pass. A name that leaves namesNeedingCertificates
 * keeps its certificate until it expires (it is then deleted); the control half decides when a name leaves.
 */
export interface CertificateManagerOptions extends AcmeSettings {
  store: CertificateStore;
  policies: Pick<HostedPolicies, 'namesNeedingCertificates'>;
  renewBeforeDays: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Orders started by one reconcile pass at most (they run one after another). */
  maxOrdersPerPass: number;
  /** Of those, orders for names without a certificate yet (renewals go first and are not held back by new names). */
  maxNewOrdersPerPass: number;
  /** An order's lease: another replica may take the name over after this, and the order gives up at it. */
  orderTimeoutMs: number;
  onEvent?: CertificateEventSink;
  /** This replica, as the holder of leases (default: host, pid and a random part). */
  holder?: string;
  now?: () => Date;
  /** A line for the log when something went wrong outside an order (e.g. the sink threw). */
  log?: (line: string) => void;
}

export interface ReconcileResult {
  /** Names this pass ordered for, with what came of it. */
  issued: string[];
  failed: string[];
  /** Names due but skipped: another replica holds the order, or the pass hit its cap or a rate limit. */
  deferred: string[];
}

const DAY = 86_400_000;

export class CertificateManager {
  private readonly account: AcmeAccount;
  private readonly holder: string;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileResult> | null = null;

  constructor(private readonly options: CertificateManagerOptions) {
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.now = options.now ?? (() => new Date());
    this.account = new AcmeAccount(options, () =>
      options.store.accountKey(
        options.directoryUrl,
        async () => (await acme.crypto.createPrivateEcdsaKey('P-256')).toString(),
        this.now(),
      ),
    );
  }

  /** One pass; a call while a pass runs waits for that pass instead of starting another. */
  reconcile(): Promise<ReconcileResult> {
    if (!this.running)
      this.running = this.pass().finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** Runs a pass now and then every `intervalMs`; errors are logged, never thrown. */
  start(intervalMs: number): void {
    const run = () =>
      this.reconcile().catch((e) => this.options.log?.(`hosting certificates: ${oneLine(e)}`));
    void run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  /** Stops the interval and waits for a pass in progress (its order ends at its timeout at the latest). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  private async pass(): Promise<ReconcileResult> {
    const { store, maxOrdersPerPass, maxNewOrdersPerPass } = this.options;
    const now = this.now();
    await store.deleteExpired(now);
    const due = await this.due(now);
    const result: ReconcileResult = { issued: [], failed: [], deferred: [] };
    let started = 0;
    let startedNew = 0;
    for (const [i, { name, renewal }] of due.entries()) {
      if (started >= maxOrdersPerPass || (!renewal && startedNew >= maxNewOrdersPerPass)) {
        result.deferred.push(name);
        continue;
      }
      // Read before each order: another replica may have met the CA's rate limit meanwhile.
      if (await this.caBlocked()) {
        result.deferred.push(...due.slice(i).map((d) => d.name));
        break;
      }
      started++;
      if (!renewal) startedNew++;
      const outcome = await this.orderOne(name);
      if (outcome === 'rate-limited') {
        result.failed.push(name);
        result.deferred.push(...due.slice(i + 1).map((d) => d.name));
        break;
      }
      result[outcome === 'issued' ? 'issued' : outcome === 'failed' ? 'failed' : 'deferred'].push(name);
    }
    return result;
  }

  /** Whether the CA's rate limit still blocks every order (from any replica). */
  private async caBlocked(): Promise<boolean> {
    const until = await this.options.store.caBlockedUntil(this.options.directoryUrl);
    return until !== undefined && Date.parse(until) > this.now().getTime();
  }

  /** The names needing an order now: renewals first, the soonest to expire first; then new names, by name. */
  private async due(now: Date): Promise<{ name: string; renewal: boolean }[]> {
    const names = [...new Set(await this.options.policies.namesNeedingCertificates())];
    const renewals: { name: string; notAfter: string }[] = [];
    const fresh: string[] = [];
    for (const name of names) {
      const certificate = await this.options.store.certificate(name);
      if (!(await this.needsOrder(name, certificate, now))) continue;
      if (certificate) renewals.push({ name, notAfter: certificate.notAfter });
      else fresh.push(name);
    }
    renewals.sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.name.localeCompare(b.name));
    return [
      ...renewals.map((r) => ({ name: r.name, renewal: true })),
      ...fresh.sort().map((name) => ({ name, renewal: false })),
    ];
  }

  /**
   * When a certificate is due for renewal: `renewBeforeDays` before it expires, or a third of its lifetime before
   * for one that lives shorter (a 6-day certificate is renewed after 4 days, not at every pass).
   */
  private renewAt(certificate: StoredCertificate): number {
    const notAfter = Date.parse(certificate.notAfter);
    const lifetime = notAfter - Date.parse(certificate.notBefore);
    return notAfter - Math.min(this.options.renewBeforeDays * DAY, lifetime / 3);
  }

  private async needsOrder(
    name: string,
    certificate: StoredCertificate | undefined,
    now: Date,
  ): Promise<boolean> {
    if (certificate && this.renewAt(certificate) > now.getTime()) return false;
    const failure = await this.options.store.failure(name);
    return !failure || Date.parse(failure.retryAt) <= now.getTime();
  }

  /** Orders under the name's lease; the lease, challenges and a failure's backoff are in the store. */
  private async orderOne(name: string): Promise<'issued' | 'failed' | 'rate-limited' | 'busy'> {
    const { store, orderTimeoutMs } = this.options;
    const started = this.now();
    if (!(await store.claimOrder(name, this.holder, orderTimeoutMs, started))) return 'busy';
    try {
      // Another replica may have finished this name between our look and our lease.
      const previous = await store.certificate(name);
      if (!(await this.needsOrder(name, previous, started))) return 'busy';
      const certificate = await this.issueWithin(name, started);
      await store.putCertificate(certificate);
      await store.clearFailure(name);
      await this.emit({
        name,
        kind: previous ? 'renewed' : 'issued',
        at: this.now().toISOString(),
        notAfter: certificate.notAfter,
      });
      return 'issued';
    } catch (e) {
      return this.failed(name, e);
    } finally {
      await store.deleteChallenges(name, this.now());
      await store.releaseOrder(name, this.holder);
    }
  }

  /**
   * The order, given up after `orderTimeoutMs`: then its CA requests are aborted, and the lease is renewed while the
   * order winds down (between requests acme-client may sleep a poll interval), so that no replica starts a second
   * order for the name before this one has really ended.
   */
  private async issueWithin(name: string, started: Date): Promise<StoredCertificate> {
    const { store, orderTimeoutMs } = this.options;
    const controller = new AbortController();
    const expiresAt = new Date(started.getTime() + orderTimeoutMs);
    const order = this.account.issue(name, store, expiresAt, started, controller.signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), orderTimeoutMs);
    });
    try {
      const first = await Promise.race([order, timeout]);
      if (first !== 'timeout') return first;
    } finally {
      clearTimeout(timer);
    }
    controller.abort();
    await store.claimOrder(name, this.holder, orderTimeoutMs, this.now());
    await order.catch(() => {});
    throw new Error(`the order took longer than ${Math.round(orderTimeoutMs / 1000)} s`);
  }

  private async failed(name: string, e: unknown): Promise<'failed' | 'rate-limited'> {
    const now = this.now();
    const rateLimitedMs = e instanceof AcmeFailure ? e.rateLimitedMs : null;
    const failure = await this.options.store.recordFailure(name, oneLine(e), now, (failures) => {
      const backoff = Math.min(
        this.options.retryMinMs * 2 ** Math.min(failures - 1, 30),
        this.options.retryMaxMs,
      );
      return new Date(now.getTime() + Math.max(backoff, rateLimitedMs ?? 0));
    });
    if (rateLimitedMs !== null) {
      const until = new Date(now.getTime() + Math.max(rateLimitedMs, this.options.retryMinMs));
      await this.options.store.blockCa(this.options.directoryUrl, until, failure.lastError, now);
    }
    await this.emit({
      name,
      kind: 'failed',
      at: now.toISOString(),
      error: failure.lastError,
      retryAt: failure.retryAt,
    });
    return rateLimitedMs === null ? 'failed' : 'rate-limited';
  }

  private async emit(event: CertificateEvent): Promise<void> {
    try {
      await this.options.onEvent?.(event);
    } catch (e) {
      this.options.log?.(`hosting certificates: the event sink failed for ${event.name}: ${oneLine(e)}`);
    }
  }
}
