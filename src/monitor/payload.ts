import type { PolicyMode } from '../core/policy.js';
import type { DomainReportSummary } from '../tlsrpt/summary.js';
import type { MonitorEvent } from './diff.js';

/** What the outbox keeps of an alert: the data, rendered for Slack only when it is sent. */
export type AlertPayload = EventPayload | DigestPayload | FailureRatePayload;

/** A monitor event: a condition opened, escalated, reminded or recovered, a change, ready to enforce. */
export interface EventPayload {
  kind?: 'event';
  domain: string;
  domainUnicode: string;
  mode: PolicyMode | null;
  event: MonitorEvent;
  /** ready: the records to publish for enforce. */
  ready?: { id: string; bind: string; policyText: string };
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
