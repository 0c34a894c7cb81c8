/** The shapes a records plan is made of, shared by its builders (records.ts, steps.ts, snippets.ts). */

export interface DnsRecord {
  /** Fully qualified, no trailing dot. */
  name: string;
  /** Relative to the zone, as a DNS panel asks for it ("@" at the apex). */
  host: string;
  type: 'TXT' | 'MX';
  /** The TXT text, or the MX host name. */
  value: string;
  /** An MX record's preference. */
  priority?: number;
  ttl: number;
  purpose: string;
}

export interface HostingSnippets {
  nginx: string;
  apache: string;
  caddy: string;
}

/**
 * One step of a plan: what goes live together, in this order: the policy file (served by the snippets), then the DNS
 * records. Each step is complete: copy-ready and safe from `notBefore` on.
 */
export interface PlanStep {
  number: number;
  title: string;
  /** The earliest safe time (ISO 8601, UTC), counted from the plan's time for the step before; null: now. */
  notBefore: string | null;
  /** What to do, in order. */
  actions: string[];
  /** Whether this step serves a policy file other than the step before (or the published one). */
  policyChanges: boolean;
  /** The policy file senders fetch during this step. */
  policyText: string;
  /** The sts id announced during this step. */
  id: string;
  /** The DNS records this step sets (each replaces the records of its name and type). */
  records: DnsRecord[];
  /** `records` as a BIND zone file fragment. */
  bind: string;
  /** Web-server configurations serving this step's policy file. */
  snippets: HostingSnippets;
}
