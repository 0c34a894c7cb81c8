import { gunzipSync } from 'node:zlib';
import { z } from 'zod';

/**
 * TLS-RPT aggregate reports (RFC 8460 §4): validated with zod, accepting what real reporters send (an `mx-host`
 * string where the schema says array, missing optional fields, failure details that do not add up to the summary)
 * and refusing what is not a report.
 */

export const MAX_COMPRESSED_BYTES = 1024 * 1024;
export const MAX_REPORT_BYTES = 16 * 1024 * 1024;

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const dateTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an RFC 3339 date-time');

const failureDetail = z.object({
  'result-type': z.string().min(1).max(200),
  'sending-mta-ip': z.string().max(100).optional(),
  'receiving-mx-hostname': z.string().max(300).optional(),
  'receiving-mx-helo': z.string().max(300).optional(),
  'receiving-ip': z.string().max(100).optional(),
  'failed-session-count': count,
  'additional-information': z.string().max(2000).optional(),
  'failure-reason-code': z.string().max(500).optional(),
});

const policyEntry = z.object({
  policy: z.object({
    'policy-type': z.string().min(1).max(50),
    'policy-string': z.array(z.string().max(1000)).max(1000).optional(),
    'policy-domain': z.string().min(1).max(253),
    // RFC 8460's example gives a string where its schema says an array; both are seen in the wild.
    'mx-host': z.union([z.string(), z.array(z.string())]).optional(),
  }),
  summary: z.object({
    'total-successful-session-count': count,
    'total-failure-session-count': count,
  }),
  'failure-details': z.array(failureDetail).max(10000).optional(),
});

export const reportSchema = z.object({
  'organization-name': z.string().min(1).max(500),
  'date-range': z.object({ 'start-datetime': dateTime, 'end-datetime': dateTime }),
  'contact-info': z.string().max(500).optional(),
  'report-id': z.string().min(1).max(500),
  policies: z.array(policyEntry).min(1).max(10000),
});

export interface FailureDetail {
  resultType: string;
  sendingIp: string | null;
  receivingMx: string | null;
  receivingHelo: string | null;
  receivingIp: string | null;
  count: number;
  reasonCode: string | null;
  additionalInfo: string | null;
}

export interface PolicyResult {
  policyType: string;
  policyDomain: string;
  policyString: string[];
  mxHosts: string[];
  successful: number;
  failed: number;
  failures: FailureDetail[];
}

export interface TlsRptReport {
  organization: string;
  contactInfo: string | null;
  reportId: string;
  start: string;
  end: string;
  policies: PolicyResult[];
}

export type DecodeResult =
  | { ok: true; report: TlsRptReport }
  | { ok: false; status: 400 | 413 | 415; error: string };

/** The media types a report arrives with (RFC 8460 §5.3), and the generic ones some reporters use. */
export function bodyKind(contentType: string | null | undefined, body: Buffer): 'gzip' | 'json' | null {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const gzipMagic = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  if (type === 'application/tlsrpt+gzip' || type === 'application/gzip' || type === 'application/x-gzip')
    return 'gzip';
  if (type === 'application/tlsrpt+json' || type === 'application/json') return gzipMagic ? 'gzip' : 'json';
  if (type === 'application/octet-stream' || type === '')
    return gzipMagic ? 'gzip' : body.length > 0 && body[0] === 0x7b ? 'json' : null;
  return null;
}

/** Decompresses (capped: a gzip bomb is refused), parses and validates one report body. Never throws. */
export function decodeReport(body: Buffer, kind: 'gzip' | 'json'): DecodeResult {
  let json: Buffer = body;
  if (kind === 'gzip') {
    try {
      json = gunzipSync(body, { maxOutputLength: MAX_REPORT_BYTES });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
        return {
          ok: false,
          status: 413,
          error: `the report decompresses to more than ${MAX_REPORT_BYTES} bytes`,
        };
      }
      return { ok: false, status: 400, error: `the gzip body is not valid (${e.message})` };
    }
  } else if (json.length > MAX_REPORT_BYTES) {
    return { ok: false, status: 413, error: `the report is larger than ${MAX_REPORT_BYTES} bytes` };
  }
  let data: unknown;
  try {
    data = JSON.parse(json.toString('utf8'));
  } catch {
    return { ok: false, status: 400, error: 'the body is not JSON' };
  }
  const parsed = reportSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'the report';
    return {
      ok: false,
      status: 400,
      error: `not a TLS-RPT report: ${where}: ${issue?.message ?? 'invalid'}`,
    };
  }
  const r = parsed.data;
  return {
    ok: true,
    report: {
      organization: r['organization-name'],
      contactInfo: r['contact-info'] ?? null,
      reportId: r['report-id'],
      start: new Date(r['date-range']['start-datetime']).toISOString(),
      end: new Date(r['date-range']['end-datetime']).toISOString(),
      policies: r.policies.map((p) => {
        const mx = p.policy['mx-host'];
        return {
          policyType: p.policy['policy-type'],
          policyDomain: p.policy['policy-domain'].toLowerCase().replace(/\.$/, ''),
          policyString: p.policy['policy-string'] ?? [],
          mxHosts: mx === undefined ? [] : Array.isArray(mx) ? mx : [mx],
          successful: p.summary['total-successful-session-count'],
          failed: p.summary['total-failure-session-count'],
          failures: (p['failure-details'] ?? []).map((f) => ({
            resultType: f['result-type'],
            sendingIp: f['sending-mta-ip'] ?? null,
            receivingMx: f['receiving-mx-hostname']?.toLowerCase().replace(/\.$/, '') ?? null,
            receivingHelo: f['receiving-mx-helo'] ?? null,
            receivingIp: f['receiving-ip'] ?? null,
            count: f['failed-session-count'],
            reasonCode: f['failure-reason-code'] ?? null,
            additionalInfo: f['additional-information'] ?? null,
          })),
        };
      }),
    },
  };
}

/** What a result type means and what to do about it, in plain words (RFC 8460 §4.3). */
export function explainResult(resultType: string): { what: string; fix: string } {
  switch (resultType) {
    case 'certificate-expired':
      return { what: 'the MX certificate had expired', fix: 'renew it' };
    case 'certificate-host-mismatch':
      return {
        what: 'the MX certificate does not name the host',
        fix: 'issue a certificate for the MX name',
      };
    case 'certificate-not-trusted':
      return { what: 'the MX certificate is not trusted', fix: 'use a public CA and serve the full chain' };
    case 'validation-failure':
      return {
        what: 'the certificate or policy did not validate',
        fix: 'check the certificate chain and the policy',
      };
    case 'starttls-not-supported':
      return { what: 'the MX did not offer STARTTLS', fix: 'enable STARTTLS on it' };
    case 'sts-policy-fetch-error':
      return {
        what: 'senders could not fetch the MTA-STS policy',
        fix: 'check the policy host, its certificate and HTTP answer',
      };
    case 'sts-policy-invalid':
      return { what: 'the MTA-STS policy is invalid', fix: 'fix the policy syntax (`mtasts check`)' };
    case 'sts-webpki-invalid':
      return {
        what: 'the policy host certificate did not validate',
        fix: 'renew or fix the mta-sts certificate',
      };
    case 'tlsa-invalid':
    case 'dnssec-invalid':
    case 'dane-required':
      return { what: `DANE failed (${resultType})`, fix: 'check the TLSA records and DNSSEC' };
    default:
      return { what: resultType, fix: "see the reporter's details" };
  }
}
