import type { Engine } from '../engine.js';
import type { CheckStore } from '../store/checks.js';
import type { SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';

/** What the Slack listeners work with; built once in main.ts (or by a test). */
export interface SlackContext {
  engine: Engine;
  subscriptions: SubscriptionStore;
  checks: CheckStore;
  tlsrpt: TlsRptStore;
  maxDomainsPerTeam: number;
  now: () => Date;
}
