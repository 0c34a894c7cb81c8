import { createHash } from 'node:crypto';
import type { Report } from '../core/check.js';
import type { PolicyMode } from '../core/policy.js';

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
}

export function snapshotOf(report: Report): Snapshot {
  const e = report.evidence;
  const text = e.policy.text;
  const certs: CertSeen[] = [];
  const policyCert = e.policy.fetch?.tls?.certificate;
  if (policyCert?.fingerprint) {
    certs.push({
      role: 'policy',
      host: e.policy.host,
      fingerprint: policyCert.fingerprint,
      notAfter: policyCert.notAfter,
    });
  }
  for (const h of e.mx.hosts) {
    const seen = new Set<string>();
    for (const p of h.probes) {
      const c = p.tls?.certificate;
      if (!c?.fingerprint || seen.has(c.fingerprint)) continue;
      seen.add(c.fingerprint);
      certs.push({ role: 'mx', host: h.host, fingerprint: c.fingerprint, notAfter: c.notAfter });
    }
  }
  return {
    domain: report.domain,
    takenAt: report.checkedAt,
    status: report.status,
    stsId: e.sts.id,
    policyHash: text === null ? null : createHash('sha256').update(text).digest('hex'),
    policyText: text,
    mode: e.policy.valid ? (e.policy.policy?.mode ?? null) : null,
    maxAge: e.policy.valid ? (e.policy.policy?.maxAge ?? null) : null,
    mx: report.findings.some((f) => f.code === 'DNS_LOOKUP_FAILED' && f.subject === report.domain)
      ? null
      : e.mx.hosts.map((h) => h.host).sort(),
    certs,
    findings: report.findings.map((f) => `${f.code} ${f.subject}`),
  };
}
