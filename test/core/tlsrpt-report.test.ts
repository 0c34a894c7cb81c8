import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  bodyKind,
  DEFAULT_LIMITS,
  decodeReport,
  explainResult,
  MAX_NESTING,
  type ReportLimits,
  reportSchema,
} from '../../src/core/tlsrpt-report.js';

/**
 * TLS-RPT aggregate reports (RFC 8460 §4) as the intake decodes them: the public reports real senders made, the
 * fields a report has and how they come out, and every bound at its edge (size, nesting, session counts, the period).
 */

/** The public sample reports: the first shared/fixtures/tlsrpt above this file (also from a Stryker sandbox). */
function fixturesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'shared', 'fixtures', 'tlsrpt');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no shared/fixtures/tlsrpt above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
const FIXTURES = fixturesDir();
const fixture = (name: string) => readFileSync(join(FIXTURES, name));

const NOW = new Date('2026-11-29T12:00:00Z');
/**
 * The limits of these tests: 64 KiB, 3 days, and a session bound of each call's own (from 10001 up, far above the
 * counts of any report here). The schema is built once per bound (reportSchema), so a bound of its own has each test
 * build the schema it is checked against: what the test asserts of the schema is then asserted by that test, also when
 * run alone (as mutation testing runs it).
 */
let lastBound = 10_000;
const testLimits = (): ReportLimits => ({
  maxBytes: 64 * 1024,
  maxSessions: ++lastBound,
  maxPeriodDays: 3,
  now: NOW,
});

type Json = Record<string, unknown>;

/** A minimal valid report for 2026-11-28 (the day before NOW); `edit` changes what a test is about. */
function report(edit: (r: Json & { policies: Json[] }) => unknown = (r) => r): Buffer {
  const r = {
    'organization-name': 'Reporter Inc.',
    'date-range': { 'start-datetime': '2026-11-28T00:00:00Z', 'end-datetime': '2026-11-29T00:00:00Z' },
    'report-id': '2026-11-28_example.com',
    policies: [
      {
        policy: { 'policy-type': 'sts', 'policy-domain': 'example.com' },
        summary: { 'total-successful-session-count': 90, 'total-failure-session-count': 10 },
      },
    ],
  };
  const edited = edit(r as unknown as Json & { policies: Json[] });
  return Buffer.from(JSON.stringify(edited === undefined ? r : edited));
}
const policy0 = (r: { policies: Json[] }) =>
  r.policies[0] as { policy: Json; summary: Json; 'failure-details'?: Json[] };
const range = (start: string, end: string) => (r: Json) => {
  r['date-range'] = { 'start-datetime': start, 'end-datetime': end };
};
const refusal = (body: Uint8Array, limits: ReportLimits = testLimits(), kind: 'json' | 'gzip' = 'json') => {
  const d = decodeReport(body, kind, limits);
  return d.ok ? 'accepted' : `${d.status} ${d.error}`;
};

describe('the public sample reports are accepted, as JSON and gzipped', () => {
  const names = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  test('all seven are there (three JSON files, four decoded from e-mails)', () => {
    expect(names).toHaveLength(7);
  });
  test.each([
    [
      'isseis_tlsrpt-digest__testdata__tlsrpt_failure.DECODED-attachment.json',
      'Google Inc.',
      '2026-02-08',
      4523,
      2,
    ],
    [
      'isseis_tlsrpt-digest__testdata__tlsrpt_success_google_1.DECODED-attachment.json',
      'Google Inc.',
      '2026-05-11',
      1,
      0,
    ],
    [
      'isseis_tlsrpt-digest__testdata__tlsrpt_success_microsoft.DECODED-attachment.json',
      'Microsoft Corporation',
      '2026-05-13',
      2,
      0,
    ],
    [
      'parsedmarc__samples_smtp_tls__google.com_smtp_tls_report.DECODED-attachment.json',
      'Google Inc.',
      '2024-09-03',
      48,
      0,
    ],
    ['parsedmarc__samples_smtp_tls__mail.ru.json', 'Mail.ru', '2024-02-22', 0, 1],
    ['parsedmarc__samples_smtp_tls__rfc8460.json', 'Company-X', '2016-04-01', 5326, 303],
    ['parsedmarc__samples_smtp_tls__smtp_tls.json', 'Example Inc.', '2024-01-09', 0, 3],
  ])('%s: %s, %s, %i successful, %i failed', (name, organization, day, successful, failed) => {
    for (const [body, kind] of [
      [fixture(name), 'json'],
      [gzipSync(fixture(name)), 'gzip'],
    ] as const) {
      const d = decodeReport(body, kind, testLimits());
      if (!d.ok) throw new Error(d.error);
      expect(d.report).toMatchObject({ organization, day });
      expect(d.report.policies.map((p) => [p.successful, p.failed])).toEqual([[successful, failed]]);
    }
  });

  test("RFC 8460's own example, field by field (mx-host a string where the schema says an array)", () => {
    const d = decodeReport(fixture('parsedmarc__samples_smtp_tls__rfc8460.json'), 'json', testLimits());
    expect(d).toEqual({
      ok: true,
      report: {
        organization: 'Company-X',
        contactInfo: 'sts-reporting@company-x.example',
        reportId: '5065427c-23d3-47ca-b6e0-946ea0e8c4be',
        start: '2016-04-01T00:00:00.000Z',
        end: '2016-04-01T23:59:59.000Z',
        day: '2016-04-01',
        policies: [
          {
            policyType: 'sts',
            policyDomain: 'company-y.example',
            policyString: [
              'version: STSv1',
              'mode: testing',
              'mx: *.mail.company-y.example',
              'max_age: 86400',
            ],
            mxHosts: ['*.mail.company-y.example'],
            successful: 5326,
            failed: 303,
            failures: [
              {
                resultType: 'certificate-expired',
                sendingIp: '2001:db8:abcd:0012::1',
                receivingMx: 'mx1.mail.company-y.example',
                receivingHelo: null,
                receivingIp: null,
                count: 100,
                reasonCode: null,
                additionalInfo: null,
              },
              {
                resultType: 'starttls-not-supported',
                sendingIp: '2001:db8:abcd:0013::1',
                receivingMx: 'mx2.mail.company-y.example',
                receivingHelo: null,
                receivingIp: '203.0.113.56',
                count: 200,
                reasonCode: null,
                additionalInfo:
                  'https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported',
              },
              {
                resultType: 'validation-failure',
                sendingIp: '198.51.100.62',
                receivingMx: 'mx-backup.mail.company-y.example',
                receivingHelo: null,
                receivingIp: '203.0.113.58',
                count: 3,
                reasonCode: 'X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED',
                additionalInfo: null,
              },
            ],
          },
        ],
      },
    });
  });

  test('with the default limits (and the real clock), the samples are accepted too', () => {
    for (const name of names) expect(decodeReport(fixture(name), 'json').ok, name).toBe(true);
    expect(DEFAULT_LIMITS).toEqual({ maxBytes: 1024 * 1024, maxSessions: 1_000_000_000, maxPeriodDays: 3 });
  });
});

describe('the fields of a report (RFC 8460 §4.4)', () => {
  test('optional fields left out come out as null or empty; mx-host as an array is kept', () => {
    const d = decodeReport(
      report((r) => {
        policy0(r).policy['mx-host'] = ['mx1.example.com', 'mx2.example.com'];
        policy0(r)['failure-details'] = [
          { 'result-type': 'sts-policy-fetch-error', 'failed-session-count': 10 },
        ];
      }),
      'json',
      testLimits(),
    );
    expect(d).toEqual({
      ok: true,
      report: {
        organization: 'Reporter Inc.',
        contactInfo: null,
        reportId: '2026-11-28_example.com',
        start: '2026-11-28T00:00:00.000Z',
        end: '2026-11-29T00:00:00.000Z',
        day: '2026-11-28',
        policies: [
          {
            policyType: 'sts',
            policyDomain: 'example.com',
            policyString: [],
            mxHosts: ['mx1.example.com', 'mx2.example.com'],
            successful: 90,
            failed: 10,
            failures: [
              {
                resultType: 'sts-policy-fetch-error',
                sendingIp: null,
                receivingMx: null,
                receivingHelo: null,
                receivingIp: null,
                count: 10,
                reasonCode: null,
                additionalInfo: null,
              },
            ],
          },
        ],
      },
    });
  });

  test('no mx-host and no failure-details: none', () => {
    const d = decodeReport(report(), 'json', testLimits());
    expect(d.ok && d.report.policies[0]).toMatchObject({ mxHosts: [], failures: [] });
  });

  test('domain names are compared in lower case without a final dot; the HELO name is kept as sent', () => {
    const d = decodeReport(
      report((r) => {
        policy0(r).policy['policy-domain'] = 'Mail.Example.COM.';
        policy0(r)['failure-details'] = [
          {
            'result-type': 'certificate-host-mismatch',
            'receiving-mx-hostname': 'MX1.Mail.Example.com.',
            'receiving-mx-helo': 'MX1.Mail.Example.com.',
            'failed-session-count': 1,
          },
        ];
      }),
      'json',
      testLimits(),
    );
    if (!d.ok) throw new Error(d.error);
    expect(d.report.policies[0]?.policyDomain).toBe('mail.example.com');
    expect(d.report.policies[0]?.failures[0]).toMatchObject({
      receivingMx: 'mx1.mail.example.com',
      receivingHelo: 'MX1.Mail.Example.com.',
    });
  });

  test("fields the RFC does not define (reporters' extensions) are ignored", () => {
    const d = decodeReport(
      report((r) => {
        r['x-extension'] = { anything: [1, 2] };
        policy0(r).summary['x-count'] = 'n/a';
      }),
      'json',
      testLimits(),
    );
    expect(d.ok).toBe(true);
  });

  test.each([
    // The day the sessions belong to is that of the last instant the period covers.
    ['2026-11-28T00:00:00Z', '2026-11-29T00:00:00Z', '2026-11-28'],
    ['2026-11-28T00:00:00Z', '2026-11-28T23:59:59Z', '2026-11-28'],
    ['2026-11-28T00:00:00Z', '2026-11-29T00:00:00.001Z', '2026-11-29'],
    ['2026-11-28T22:00:00-05:00', '2026-11-29T22:00:00-05:00', '2026-11-30'],
    // A period of no length belongs to the day it is in.
    ['2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28'],
  ])('%s to %s: sessions of %s', (start, end, day) => {
    const d = decodeReport(report(range(start, end)), 'json', testLimits());
    expect(d.ok && d.report.day).toBe(day);
  });

  test.each([['example.com'], ['xn--bcher-kva.example'], ['bücher.example'], ['_smtp.mail-1.example.']])(
    'policy-domain %j is a domain name',
    (domain) => {
      expect(
        refusal(
          report((r) => {
            policy0(r).policy['policy-domain'] = domain;
          }),
        ),
      ).toBe('accepted');
    },
  );

  test.each([
    ['a b.example'],
    [' example.com'],
    ['example.com '],
    ['example.com/x'],
    ['*.example.com'],
    ['@'],
  ])('policy-domain %j is refused', (domain) => {
    expect(
      refusal(
        report((r) => {
          policy0(r).policy['policy-domain'] = domain;
        }),
      ),
    ).toBe(
      `400 not a TLS-RPT report: policies.0.policy.policy-domain: must be a domain name (got ${JSON.stringify(domain)})`,
    );
  });

  test.each<[string, (r: Json & { policies: Json[] }) => unknown, string]>([
    [
      'no organization-name',
      (r) => void delete r['organization-name'],
      'organization-name: Invalid input: expected string, received undefined',
    ],
    [
      'an empty organization-name',
      (r) => {
        r['organization-name'] = '';
      },
      'organization-name: Too small: expected string to have >=1 characters (got "")',
    ],
    [
      'an empty report-id',
      (r) => {
        r['report-id'] = '';
      },
      'report-id: Too small: expected string to have >=1 characters (got "")',
    ],
    [
      'a report-id that is not text',
      (r) => {
        r['report-id'] = true;
      },
      'report-id: Invalid input: expected string, received boolean',
    ],
    [
      'no policies',
      (r) => {
        r.policies = [];
      },
      'policies: Too small: expected array to have >=1 items',
    ],
    [
      'no summary',
      (r) => void delete (policy0(r) as Json).summary,
      'policies.0.summary: Invalid input: expected object, received undefined',
    ],
    [
      'an empty policy-type',
      (r) => {
        policy0(r).policy['policy-type'] = '';
      },
      'policies.0.policy.policy-type: Too small: expected string to have >=1 characters (got "")',
    ],
    [
      'a failure without its result-type',
      (r) => {
        policy0(r)['failure-details'] = [{ 'failed-session-count': 1 }];
      },
      'policies.0.failure-details.0.result-type: Invalid input: expected string, received undefined',
    ],
    [
      'a count as text',
      (r) => {
        policy0(r).summary['total-failure-session-count'] = '5';
      },
      'policies.0.summary.total-failure-session-count: Invalid input: expected number, received string (got "5")',
    ],
    [
      'a negative count',
      (r) => {
        policy0(r).summary['total-successful-session-count'] = -1;
      },
      'policies.0.summary.total-successful-session-count: must not be negative (got -1)',
    ],
    [
      'a fraction of a session',
      (r) => {
        policy0(r).summary['total-failure-session-count'] = 1.5;
      },
      'policies.0.summary.total-failure-session-count: must be a whole number (got 1.5)',
    ],
    // Not an object at all: the whole report is named.
    ['an array', (r) => [r], 'the report: Invalid input: expected object, received array'],
    ['a number', () => 42, 'the report: Invalid input: expected object, received number (got 42)'],
    ['null', () => null, 'the report: Invalid input: expected object, received null'],
    [
      'a string',
      () => 'report',
      'the report: Invalid input: expected object, received string (got "report")',
    ],
  ])('%s is refused, naming the field', (_, edit, error) => {
    expect(refusal(report(edit))).toBe(`400 not a TLS-RPT report: ${error}`);
  });

  test('what was seen is quoted up to 40 characters', () => {
    const id = 'x'.repeat(100);
    expect(
      refusal(
        report((r) => {
          policy0(r).policy['policy-domain'] = `${id} y`;
        }),
      ),
    ).toBe(
      `400 not a TLS-RPT report: policies.0.policy.policy-domain: must be a domain name (got "${'x'.repeat(39)})`,
    );
  });

  test('the schema for a session bound is built once', () => {
    expect(reportSchema(7)).toBe(reportSchema(7));
    expect(reportSchema(7)).not.toBe(reportSchema(8));
    expect(reportSchema()).toBe(reportSchema(DEFAULT_LIMITS.maxSessions));
  });
});

describe('session counts: at most maxSessions (a day of mail from one sender)', () => {
  const over = (field: string, bound: number) =>
    `400 not a TLS-RPT report: ${field}: must be at most ${bound}: more TLS sessions than one sender reports in a day (got ${bound + 1})`;
  test.each([
    ['total-successful-session-count', 'policies.0.summary.total-successful-session-count', 5000],
    ['total-failure-session-count', 'policies.0.summary.total-failure-session-count', 6000],
  ])('%s: the bound accepted, one over refused', (field, where, bound) => {
    const limits = { ...testLimits(), maxSessions: bound };
    const count = (n: number) =>
      report((r) => {
        policy0(r).summary[field] = n;
      });
    expect(refusal(count(bound), limits)).toBe('accepted');
    expect(refusal(count(bound + 1), limits)).toBe(over(where, bound));
  });

  test('failed-session-count: the bound accepted, one over refused, none accepted', () => {
    const limits = { ...testLimits(), maxSessions: 7000 };
    const detail = (n: number) =>
      report((r) => {
        policy0(r)['failure-details'] = [
          { 'result-type': 'starttls-not-supported', 'failed-session-count': n },
        ];
      });
    expect(refusal(detail(7000), limits)).toBe('accepted');
    expect(refusal(detail(7001), limits)).toBe(
      over('policies.0.failure-details.0.failed-session-count', 7000),
    );
    expect(refusal(detail(0), limits)).toBe('accepted');
  });

  test('the default bound is a billion', () => {
    const limits = { ...DEFAULT_LIMITS, now: NOW };
    const count = (n: number) =>
      report((r) => {
        policy0(r).summary['total-successful-session-count'] = n;
      });
    expect(refusal(count(1_000_000_000), limits)).toBe('accepted');
    expect(refusal(count(1_000_000_001), limits)).toBe(
      over('policies.0.summary.total-successful-session-count', 1_000_000_000),
    );
  });
});

describe('the period (date-range) a report covers', () => {
  test.each([
    // Strict RFC 3339: the message names the field and quotes what was sent.
    ['2026-11-28 00:00:00Z', '2026-11-29T00:00:00Z', 'date-range.start-datetime', '"2026-11-28 00:00:00Z"'],
    ['2026-11-28T00:00:00Z', '2026-11-29', 'date-range.end-datetime', '"2026-11-29"'],
    ['2026-11-28T00:00:00', '2026-11-29T00:00:00Z', 'date-range.start-datetime', '"2026-11-28T00:00:00"'],
    ['2026-11-28T00:00:00Z', '1764374400', 'date-range.end-datetime', '"1764374400"'],
    ['2026-11-28T00:00:00Z', '2026-11-31T00:00:00Z', 'date-range.end-datetime', '"2026-11-31T00:00:00Z"'],
  ])('%s to %s: %s refused', (start, end, field, seen) => {
    expect(refusal(report(range(start, end)))).toBe(
      `400 not a TLS-RPT report: ${field}: must be an RFC 3339 date-time such as 2026-11-28T00:00:00Z (got ${seen})`,
    );
  });

  test('a date-time is at most 64 characters', () => {
    const long = `2026-11-28T00:00:00.${'0'.repeat(44)}Z`;
    expect(long).toHaveLength(65);
    expect(refusal(report(range(long, '2026-11-29T00:00:00Z')))).toBe(
      `400 not a TLS-RPT report: date-range.start-datetime: Too big: expected string to have <=64 characters (got "${long.slice(0, 39)})`,
    );
  });

  test.each([
    // End: tomorrow's last instant (2026-11-30, UTC) accepted, one millisecond later refused.
    ['2026-11-30T00:00:00Z', '2026-11-30T23:59:59.999Z', 'accepted'],
    [
      '2026-11-30T00:00:00Z',
      '2026-12-01T00:00:00Z',
      '400 refused: date-range.end-datetime is after tomorrow (2026-11-30, UTC): a report covers a period that has ended',
    ],
    ['2026-11-30T00:00:00+01:00', '2026-12-01T00:59:59.999+01:00', 'accepted'],
    // The floor: 2016-01-01 exactly, and one millisecond before.
    ['2016-01-01T00:00:00Z', '2016-01-01T23:59:59Z', 'accepted'],
    [
      '2015-12-31T23:59:59.999Z',
      '2016-01-01T23:59:59Z',
      '400 refused: date-range.start-datetime is before 2016-01-01: no TLS-RPT report is that old',
    ],
    [
      '2026-11-29T00:00:00Z',
      '2026-11-28T00:00:00Z',
      '400 refused: date-range.end-datetime is before start-datetime',
    ],
    // The period limit (3 days here) exactly, and one millisecond over.
    ['2026-11-26T00:00:00Z', '2026-11-29T00:00:00Z', 'accepted'],
    [
      '2026-11-26T00:00:00Z',
      '2026-11-29T00:00:00.001Z',
      '400 refused: date-range.end-datetime makes the period longer than 3 day(s) (a report covers one day, RFC 8460 §4.1)',
    ],
  ])('%s to %s: %s', (start, end, outcome) => {
    expect(refusal(report(range(start, end)))).toBe(outcome);
  });

  test('the period limit is the setting: 1 day', () => {
    const oneDay = { ...testLimits(), maxPeriodDays: 1 };
    expect(refusal(report(range('2026-11-28T00:00:00Z', '2026-11-29T00:00:00Z')), oneDay)).toBe('accepted');
    expect(refusal(report(range('2026-11-27T23:59:59Z', '2026-11-29T00:00:00Z')), oneDay)).toMatch(
      /longer than 1 day\(s\)/,
    );
  });

  test('the default period limit is 3 days', () => {
    const limits = { ...DEFAULT_LIMITS, now: NOW };
    expect(refusal(report(range('2024-01-01T00:00:00Z', '2024-01-04T00:00:00Z')), limits)).toBe('accepted');
    expect(refusal(report(range('2024-01-01T00:00:00Z', '2024-01-04T00:00:01Z')), limits)).toMatch(
      /longer than 3 day\(s\)/,
    );
  });
});

describe('size: at most maxBytes of JSON, also once a gzip body is inflated', () => {
  /** The minimal report padded with trailing white space (valid JSON) to exactly `size` bytes. */
  const sized = (size: number) => {
    const body = report();
    return Buffer.concat([body, Buffer.alloc(size - body.length, 0x20)]);
  };
  const limits = { ...testLimits(), maxBytes: 4096 };

  test('JSON: 4096 bytes accepted, 4097 refused (413)', () => {
    expect(refusal(sized(4096), limits)).toBe('accepted');
    expect(refusal(sized(4097), limits)).toBe('413 the report is larger than 4096 bytes');
  });

  test('gzip: inflating to 4096 bytes accepted, to 4097 refused (413) however small the body', () => {
    expect(refusal(gzipSync(sized(4096)), limits, 'gzip')).toBe('accepted');
    const bomb = gzipSync(sized(4097));
    expect(bomb.length).toBeLessThan(4097);
    expect(refusal(bomb, limits, 'gzip')).toBe('413 the report decompresses to more than 4096 bytes');
    expect(refusal(gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)), limits, 'gzip')).toBe(
      '413 the report decompresses to more than 4096 bytes',
    );
  });

  test('the default is 1 MiB', () => {
    const limits = { ...DEFAULT_LIMITS, now: NOW };
    expect(refusal(sized(1024 * 1024), limits)).toBe('accepted');
    expect(refusal(sized(1024 * 1024 + 1), limits)).toBe('413 the report is larger than 1048576 bytes');
  });

  test.each([
    ['not gzip at all', Buffer.from('{"a": 1}'), '400 the gzip body is not valid (incorrect header check)'],
    [
      'cut short',
      gzipSync(report()).subarray(0, 40),
      '400 the gzip body is not valid (unexpected end of file)',
    ],
  ])('a gzip body %s is refused (400)', (_, body, outcome) => {
    expect(refusal(body, testLimits(), 'gzip')).toBe(outcome);
  });

  test.each([
    ['{"organization-name": ', 'json'],
    ['', 'json'],
    ['\u00ff\u00fe{}', 'json'],
    ['not json', 'gzip'],
  ] as const)('%j (%s) is not JSON (400)', (text, kind) => {
    const body = kind === 'gzip' ? gzipSync(text) : Buffer.from(text, 'latin1');
    expect(refusal(body, testLimits(), kind)).toBe('400 the body is not JSON');
  });

  test('the JSON is read from its own bytes, also when they are a slice of a larger buffer', () => {
    const body = report();
    const big = Buffer.concat([Buffer.from('garbage['), body, Buffer.from(']]]garbage')]);
    expect(refusal(big.subarray(8, 8 + body.length))).toBe('accepted');
    expect(refusal(new Uint8Array(big.buffer, big.byteOffset + 8, body.length))).toBe('accepted');
  });
});

describe('nesting: at most MAX_NESTING levels, checked before parsing', () => {
  test('MAX_NESTING is 10 (a report nests 5)', () => {
    expect(MAX_NESTING).toBe(10);
  });
  /** The report with an extension field nested so that the whole body nests `depth` levels. */
  const deep = (depth: number) =>
    report((r) => {
      r['x-ext'] = JSON.parse(`${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}`);
    });

  test('exactly 10 levels accepted, 11 refused', () => {
    expect(refusal(deep(10))).toBe('accepted');
    expect(refusal(deep(11))).toBe('400 the JSON nests deeper than 10 levels; a TLS-RPT report needs 5');
  });

  test('brackets in strings do not count', () => {
    const text = report((r) => {
      r['contact-info'] = `${'['.repeat(50)}${'{'.repeat(50)}`;
    });
    expect(refusal(text)).toBe('accepted');
  });

  test('a body too deep for JSON.parse is refused without being parsed', () => {
    expect(refusal(Buffer.from('['.repeat(60_000)))).toBe(
      '400 the JSON nests deeper than 10 levels; a TLS-RPT report needs 5',
    );
  });
});

describe('bodyKind: the media type a report arrives with (RFC 8460 §5.3)', () => {
  const gz = gzipSync('{}');
  const json = Buffer.from('{"a":1}');
  test.each([
    ['application/tlsrpt+gzip', gz, 'gzip'],
    ['application/tlsrpt+gzip', json, 'gzip'],
    ['application/gzip', gz, 'gzip'],
    ['application/x-gzip', gz, 'gzip'],
    ['Application/TLSRPT+GZIP; charset=binary', gz, 'gzip'],
    ['application/tlsrpt+json', json, 'json'],
    ['application/json; charset=utf-8', json, 'json'],
    [' application/json ', json, 'json'],
    // Gzip sent as JSON: the magic bytes tell.
    ['application/tlsrpt+json', gz, 'gzip'],
    ['application/json', gz, 'gzip'],
    // No useful type: the first bytes tell.
    ['application/octet-stream', gz, 'gzip'],
    ['application/octet-stream', json, 'json'],
    ['', gz, 'gzip'],
    [null, json, 'json'],
    [undefined, json, 'json'],
    [undefined, Buffer.from('[]'), null],
    [undefined, Buffer.from(' {}'), null],
    [undefined, Buffer.alloc(0), null],
    ['application/octet-stream', Buffer.from([0x1f, 0x8b]), 'gzip'],
    ['application/octet-stream', Buffer.from('{'), 'json'],
    ['application/octet-stream', Buffer.from([0x1f]), null],
    ['application/octet-stream', Buffer.from([0x1f, 0x8c]), null],
    ['application/octet-stream', Buffer.from([0x1e, 0x8b]), null],
    ['application/json', Buffer.from([0x1f]), 'json'],
    // Anything else is not a report.
    ['text/plain', json, null],
    ['multipart/form-data; boundary=x', gz, null],
    ['application/tlsrpt', json, null],
  ])('%j with %j: %s', (type, body, kind) => {
    expect(bodyKind(type, body)).toBe(kind);
  });
});

describe('explainResult: the result types of RFC 8460 §4.3 in plain words', () => {
  test.each([
    ['certificate-expired', 'the MX certificate had expired', 'renew it'],
    [
      'certificate-host-mismatch',
      'the MX certificate does not name the host',
      'issue a certificate for the MX name',
    ],
    [
      'certificate-not-trusted',
      'the MX certificate is not trusted',
      'use a public CA and serve the full chain',
    ],
    [
      'validation-failure',
      'the certificate or policy did not validate',
      'check the certificate chain and the policy',
    ],
    ['starttls-not-supported', 'the MX did not offer STARTTLS', 'enable STARTTLS on it'],
    [
      'sts-policy-fetch-error',
      'senders could not fetch the MTA-STS policy',
      'check the policy host, its certificate and HTTP answer',
    ],
    ['sts-policy-invalid', 'the MTA-STS policy is invalid', 'fix the policy syntax (`mtasts check`)'],
    [
      'sts-webpki-invalid',
      'the policy host certificate did not validate',
      'renew or fix the mta-sts certificate',
    ],
    ['tlsa-invalid', 'DANE failed (tlsa-invalid)', 'check the TLSA records and DNSSEC'],
    ['dnssec-invalid', 'DANE failed (dnssec-invalid)', 'check the TLSA records and DNSSEC'],
    ['dane-required', 'DANE failed (dane-required)', 'check the TLSA records and DNSSEC'],
    // The reporter's own text is never the explanation.
    ['<script>', 'a result type RFC 8460 does not define', "see the reporter's details"],
    ['Certificate-Expired', 'a result type RFC 8460 does not define', "see the reporter's details"],
  ])('%s: %s; %s', (type, what, fix) => {
    expect(explainResult(type)).toEqual({ what, fix });
  });
});
