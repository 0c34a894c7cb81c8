import type { Report } from '../core/check.js';
import type { Domain } from '../core/domain.js';
import type { Engine } from '../engine.js';
import type { CheckStore } from '../store/checks.js';
import type { InstallationStoreSqlite } from '../store/installations.js';
import type { SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';

/** What the Slack listeners work with; built once in main.ts (or by a test). */
export interface SlackContext {
  engine: Engine;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  tlsrpt: TlsRptStore;
  /** Multi-workspace mode: where installations are kept; null with a single SLACK_BOT_TOKEN. */
  installations: InstallationStoreSqlite | null;
  maxDomainsPerTeam: number;
  now: () => Date;
}

/** Checks a domain and keeps the result as its last check: what every re-check in Slack does. */
export async function checkAndRemember(ctx: SlackContext, domain: Domain): Promise<Report> {
  const report = await ctx.engine.check(domain);
  ctx.checks.save(report);
  return report;
}
