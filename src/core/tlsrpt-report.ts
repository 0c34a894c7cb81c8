import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { nestingDepth } from './json-depth.js';
import { parseDateTime, periodProblem } from './tlsrpt-dates.js';

/**
 * TLS-RPT aggregate reports (RFC 8460 §4): validated with zod, accepting what real reporters send (an `mx-host`
 * string where the schema says array, missing optional fields, failure details that do not add up to the summary)
 * and refusing what is not a report, or not one a sender can have made: counts beyond a day of mail, periods that
 * have not ended, dates that are not RFC 3339.
 */

/** What a report may hold; the settings (MTASTS_TLSRPT_*) choose them, the clock judges the period. */
export interface ReportLimits {
  /** Largest report in bytes, as JSON (a gzip body is inflated only up to this). */
  maxBytes: number;
  /** Largest session count in a summary or a failure detail. */
  maxSessions: number;
  /** Longest period a report may cover. */
  maxPeriodDays: number;
  now: Date;
}

/**
 * A report nests five levels (report > policies > policy > failure-details > detail); twice that leaves room for
 * reporters' extensions, and nothing deeper is ever parsed.
 */
export const MAX_NESTING = 10;

export const DEFAULT_LIMITS: Omit<ReportLimits, 'now'> = {
  maxBytes: 1024 * 1024,
  maxSessions: 1_000_000_000,
  maxPeriodDays: 3,
};

const dateTime = z
  .string()
  .max(64)
  .refine((s) => parseDateTime(s) !== null, 'must be an RFC 3339 date-time such as 2026-11-28T00:00:00Z');

function buildSchema(maxSessions: number) {
  const count = z
    .number()
    .int('must be a whole number')
    .min(0, 'must not be negative')
    .max(maxSessions, `must be at most ${maxSessions}: more TLS sessions than one sender reports in a day`);
  const host = z.string().max(253);
  const failureDetail = z.object({
    'result-type': z.string().min(1).max(200),
    'sending-mta-ip': z.string().max(100).optional(),
    'receiving-mx-hostname': host.optional(),
    'receiving-mx-helo': host.optional(),
    'receiving-ip': z.string().max(100).optional(),
    'failed-session-count': count,
    'additional-information': z.string().max(2000).optional(),
    'failure-reason-code': z.string().max(500).optional(),
  });
  const policyEntry = z.object({
    policy: z.object({
      'policy-type': z.string().min(1).max(50),
      'policy-string': z.array(z.string().max(1000)).max(1000).optional(),
      'policy-domain': z
        .string()
        .min(1)
        .max(253)
        .regex(/^[\p{L}\p{N}_.-]+$/u, 'must be a domain name'),
      // RFC 8460's example gives a string where its schema says an array; both are seen in the wild.
      'mx-host': z.union([host, z.array(host).max(100)]).optional(),
    }),
    summary: z.object({
      'total-successful-session-count': count,
      'total-failure-session-count': count,
    }),
    'failure-details': z.array(failureDetail).max(10000).optional(),
  });
  return z.object({
    'organization-name': z.string().min(1).max(500),
    'date-range': z.object({ 'start-datetime': dateTime, 'end-datetime': dateTime }),
    'contact-info': z.string().max(500).optional(),
    'report-id': z.string().min(1).max(500),
    policies: z.array(policyEntry).min(1).max(10000),
  });
}

type ReportSchema = ReturnType<typeof buildSchema>;
const schemas = new Map<number, ReportSchema>();

/** The report schema for a session-count bound (built once per bound). */
export function reportSchema(maxSessions = DEFAULT_LIMITS.maxSessions): ReportSchema {
  let schema = schemas.get(maxSessions);
  if (!schema) {
    schema = buildSchema(maxSessions);
    schemas.set(maxSessions, schema);
  }
  return schema;
}

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
  /** The UTC day (YYYY-MM-DD) the sessions belong to: that of the last instant the period covers. */
  day: string;
  policies: PolicyResult[];
}

export type DecodeResult =
  | { ok: true; report: TlsRptReport }
  | { ok: false; status: 400 | 413 | 415; error: string };

type Refusal = Extract<DecodeResult, { ok: false }>;

/** The media types a report arrives with (RFC 8460 §5.3), and the generic ones some reporters use. */
export function bodyKind(contentType: string | null | undefined, body: Uint8Array): 'gzip' | 'json' | null {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const gzipMagic = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  if (type === 'application/tlsrpt+gzip' || type === 'application/gzip' || type === 'application/x-gzip')
    return 'gzip';
  if (type === 'application/tlsrpt+json' || type === 'application/json') return gzipMagic ? 'gzip' : 'json';
  if (type === 'application/octet-stream' || type === '')
    return gzipMagic ? 'gzip' : body.length > 0 && body[0] === 0x7b ? 'json' : null;
  return null;
}

/**
 * Inflates (zlib stops at `maxBytes` of output: a gzip bomb is never inflated whole), checks the nesting before
 * parsing, parses and validates one report body. Pure and synchronous (the intake runs it in a worker thread); never
 * throws.
 */
export function decodeReport(
  body: Uint8Array,
  kind: 'gzip' | 'json',
  limits: ReportLimits = { ...DEFAULT_LIMITS, now: new Date() },
): DecodeResult {
  const json = inflate(body, kind, limits.maxBytes);
  if (!(json instanceof Uint8Array)) return json;
  const depth = nestingDepth(json, MAX_NESTING);
  if (depth > MAX_NESTING) {
    return {
      ok: false,
      status: 400,
      error: `the JSON nests deeper than ${MAX_NESTING} levels; a TLS-RPT report needs 5`,
    };
  }
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch {
    return { ok: false, status: 400, error: 'the body is not JSON' };
  }
  return validate(data, limits);
}

function inflate(body: Uint8Array, kind: 'gzip' | 'json', maxBytes: number): Uint8Array | Refusal {
  if (kind === 'json') {
    if (body.length <= maxBytes) return body;
    return { ok: false, status: 413, error: `the report is larger than ${maxBytes} bytes` };
  }
  try {
    return gunzipSync(body, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      return { ok: false, status: 413, error: `the report decompresses to more than ${maxBytes} bytes` };
    }
    return { ok: false, status: 400, error: `the gzip body is not valid (${e.message})` };
  }
}

function validate(data: unknown, limits: ReportLimits): DecodeResult {
  const parsed = reportSchema(limits.maxSessions).safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'the report';
    const input = issue?.input;
    const seen =
      typeof input === 'string' || typeof input === 'number'
        ? ` (got ${JSON.stringify(input).slice(0, 40)})`
        : '';
    return {
      ok: false,
      status: 400,
      error: `not a TLS-RPT report: ${where}: ${issue?.message ?? 'invalid'}${seen}`,
    };
  }
  const r = parsed.data;
  const range = r['date-range'];
  const start = parseDateTime(range['start-datetime']) ?? 0;
  const end = parseDateTime(range['end-datetime']) ?? 0;
  const problem = periodProblem(start, end, limits.now, limits.maxPeriodDays);
  if (problem) {
    return { ok: false, status: 400, error: `refused: date-range.${problem[0]} ${problem[1]}` };
  }
  return { ok: true, report: normalize(r, start, end) };
}

function normalize(r: z.infer<ReportSchema>, start: number, end: number): TlsRptReport {
  return {
    organization: r['organization-name'],
    contactInfo: r['contact-info'] ?? null,
    reportId: r['report-id'],
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    day: new Date(end > start ? end - 1 : end).toISOString().slice(0, 10),
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
      // The result type is the reporter's text: the renderer shows it quoted, never as the explanation.
      return { what: 'a result type RFC 8460 does not define', fix: "see the reporter's details" };
  }
}
