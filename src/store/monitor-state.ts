import type { ImpactNow, PolicySeen, Report } from '../core/check.js';
import type { FindingCode, Severity } from '../core/findings.js';
import type { PolicyMode } from '../core/policy.js';
import type { DomainReportSummary } from './tlsrpt.js';

/**
 * The monitor's state and alerts as the store keeps them: what a pass remembers of a check (snapshot), the
 * conditions it follows between passes, the events it raises and the alert payloads the outbox holds. The store owns
 * these shapes, so that it imports only core/; the monitor (monitor/diff.ts, snapshot.ts) computes them.
 */

export interface CertSeen {
  role: 'policy' | 'mx';
  host: string;
  fingerprint: string;
  notAfter: string;
}

/** What one check of a domain looked like, reduced to what the monitor compares between passes. */
export interface Snapshot {
  domain: string;
  takenAt: string;
  status: Report['status'];
  /** The `_mta-sts` id, or null when there is no valid record. */
  stsId: string | null;
  /** SHA-256 of the policy text, and the text itself, when it was read. */
  policyHash: string | null;
  policyText: string | null;
  mode: PolicyMode | null;
  maxAge: number | null;
  /** MX hosts, sorted; null when the MX lookup failed (nothing to compare). */
  mx: string[] | null;
  certs: CertSeen[];
  /** "CODE subject" of every finding. */
  findings: string[];
  /**
   * While this snapshot's own policy is not in force: the last policy in force a pass saw (what senders may still
   * hold in their caches), or null when none has been seen since monitoring began. Absent while one is in force.
   */
  lastPolicy?: PolicySeen | null;
}

export interface ConditionInfo {
  kind: 'finding' | 'cert' | 'sts-id';
  title: string;
  subject: string;
  severity: Severity;
  message: string;
  fix: string;
  code?: FindingCode;
  /** cert: the certificate and the most severe level alerted so far. */
  cert?: CertSeen & { level: CertLevel };
  /** sts-id: the id that was not updated. */
  stsId?: string;
}

export type CertLevel = 30 | 14 | 7 | 3 | 1 | 'expired';

export interface Condition {
  key: string;
  state: 'pending' | 'open';
  count: number;
  firstSeenAt: string;
  openedAt: string | null;
  lastRemindedAt: string | null;
  openerKey: string | null;
  info: ConditionInfo;
}

export interface DomainState {
  snapshot: Snapshot | null;
  conditions: Condition[];
  cleanSince: string | null;
  readyAnnounced: string | null;
}

export interface MonitorEvent {
  key: string;
  kind: 'opened' | 'escalated' | 'reminder' | 'recovered' | 'changed' | 'ready';
  /** The event whose message this one belongs under (its thread), if any. */
  threadKey: string | null;
  info: ConditionInfo;
  /** recovered: how long the condition lasted; reminder: how long it has lasted. */
  durationMs?: number;
  /** recovered: what replaced it (a new certificate) or why it closed. */
  resolution?: string;
  /** changed: MX hosts added and removed. */
  mxChange?: { added: string[]; removed: string[] };
}

/** What the outbox keeps of an alert: the data, rendered for Slack only when it is sent. */
export type AlertPayload =
  | EventPayload
  | DigestPayload
  | FailureRatePayload
  | MailboxFailingPayload
  | MailboxRecoveredPayload
  | HostingPayload;

/** A monitor event: a condition opened, escalated, reminded or recovered, a change, ready to enforce. */
export interface EventPayload {
  kind?: 'event';
  domain: string;
  domainUnicode: string;
  mode: PolicyMode | null;
  event: MonitorEvent;
  /** ready: the records to publish for enforce. */
  ready?: { id: string; bind: string; policyText: string };
  /** What the check behind the event meant for mail when it was made (core/check.ts impactNow). */
  impact?: ImpactNow;
}

/** The daily TLS-RPT digest of one domain. */
export interface DigestPayload {
  kind: 'tlsrpt-digest';
  domain: string;
  summary: DomainReportSummary;
  from: string;
  to: string;
}

/** Reported failures crossed the alert threshold. */
export interface FailureRatePayload {
  kind: 'tlsrpt-rate';
  domain: string;
  summary: DomainReportSummary;
  rate: number;
  threshold: number;
}

/**
 * The TLS-RPT mailbox read over IMAP (MTASTS_TLSRPT_IMAP_URL) has failed every pass for a day: to the operator's
 * channel (MTASTS_OPERATOR_CHANNEL), once per failure.
 */
export interface MailboxFailingPayload {
  kind: 'imap-failing';
  /** imaps://user@host:port: no secret in it. */
  account: string;
  folder: string;
  /** The first failed pass of this failure. */
  since: string;
  /** The pass that found it had lasted long enough. */
  at: string;
  /** What went wrong in that pass: text the server chose may be in it. */
  error: string;
}

/** The mailbox is read again after a failure that was alerted: in the alert's thread. */
export interface MailboxRecoveredPayload {
  kind: 'imap-recovered';
  account: string;
  folder: string;
  since: string;
  /** The pass that read it again. */
  at: string;
  /** The last error of the failure. */
  error: string | null;
}

/** What a hosted domain's owning channels hear (hosted MTA-STS, issue 15). */
export const HOSTING_ALERT_KINDS = [
  'hosting-active',
  'hosting-name-lost',
  'hosting-name-back',
  'hosting-removed',
  'certificate-issued',
  'certificate-failed',
  'hosting-proposal',
  'hosting-applied',
  'hosting-id-reminder',
  'hosting-id-carried',
  'hosting-dropped',
] as const;

export type HostingAlertKind = (typeof HOSTING_ALERT_KINDS)[number];

/**
 * A hosted domain's news: enrolled (the policy host points at the bot), the name lost or back, removed, a certificate
 * issued or failed, an MX change proposed or applied, the new id not yet in DNS (a reminder) or now in DNS; and, to
 * the owner of a pending request that another enrollment's proof in DNS beat, that it was dropped (hosting-dropped:
 * only the domain, its policy host and when, nothing of the other enrollment).
 */
export interface HostingPayload {
  kind: HostingAlertKind;
  domain: string;
  policyHost: string;
  /** When it happened (ISO 8601). */
  at: string;
  /** The id served now: the `_mta-sts` TXT must carry it. */
  stsId?: string;
  /** hosting-id-reminder: the id DNS carried at the check; null when it carried none. */
  seenId?: string | null;
  mode?: PolicyMode;
  /** The mx patterns served now. */
  mx?: string[];
  /** hosting-proposal, hosting-applied: the MX change and its next step ('wait' until `until`). */
  change?: {
    add: string[];
    drop: string[];
    next: 'interim' | 'final' | 'wait';
    nextMx: string[];
    until: string | null;
  };
  /** certificate-issued: its notAfter; certificate-failed: what the CA said and when it is tried again. */
  notAfter?: string | null;
  error?: string | null;
  retryAt?: string | null;
  /** hosting-name-lost: what the look at the policy host found. */
  problem?: string | null;
  /** hosting-active: whether the channel watches the domain now, or the workspace's watch cap stopped it. */
  watch?: 'added' | 'exists' | 'resumed' | 'limit' | null;
}

export function isHostingPayload(payload: AlertPayload): payload is HostingPayload {
  return (HOSTING_ALERT_KINDS as readonly string[]).includes((payload as { kind?: string }).kind ?? '');
}
