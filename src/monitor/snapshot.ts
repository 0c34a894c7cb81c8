import { createHash } from 'node:crypto';
import type { Report } from '../core/check.js';
import type { CertSeen, Snapshot } from '../store/monitor-state.js';

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
