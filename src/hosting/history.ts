import type { Db } from '../store/db.js';
import { MonitorStore } from '../store/monitor.js';
import { SubscriptionStore } from '../store/subscriptions.js';
import { TlsRptStore } from '../store/tlsrpt.js';
import type { RolloutInputs } from './service.js';

/**
 * The rollout rule's inputs for a hosted domain, read as `mtasts records` reads them: whether the domain is watched
 * (so that the monitor's clean-since mark counts), that mark, and the end of the last TLS-RPT period with failures.
 */
export function rolloutInputsFrom(db: Db): (domain: string) => Promise<RolloutInputs> {
  const subscriptions = new SubscriptionStore(db);
  const monitor = new MonitorStore(db);
  const tlsrpt = new TlsRptStore(db);
  return async (domain) => {
    const watched = (await subscriptions.forDomain(domain)).length > 0;
    return {
      watched,
      cleanSince: watched ? (await monitor.loadState(domain)).cleanSince : null,
      lastReportedFailureAt: await tlsrpt.lastFailureAt(domain),
    };
  };
}
