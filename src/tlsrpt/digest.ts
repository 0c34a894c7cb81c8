import type { DigestPayload } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import { isActive, type SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';

/**
 * The daily TLS-RPT digest: for each watched domain with reports received since its last digest, one message per
 * channel watching it (sessions per reporter, failures by result type and MX host), queued in the outbox.
 */
export async function queueDigests(
  tlsrpt: TlsRptStore,
  subscriptions: SubscriptionStore,
  now: Date,
  retentionDays = 400,
  pageSize = 500,
): Promise<number> {
  await tlsrpt.prune(new Date(now.getTime() - retentionDays * 86_400_000));
  let queued = 0;
  let cursor = '';
  for (;;) {
    const domains = await subscriptions.domainsAfter(cursor, pageSize);
    if (domains.length === 0) break;
    for (const domain of domains) {
      const from = (await tlsrpt.lastDigest(domain)) ?? new Date(now.getTime() - 86_400_000).toISOString();
      const summary = await tlsrpt.summary(domain, '0000-01-01', from);
      if (summary.reports === 0) continue;
      const payload: DigestPayload = { kind: 'tlsrpt-digest', domain, summary, from, to: now.toISOString() };
      const alerts: NewAlert[] = (await subscriptions.forDomain(domain))
        .filter((s) => isActive(s, now))
        .map((s) => ({
          eventKey: `tlsrpt-digest@${now.toISOString()}`,
          teamId: s.teamId,
          channelId: s.channelId,
          threadEventKey: null,
          broadcast: false,
          payload,
        }));
      await tlsrpt.commitDigest(domain, now, alerts);
      queued += alerts.length;
    }
    cursor = domains[domains.length - 1] ?? cursor;
  }
  return queued;
}
