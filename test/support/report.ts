import type { MxHostEvidence, Report } from '../../src/core/check.js';
import type { Policy } from '../../src/core/policy.js';

/** A check report made by hand for the pure functions' tests: an empty, valid shape with what a test sets. */
export function reportOf(options: {
  domain?: string;
  mx?: string[];
  policy?: Policy | null;
  policyText?: string | null;
  stsId?: string | null;
  status?: Report['status'];
}): Report {
  const domain = options.domain ?? 'example.com';
  const hosts: MxHostEvidence[] = (options.mx ?? []).map((host, i) => ({
    host,
    priority: 10 * (i + 1),
    addresses: [],
    notAllowed: [],
    coveredBy: null,
    probes: [],
    error: null,
  }));
  return {
    domain,
    domainUnicode: domain,
    checkedAt: '2026-11-01T00:00:00.000Z',
    status: options.status ?? 'pass',
    findings: [],
    durationMs: 1,
    evidence: {
      sts: { name: `_mta-sts.${domain}`, records: [], error: null, id: options.stsId ?? null },
      tlsrpt: { name: `_smtp._tls.${domain}`, records: [], error: null, rua: null },
      policy: {
        host: `mta-sts.${domain}`,
        addresses: [],
        notAllowed: [],
        fetch: null,
        text: options.policyText ?? null,
        policy: options.policy ?? null,
        valid: options.policy !== undefined && options.policy !== null,
        error: null,
      },
      mx: { hosts, nullMx: false, error: null },
      smtpProbe: 'on',
    },
  };
}

/** A TLS-RPT aggregate report (RFC 8460 §4.4) as a sender posts it, with one policy; a test sets what it needs. */
export function tlsrptReport(options: {
  domain: string;
  id: string;
  start: string;
  end: string;
  organization?: string;
  successful?: number;
  failed?: number;
  failures?: Record<string, unknown>[];
}): Buffer {
  return Buffer.from(
    JSON.stringify({
      'organization-name': options.organization ?? 'Reporter Inc.',
      'date-range': { 'start-datetime': options.start, 'end-datetime': options.end },
      'contact-info': 'tlsrpt@reporter.example',
      'report-id': options.id,
      policies: [
        {
          policy: {
            'policy-type': 'sts',
            'policy-domain': options.domain,
            'mx-host': [`mx.${options.domain}`],
          },
          summary: {
            'total-successful-session-count': options.successful ?? 90,
            'total-failure-session-count': options.failed ?? 10,
          },
          'failure-details': options.failures ?? [
            {
              'result-type': 'certificate-expired',
              'receiving-mx-hostname': `mx.${options.domain}`,
              'failed-session-count': options.failed ?? 10,
            },
          ],
        },
      ],
    }),
  );
}
