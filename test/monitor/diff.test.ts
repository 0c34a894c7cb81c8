import { describe, expect, test } from 'vitest';
import type { Report } from '../../src/core/check.js';
import {
  CATALOG,
  FINDING_CODES,
  type Finding,
  type FindingCode,
  finding,
  type Severity,
  statusOf,
} from '../../src/core/findings.js';
import type { PolicyMode } from '../../src/core/policy.js';
import {
  certLevel,
  DEFAULT_DIFF_SETTINGS,
  type DiffResult,
  type DiffSettings,
  diff,
} from '../../src/monitor/diff.js';
import { snapshotOf } from '../../src/monitor/snapshot.js';
import type { CertLevel, CertSeen, DomainState, MonitorEvent } from '../../src/store/monitor-state.js';
import { reportOf } from '../support/report.js';

/**
 * The monitor's rule for turning passes into alerts, as tables of state transitions: the passes a domain goes through
 * (when, and what the check saw) and the events each pass gives. Every pass starts from the state the one before left.
 * Times are written T+<offset> from the first pass, in keys as in durations. The settings are the app's defaults
 * (DEFAULT_DIFF_SETTINGS: 2 passes for a flaky finding, a reminder every 24 hours, ready after 14 clean days), so the
 * times in the rows are the defaults at work.
 */

const MS = 1;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-11-02T00:00:00.000Z');
const DOMAIN = 'example.com';
const NEW: DomainState = { snapshot: null, conditions: [], cleanSince: null, readyAnnounced: null };
const POLICY_V1 =
  'version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 604800\n';
const POLICY_V2 = 'version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 604800\n';

/** What one check of example.com saw; anything left out is as a healthy domain has it. */
interface Seen {
  findings?: Finding[];
  /** MX hosts (default mx1 and mx2). */
  mx?: string[];
  certs?: CertSeen[];
  mode?: PolicyMode;
  stsId?: string | null;
  /** The policy text; null when it could not be fetched. */
  policyText?: string | null;
}

interface Pass {
  /** Milliseconds after the first pass. */
  at: number;
  seen: Seen;
  /** The end of the latest TLS-RPT period with failed sessions, as milliseconds after the first pass. */
  failureAt?: number;
}

/** A finding as the check makes it, on the subject the check would name. */
function seen(code: FindingCode, severity?: Severity): Finding {
  const subject = code.startsWith('STS_')
    ? `_mta-sts.${DOMAIN}`
    : code.startsWith('TLSRPT_')
      ? `_smtp._tls.${DOMAIN}`
      : code.startsWith('POLICY_')
        ? `mta-sts.${DOMAIN}`
        : code.startsWith('MX_') || code === 'ADDRESS_NOT_ALLOWED'
          ? `mx1.${DOMAIN}`
          : DOMAIN;
  return finding(code, DOMAIN, subject, `${code} seen.`, severity);
}

const mxCert = (host: string, fingerprint: string, notAfter: number): CertSeen => ({
  role: 'mx',
  host,
  fingerprint,
  notAfter: new Date(T0 + notAfter).toISOString(),
});
const policyCert = (fingerprint: string, notAfter: number): CertSeen => ({
  role: 'policy',
  host: `mta-sts.${DOMAIN}`,
  fingerprint,
  notAfter: new Date(T0 + notAfter).toISOString(),
});

/** The check report and snapshot of one pass. */
function observe(s: Seen): { report: Report; snapshot: ReturnType<typeof snapshotOf> } {
  const mode = s.mode ?? 'enforce';
  const report = reportOf({
    domain: DOMAIN,
    mx: s.mx ?? [`mx1.${DOMAIN}`, `mx2.${DOMAIN}`],
    stsId: s.stsId === undefined ? '20261101' : s.stsId,
    policyText: s.policyText === undefined ? POLICY_V1 : s.policyText,
    policy: { version: 'STSv1', mode, maxAge: 604800, mx: [`*.${DOMAIN}`], extensions: [] },
  });
  report.findings = s.findings ?? [];
  report.status = statusOf(report.findings);
  return { report, snapshot: { ...snapshotOf(report), certs: s.certs ?? [] } };
}

/** Runs the passes in order; returns what each pass gave, and the state after the last. */
function run(
  passes: Pass[],
  settings: DiffSettings = DEFAULT_DIFF_SETTINGS,
): { results: DiffResult[]; state: DomainState } {
  let state = NEW;
  const results: DiffResult[] = [];
  for (const pass of passes) {
    const { report, snapshot } = observe(pass.seen);
    const failure = pass.failureAt === undefined ? {} : { lastReportedFailureAt: iso(pass.failureAt) };
    const result = diff(state, snapshot, report, new Date(T0 + pass.at), settings, failure);
    results.push(result);
    state = result.state;
  }
  return { results, state };
}

const iso = (at: number) => new Date(T0 + at).toISOString();

/** 90061001 -> "1d1h1m1s1ms"; 0 -> "0"; -86400000 -> "-1d". */
function span(ms: number): string {
  if (ms < 0) return `-${span(-ms)}`;
  const parts: [number, string][] = [
    [DAY, 'd'],
    [HOUR, 'h'],
    [60_000, 'm'],
    [1000, 's'],
    [1, 'ms'],
  ];
  let rest = ms;
  let out = '';
  for (const [size, unit] of parts) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out || '0';
}

/** An event in one line, its times as T+<offset>: "kind key [in thread] [after duration] [: resolution]". */
function line(e: MonitorEvent): string {
  const at = (text: string) =>
    text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, (t) => {
      const offset = span(Date.parse(t) - T0);
      return offset.startsWith('-') ? `T${offset}` : `T+${offset}`;
    });
  let out = `${e.kind} ${at(e.key)}`;
  if (e.threadKey !== null) out += ` in ${at(e.threadKey)}`;
  if (e.durationMs !== undefined) out += ` after ${span(e.durationMs)}`;
  if (e.resolution !== undefined) out += `: ${e.resolution}`;
  if (e.mxChange)
    out += `: ${[...e.mxChange.added.map((h) => `+${h}`), ...e.mxChange.removed.map((h) => `-${h}`)].join(' ')}`;
  return out;
}

/** The passes of a table row, and the event lines each pass must give (in order, nothing else). */
type Row = [name: string, steps: [pass: Pass, events: string[]][], settings?: DiffSettings];

function expectTransitions(steps: Row[1], settings?: DiffSettings): void {
  const { results } = run(
    steps.map(([pass]) => pass),
    settings,
  );
  expect(results.map((r) => r.events.map(line))).toEqual(steps.map(([, events]) => events));
}

const healthy: Seen = {};
const STS_MISSING = 'finding:STS_RECORD_MISSING:_mta-sts.example.com';
const FETCH_FAILED = 'finding:POLICY_FETCH_FAILED:mta-sts.example.com';
const TLSRPT_MISSING = 'finding:TLSRPT_MISSING:_smtp._tls.example.com';

describe('conditions from findings: open, remind, recover', () => {
  const rows: Row[] = [
    [
      'an error opens at once, is reminded every 24 hours (not a millisecond sooner) and recovers in its thread',
      [
        [{ at: 0, seen: healthy }, []],
        [{ at: HOUR, seen: { findings: [seen('STS_RECORD_MISSING')] } }, [`opened ${STS_MISSING}@T+1h`]],
        [{ at: DAY + HOUR - MS, seen: { findings: [seen('STS_RECORD_MISSING')] } }, []],
        [
          { at: DAY + HOUR, seen: { findings: [seen('STS_RECORD_MISSING')] } },
          [`reminder ${STS_MISSING}@T+1d1h:reminder in ${STS_MISSING}@T+1h after 1d`],
        ],
        [{ at: 2 * DAY + HOUR - MS, seen: { findings: [seen('STS_RECORD_MISSING')] } }, []],
        [
          { at: 2 * DAY + HOUR, seen: { findings: [seen('STS_RECORD_MISSING')] } },
          [`reminder ${STS_MISSING}@T+2d1h:reminder in ${STS_MISSING}@T+1h after 2d`],
        ],
        [
          { at: 2 * DAY + 2 * HOUR, seen: healthy },
          [`recovered ${STS_MISSING}@T+2d2h:recovered in ${STS_MISSING}@T+1h after 2d1h: no longer seen`],
        ],
        [{ at: 2 * DAY + 3 * HOUR, seen: healthy }, []],
      ],
    ],
    [
      'a flaky finding seen in one pass is a blip; in 2 passes in a row it opens, counted from when it was first seen',
      [
        [{ at: 0, seen: healthy }, []],
        [{ at: HOUR, seen: { findings: [seen('POLICY_FETCH_FAILED')] } }, []],
        [{ at: 2 * HOUR, seen: healthy }, []],
        [{ at: 3 * HOUR, seen: { findings: [seen('POLICY_FETCH_FAILED')] } }, []],
        [
          { at: 4 * HOUR, seen: { findings: [seen('POLICY_FETCH_FAILED')] } },
          [`opened ${FETCH_FAILED}@T+4h`],
        ],
        [{ at: DAY + 4 * HOUR - MS, seen: { findings: [seen('POLICY_FETCH_FAILED')] } }, []],
        [
          { at: DAY + 4 * HOUR, seen: { findings: [seen('POLICY_FETCH_FAILED')] } },
          [`reminder ${FETCH_FAILED}@T+1d4h:reminder in ${FETCH_FAILED}@T+4h after 1d1h`],
        ],
        [
          { at: DAY + 5 * HOUR, seen: healthy },
          [`recovered ${FETCH_FAILED}@T+1d5h:recovered in ${FETCH_FAILED}@T+4h after 1d2h: no longer seen`],
        ],
      ],
    ],
    [
      'with debouncePasses 3: 2 passes in a row do not alert, the 3rd does',
      [
        [{ at: 0, seen: healthy }, []],
        [{ at: HOUR, seen: { findings: [seen('MX_UNREACHABLE')] } }, []],
        [{ at: 2 * HOUR, seen: { findings: [seen('MX_UNREACHABLE')] } }, []],
        [
          { at: 3 * HOUR, seen: { findings: [seen('MX_UNREACHABLE')] } },
          ['opened finding:MX_UNREACHABLE:mx1.example.com@T+3h'],
        ],
      ],
      { ...DEFAULT_DIFF_SETTINGS, debouncePasses: 3 },
    ],
    [
      'an alerting warning opens at once and is never reminded',
      [
        [{ at: 0, seen: healthy }, []],
        [{ at: HOUR, seen: { findings: [seen('TLSRPT_MISSING')] } }, [`opened ${TLSRPT_MISSING}@T+1h`]],
        [{ at: 3 * DAY, seen: { findings: [seen('TLSRPT_MISSING')] } }, []],
        [
          { at: 3 * DAY + HOUR, seen: healthy },
          [`recovered ${TLSRPT_MISSING}@T+3d1h:recovered in ${TLSRPT_MISSING}@T+1h after 3d: no longer seen`],
        ],
      ],
    ],
    [
      'what is wrong at the first pass is the baseline: followed without an alert, reminded and recovered outside any thread',
      [
        [{ at: 0, seen: { findings: [seen('STS_RECORD_MISSING'), seen('TLSRPT_MISSING')] } }, []],
        [{ at: HOUR, seen: { findings: [seen('STS_RECORD_MISSING'), seen('TLSRPT_MISSING')] } }, []],
        [
          { at: DAY, seen: { findings: [seen('STS_RECORD_MISSING'), seen('TLSRPT_MISSING')] } },
          [`reminder ${STS_MISSING}@T+1d:reminder after 1d`],
        ],
        [
          { at: DAY + HOUR, seen: healthy },
          [
            `recovered ${STS_MISSING}@T+1d1h:recovered after 1d1h: no longer seen`,
            `recovered ${TLSRPT_MISSING}@T+1d1h:recovered after 1d1h: no longer seen`,
          ],
        ],
      ],
    ],
    [
      'a flaky finding at the first pass is pending, not baseline: it alerts at the second',
      [
        [{ at: 0, seen: { findings: [seen('POLICY_FETCH_FAILED')] } }, []],
        [{ at: HOUR, seen: { findings: [seen('POLICY_FETCH_FAILED')] } }, [`opened ${FETCH_FAILED}@T+1h`]],
      ],
    ],
    [
      'a condition that clears before it opened leaves without a word',
      [
        [{ at: 0, seen: healthy }, []],
        [{ at: HOUR, seen: { findings: [seen('MX_TLS_FAILED')] } }, []],
        [{ at: 2 * HOUR, seen: healthy }, []],
        [{ at: 3 * HOUR, seen: healthy }, []],
      ],
    ],
    [
      'two problems at once are two conditions, each with its own thread',
      [
        [{ at: 0, seen: healthy }, []],
        [
          { at: HOUR, seen: { findings: [seen('STS_RECORD_MISSING'), seen('TLSRPT_MISSING')] } },
          [`opened ${STS_MISSING}@T+1h`, `opened ${TLSRPT_MISSING}@T+1h`],
        ],
        [
          { at: 2 * HOUR, seen: { findings: [seen('TLSRPT_MISSING')] } },
          [`recovered ${STS_MISSING}@T+2h:recovered in ${STS_MISSING}@T+1h after 1h: no longer seen`],
        ],
      ],
    ],
  ];
  test.each(rows)('%s', (_name, steps, settings) => expectTransitions(steps, settings));

  test('an opened condition carries the finding as the check wrote it', () => {
    const missing = seen('STS_RECORD_MISSING');
    const { results } = run([
      { at: 0, seen: healthy },
      { at: HOUR, seen: { findings: [missing] } },
    ]);
    expect(results[1]?.events[0]?.info).toEqual({
      kind: 'finding',
      code: 'STS_RECORD_MISSING',
      title: 'No MTA-STS record',
      subject: '_mta-sts.example.com',
      severity: 'error',
      message: missing.message,
      fix: missing.fix,
    });
    expect(results[1]?.extraFindings).toEqual([]);
  });

  test('a reminder carries the finding as it is now', () => {
    const first = finding('MX_STARTTLS_MISSING', DOMAIN, 'mx1.example.com', 'mx1 said no STARTTLS.');
    const later = finding('MX_STARTTLS_MISSING', DOMAIN, 'mx1.example.com', 'mx1 still says no STARTTLS.');
    const { results } = run([
      { at: 0, seen: healthy },
      { at: HOUR, seen: { findings: [first] } },
      { at: DAY + HOUR, seen: { findings: [later] } },
    ]);
    expect(results[2]?.events.map((e) => [e.kind, e.info.message])).toEqual([['reminder', later.message]]);
  });
});

type Behaviour = 'opens at once' | 'opens at the 2nd pass in a row' | 'never alerts';

/**
 * How each finding code alerts, at the severity the check gives it, written out here rather than read from the
 * catalog's `alert` (src/core/findings.ts), so that a changed or blanked entry fails a row: flaky codes debounced,
 * certificate codes followed through the certificate instead, and the warnings that alert. Any other code alerts at
 * once when it is an error, and never as a warning or info.
 */
const ALERTS: [FindingCode, Severity, Behaviour][] = [
  ['POLICY_FETCH_FAILED', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_HOST_UNRESOLVABLE', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_HTTP_STATUS', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_REDIRECT', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_CONTENT_TYPE', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_TOO_LARGE', 'error', 'opens at the 2nd pass in a row'],
  ['POLICY_SYNTAX', 'error', 'opens at the 2nd pass in a row'],
  ['DNS_LOOKUP_FAILED', 'error', 'opens at the 2nd pass in a row'],
  ['DNS_RESOLVER_FAILED', 'error', 'opens at the 2nd pass in a row'],
  ['MX_UNREACHABLE', 'error', 'opens at the 2nd pass in a row'],
  ['MX_SMTP_ERROR', 'error', 'opens at the 2nd pass in a row'],
  ['MX_TLS_FAILED', 'error', 'opens at the 2nd pass in a row'],
  ['SMTP_PORT_BLOCKED', 'warning', 'opens at the 2nd pass in a row'],
  // Followed by fingerprint and threshold (below). The two EXPIRING codes are warnings the check never raises to
  // errors, so `never` would say the same for them as `certificate`.
  ['POLICY_CERT_EXPIRED', 'error', 'never alerts'],
  ['POLICY_CERT_EXPIRING', 'warning', 'never alerts'],
  ['MX_CERT_EXPIRED', 'error', 'never alerts'],
  ['MX_CERT_EXPIRING', 'warning', 'never alerts'],
  // Warnings that alert: protection weakened or about to be. MX_NOT_IN_POLICY is a warning in testing mode.
  ['MX_NOT_IN_POLICY', 'warning', 'opens at once'],
  ['MX_NOT_IN_POLICY', 'error', 'opens at once'],
  ['TLSRPT_MISSING', 'warning', 'opens at once'],
  ['POLICY_MODE_NONE', 'warning', 'opens at once'],
];
const listed = new Set(ALERTS.map(([code]) => code));
const EVERY_CODE: [FindingCode, Severity, Behaviour][] = [
  ...ALERTS,
  ...FINDING_CODES.filter((code) => !listed.has(code)).map((code): [FindingCode, Severity, Behaviour] => {
    const severity = CATALOG[code].severity;
    return [code, severity, severity === 'error' ? 'opens at once' : 'never alerts'];
  }),
];

describe('each finding code alerts as it should', () => {
  test.each(EVERY_CODE)('%s (%s) %s', (code, severity, behaviour) => {
    const f = seen(code, severity);
    const key = `finding:${code}:${f.subject}`;
    const { results } = run([
      { at: 0, seen: healthy },
      { at: HOUR, seen: { findings: [f] } },
      { at: 2 * HOUR, seen: { findings: [f] } },
    ]);
    const expected = {
      'opens at once': [[], [`opened ${key}@T+1h`], []],
      'opens at the 2nd pass in a row': [[], [], [`opened ${key}@T+2h`]],
      'never alerts': [[], [], []],
    }[behaviour];
    expect(results.map((r) => r.events.map(line))).toEqual(expected);
  });
});

describe('the sts id: the policy changed, the id did not', () => {
  const rows: Row[] = [
    [
      'opens when the text changes under the same id, stays while the id stays, recovers when it changes',
      [
        [{ at: 0, seen: { stsId: 'A', policyText: POLICY_V1 } }, []],
        [{ at: HOUR, seen: { stsId: 'A', policyText: POLICY_V2 } }, ['opened sts-id@T+1h']],
        [{ at: 2 * DAY, seen: { stsId: 'A', policyText: POLICY_V2 } }, []],
        [
          { at: 2 * DAY + HOUR, seen: { stsId: 'B', policyText: POLICY_V2 } },
          ['recovered sts-id@T+2d1h:recovered in sts-id@T+1h after 2d: the id changed to B'],
        ],
        [{ at: 2 * DAY + 2 * HOUR, seen: { stsId: 'B', policyText: POLICY_V2 } }, []],
      ],
    ],
    [
      'the record removed closes it too',
      [
        [{ at: 0, seen: { stsId: 'A', policyText: POLICY_V1 } }, []],
        [{ at: HOUR, seen: { stsId: 'A', policyText: POLICY_V2 } }, ['opened sts-id@T+1h']],
        [
          { at: 2 * HOUR, seen: { stsId: null, policyText: POLICY_V2 } },
          ['recovered sts-id@T+2h:recovered in sts-id@T+1h after 1h: the id changed to none'],
        ],
      ],
    ],
    [
      'a new policy with a new id is how it should be done',
      [
        [{ at: 0, seen: { stsId: 'A', policyText: POLICY_V1 } }, []],
        [{ at: HOUR, seen: { stsId: 'B', policyText: POLICY_V2 } }, []],
      ],
    ],
    [
      'without a record there is no id to update',
      [
        [{ at: 0, seen: { stsId: null, policyText: POLICY_V1 } }, []],
        [{ at: HOUR, seen: { stsId: null, policyText: POLICY_V2 } }, []],
      ],
    ],
  ];
  test.each(rows)('%s', (_name, steps) => expectTransitions(steps));

  test('STS_ID_NOT_UPDATED is added to the report for as long as it lasts', () => {
    const { results } = run([
      { at: 0, seen: { stsId: 'A', policyText: POLICY_V1 } },
      { at: HOUR, seen: { stsId: 'A', policyText: POLICY_V2 } },
      { at: 2 * HOUR, seen: { stsId: 'A', policyText: POLICY_V2 } },
      { at: 3 * HOUR, seen: { stsId: 'B', policyText: POLICY_V2 } },
    ]);
    const stuck = finding(
      'STS_ID_NOT_UPDATED',
      DOMAIN,
      '_mta-sts.example.com',
      'The policy text changed but the id is still A.',
    );
    expect(results.map((r) => r.extraFindings)).toEqual([[], [stuck], [stuck], []]);
    expect(results[1]?.events[0]?.info).toMatchObject({
      kind: 'sts-id',
      code: 'STS_ID_NOT_UPDATED',
      title: 'Policy changed but the id did not',
      severity: 'warning',
      stsId: 'A',
    });
  });

  test('no policy text before (not fetched) is not a change', () => {
    const { results } = run([
      { at: 0, seen: { stsId: 'A', policyText: null, findings: [seen('POLICY_FETCH_FAILED')] } },
      { at: HOUR, seen: { stsId: 'A', policyText: POLICY_V2 } },
    ]);
    expect(results.map((r) => r.extraFindings)).toEqual([[], []]);
  });
});

describe('certificate expiry', () => {
  test.each<[string, number, CertLevel | null]>([
    ['more than 30 days', 30 * DAY + MS, null],
    ['exactly 30 days', 30 * DAY, 30],
    ['14 days and 1 ms', 14 * DAY + MS, 30],
    ['exactly 14 days', 14 * DAY, 14],
    ['7 days and 1 ms', 7 * DAY + MS, 14],
    ['exactly 7 days', 7 * DAY, 7],
    ['3 days and 1 ms', 3 * DAY + MS, 7],
    ['exactly 3 days', 3 * DAY, 3],
    ['1 day and 1 ms', DAY + MS, 3],
    ['exactly 1 day', DAY, 1],
    ['1 ms', MS, 1],
    ['none: it expires now', 0, 'expired'],
    ['a day ago', -DAY, 'expired'],
  ])('%s left: level %s', (_name, left, level) => {
    expect(certLevel(new Date(T0 + left).toISOString(), new Date(T0))).toBe(level);
  });

  test('an expiry date that cannot be read has no level', () => {
    expect(certLevel('not a date', new Date(T0))).toBeNull();
  });

  const FP1 = 'cert:mx:mx1.example.com:FP1';
  /** Certificates far from their end, seen in every pass: the other MX host's and the policy host's. */
  const others = [mxCert('mx1.example.com', 'FP1', 40 * DAY), policyCert('P1', 40 * DAY)];
  const mx2Unreachable = finding('MX_UNREACHABLE', DOMAIN, 'mx2.example.com', 'mx2 did not answer.');
  const cert40 = mxCert('mx1.example.com', 'FP1', 40 * DAY);
  const rows: Row[] = [
    [
      'one alert per threshold crossed, at the exact day, in the thread of the first; the expired one is reminded',
      [
        [{ at: 0, seen: { certs: [cert40] } }, []],
        [{ at: 10 * DAY - MS, seen: { certs: [cert40] } }, []],
        [{ at: 10 * DAY, seen: { certs: [cert40] } }, [`opened ${FP1}:30`]],
        [{ at: 11 * DAY, seen: { certs: [cert40] } }, []],
        [{ at: 26 * DAY, seen: { certs: [cert40] } }, [`escalated ${FP1}:14 in ${FP1}:30`]],
        [{ at: 33 * DAY, seen: { certs: [cert40] } }, [`escalated ${FP1}:7 in ${FP1}:30`]],
        [{ at: 37 * DAY - MS, seen: { certs: [cert40] } }, []],
        [{ at: 37 * DAY, seen: { certs: [cert40] } }, [`escalated ${FP1}:3 in ${FP1}:30`]],
        [{ at: 39 * DAY - MS, seen: { certs: [cert40] } }, []],
        [{ at: 39 * DAY, seen: { certs: [cert40] } }, [`escalated ${FP1}:1 in ${FP1}:30`]],
        [{ at: 40 * DAY - MS, seen: { certs: [cert40] } }, []],
        [{ at: 40 * DAY, seen: { certs: [cert40] } }, [`escalated ${FP1}:expired in ${FP1}:30`]],
        [{ at: 41 * DAY - MS, seen: { certs: [cert40] } }, []],
        [
          { at: 41 * DAY, seen: { certs: [cert40] } },
          [`reminder ${FP1}@T+41d:reminder in ${FP1}:30 after 31d`],
        ],
        [
          { at: 41 * DAY + HOUR, seen: { certs: [mxCert('mx1.example.com', 'FP2', 131 * DAY)] } },
          [
            `recovered ${FP1}@T+41d1h:recovered in ${FP1}:30 after 31d1h: replaced: the new certificate expires 2027-03-13`,
          ],
        ],
      ],
    ],
    [
      'a certificate already near its end at the first pass: silent, and its first escalation starts the thread',
      [
        [{ at: 0, seen: { certs: [mxCert('mx1.example.com', 'FP1', 10 * DAY)] } }, []],
        [
          { at: 3 * DAY, seen: { certs: [mxCert('mx1.example.com', 'FP1', 10 * DAY)] } },
          [`escalated ${FP1}:7`],
        ],
        [
          { at: 7 * DAY, seen: { certs: [mxCert('mx1.example.com', 'FP1', 10 * DAY)] } },
          [`escalated ${FP1}:3 in ${FP1}:7`],
        ],
      ],
    ],
    [
      "a new MX host whose certificate has expired: told in the MX change's one alert, then followed without a second",
      [
        [{ at: 0, seen: healthy }, []],
        [
          {
            at: HOUR,
            seen: {
              mx: ['mx1.example.com', 'mx3.example.com'],
              certs: [mxCert('mx3.example.com', 'FP3', -DAY)],
            },
          },
          ['changed mx-changed@T+1h: +mx3.example.com -mx2.example.com'],
        ],
        [
          {
            at: 2 * HOUR,
            seen: {
              mx: ['mx1.example.com', 'mx3.example.com'],
              certs: [mxCert('mx3.example.com', 'FP3', -DAY)],
            },
          },
          [],
        ],
      ],
    ],
    [
      'replaced by a certificate that is itself near its end: the new one opens, the old one recovers',
      [
        [{ at: 0, seen: { certs: [policyCert('P1', 5 * DAY)] } }, []],
        [
          { at: HOUR, seen: { certs: [policyCert('P2', 6 * DAY)] } },
          [
            'opened cert:policy:mta-sts.example.com:P2:7',
            'recovered cert:policy:mta-sts.example.com:P1@T+1h:recovered after 1h: replaced: the new certificate expires 2026-11-08 (within 7 days)',
          ],
        ],
      ],
    ],
    [
      'replaced by one that has already expired',
      [
        [{ at: 0, seen: { certs: [policyCert('P1', 5 * DAY)] } }, []],
        [
          { at: HOUR, seen: { certs: [policyCert('P2', -DAY)] } },
          [
            'opened cert:policy:mta-sts.example.com:P2:expired',
            'recovered cert:policy:mta-sts.example.com:P1@T+1h:recovered after 1h: replaced: the new certificate expires 2026-11-01 (already expired)',
          ],
        ],
      ],
    ],
    [
      'an MX host leaving the set closes its certificate condition, and the change is told',
      [
        [{ at: 0, seen: { certs: [mxCert('mx2.example.com', 'FP2', 31 * DAY)] } }, []],
        [
          { at: DAY, seen: { certs: [mxCert('mx2.example.com', 'FP2', 31 * DAY)] } },
          ['opened cert:mx:mx2.example.com:FP2:30'],
        ],
        [
          { at: 2 * DAY, seen: { mx: ['mx1.example.com'] } },
          [
            'recovered cert:mx:mx2.example.com:FP2@T+2d:recovered in cert:mx:mx2.example.com:FP2:30 after 1d: mx2.example.com is no longer an MX host',
            'changed mx-changed@T+2d: -mx2.example.com',
          ],
        ],
        [{ at: 3 * DAY, seen: { mx: ['mx1.example.com'] } }, []],
      ],
    ],
    [
      'a certificate not seen in a pass (its host unreachable, or the MX lookup failed) is still followed',
      [
        [{ at: 0, seen: { certs: [...others, mxCert('mx2.example.com', 'FP2', 20 * DAY)] } }, []],
        [{ at: HOUR, seen: { findings: [mx2Unreachable], certs: others } }, []],
        [
          {
            at: 2 * HOUR,
            seen: { findings: [seen('DNS_LOOKUP_FAILED')], certs: [policyCert('P1', 40 * DAY)] },
          },
          [],
        ],
        [
          { at: 7 * DAY, seen: { certs: [...others, mxCert('mx2.example.com', 'FP2', 20 * DAY)] } },
          ['escalated cert:mx:mx2.example.com:FP2:14'],
        ],
      ],
    ],
    [
      'the policy host certificate is not an MX host certificate: a change of MX hosts leaves it alone',
      [
        [{ at: 0, seen: { certs: [policyCert('P1', 20 * DAY)] } }, []],
        [
          { at: HOUR, seen: { mx: ['mx9.example.com'] } },
          ['changed mx-changed@T+1h: +mx9.example.com -mx1.example.com -mx2.example.com'],
        ],
        [
          { at: 7 * DAY, seen: { mx: ['mx9.example.com'], certs: [policyCert('P1', 20 * DAY)] } },
          ['escalated cert:policy:mta-sts.example.com:P1:14'],
        ],
      ],
    ],
  ];
  test.each(rows)('%s', (_name, steps) => expectTransitions(steps));

  test.each<[string, CertSeen, string, string, FindingCode]>([
    [
      'an MX certificate within 30 days',
      mxCert('mx1.example.com', 'FP1', 30 * DAY),
      'MX certificate expires within 30 days',
      'The certificate of mx1.example.com expires on 2026-12-02, within 30 days.',
      'MX_CERT_EXPIRING',
    ],
    [
      'an MX certificate within 1 day',
      mxCert('mx1.example.com', 'FP1', DAY),
      'MX certificate expires within 1 day',
      'The certificate of mx1.example.com expires on 2026-11-03, within 1 day.',
      'MX_CERT_EXPIRING',
    ],
    [
      'an expired MX certificate',
      mxCert('mx1.example.com', 'FP1', -DAY),
      'MX certificate expired',
      'The certificate of mx1.example.com expired on 2026-11-01.',
      'MX_CERT_EXPIRED',
    ],
    [
      'a policy host certificate within 3 days',
      policyCert('P1', 3 * DAY),
      'Policy host certificate expires within 3 days',
      'The certificate of mta-sts.example.com expires on 2026-11-05, within 3 days.',
      'POLICY_CERT_EXPIRING',
    ],
    [
      'an expired policy host certificate',
      policyCert('P1', 0),
      'Policy host certificate expired',
      'The certificate of mta-sts.example.com expired on 2026-11-02.',
      'POLICY_CERT_EXPIRED',
    ],
  ])('%s: what the alert says', (_name, cert, title, said, code) => {
    const { results } = run([
      { at: 0, seen: healthy },
      { at: HOUR, seen: { certs: [cert] } },
    ]);
    const expected = finding(code, DOMAIN, cert.host, said);
    const level = certLevel(cert.notAfter, new Date(T0 + HOUR));
    expect(results[1]?.events[0]?.info).toEqual({
      kind: 'cert',
      code,
      title,
      subject: cert.host,
      severity: CATALOG[code].severity,
      message: expected.message,
      fix: expected.fix,
      cert: { ...cert, level },
    });
  });
});

describe('MX host set changes', () => {
  const rows: Row[] = [
    [
      'a host joining, a host leaving, and a lookup failure in between that is not a change',
      [
        [{ at: 0, seen: healthy }, []],
        [
          { at: HOUR, seen: { mx: ['mx1.example.com', 'mx2.example.com', 'mx3.example.com'] } },
          ['changed mx-changed@T+1h: +mx3.example.com'],
        ],
        [{ at: 2 * HOUR, seen: { findings: [seen('DNS_LOOKUP_FAILED')] } }, []],
        [{ at: 3 * HOUR, seen: { mx: ['mx1.example.com', 'mx2.example.com', 'mx3.example.com'] } }, []],
        [
          { at: 4 * HOUR, seen: { mx: ['mx3.example.com', 'mx1.example.com'] } },
          ['changed mx-changed@T+4h: -mx2.example.com'],
        ],
        [{ at: 5 * HOUR, seen: { mx: ['mx1.example.com', 'mx3.example.com'] } }, []],
      ],
    ],
    ['the first pass has nothing to compare with', [[{ at: 0, seen: { mx: ['mx1.example.com'] } }, []]]],
  ];
  test.each(rows)('%s', (_name, steps) => expectTransitions(steps));

  test('what the change says', () => {
    const { results } = run([
      { at: 0, seen: healthy },
      { at: HOUR, seen: { mx: ['mx1.example.com', 'mx3.example.com'] } },
      { at: 2 * HOUR, seen: { mx: [] } },
    ]);
    expect(results[1]?.events[0]).toEqual({
      key: `mx-changed@${iso(HOUR)}`,
      kind: 'changed',
      threadKey: null,
      mxChange: { added: ['mx3.example.com'], removed: ['mx2.example.com'] },
      info: {
        kind: 'finding',
        title: 'MX hosts changed',
        subject: DOMAIN,
        severity: 'info',
        message:
          'MX hosts added mx3.example.com, removed mx2.example.com; now mx1.example.com, mx3.example.com.',
        fix: 'Make sure the policy lists every MX host (an alert follows if one is not covered), and publish a new id when you change it.',
      },
    });
    expect(results[2]?.events[0]?.info.message).toBe(
      'MX hosts removed mx1.example.com, removed mx3.example.com; now none.',
    );
  });
});

describe('ready to enforce', () => {
  const testing = (findings: Finding[] = []): Seen => ({
    mode: 'testing',
    findings: [seen('POLICY_MODE_TESTING'), ...findings],
  });
  const rows: Row[] = [
    [
      'testing with no errors for exactly 14 days (not a millisecond less), told once however long it stays so',
      [
        [{ at: 0, seen: testing() }, []],
        [{ at: 14 * DAY - MS, seen: testing() }, []],
        [{ at: 14 * DAY, seen: testing() }, ['ready ready@T+0']],
        [{ at: 15 * DAY, seen: testing() }, []],
        [{ at: 29 * DAY, seen: testing() }, []],
        [{ at: 60 * DAY, seen: testing() }, []],
      ],
    ],
    [
      'an error starts the 14 days again from when it cleared',
      [
        [{ at: 0, seen: testing() }, []],
        [
          { at: 7 * DAY, seen: testing([seen('STS_RECORD_INVALID')]) },
          ['opened finding:STS_RECORD_INVALID:_mta-sts.example.com@T+7d'],
        ],
        [
          { at: 7 * DAY + HOUR, seen: testing() },
          [
            'recovered finding:STS_RECORD_INVALID:_mta-sts.example.com@T+7d1h:recovered in finding:STS_RECORD_INVALID:_mta-sts.example.com@T+7d after 1h: no longer seen',
          ],
        ],
        [{ at: 14 * DAY, seen: testing() }, []],
        [{ at: 21 * DAY + HOUR - MS, seen: testing() }, []],
        [{ at: 21 * DAY + HOUR, seen: testing() }, ['ready ready@T+7d1h']],
      ],
    ],
    [
      'after it was told, a new clean stretch of 14 days is told again',
      [
        [{ at: 0, seen: testing() }, []],
        [{ at: 14 * DAY, seen: testing() }, ['ready ready@T+0']],
        [
          { at: 15 * DAY, seen: testing([seen('MX_STARTTLS_MISSING')]) },
          ['opened finding:MX_STARTTLS_MISSING:mx1.example.com@T+15d'],
        ],
        [
          { at: 16 * DAY, seen: testing() },
          [
            'recovered finding:MX_STARTTLS_MISSING:mx1.example.com@T+16d:recovered in finding:MX_STARTTLS_MISSING:mx1.example.com@T+15d after 1d: no longer seen',
          ],
        ],
        [{ at: 30 * DAY, seen: testing() }, ['ready ready@T+16d']],
      ],
    ],
    [
      'warnings do not hold it back',
      [
        [{ at: 0, seen: testing([seen('TLSRPT_MISSING')]) }, []],
        [{ at: 14 * DAY, seen: testing([seen('TLSRPT_MISSING')]) }, ['ready ready@T+0']],
      ],
    ],
    [
      'a domain in enforce is never told; the 14 days start when testing does',
      [
        [{ at: 0, seen: { mode: 'enforce' } }, []],
        [{ at: 14 * DAY, seen: { mode: 'enforce' } }, []],
        [{ at: 15 * DAY, seen: testing() }, []],
        [{ at: 29 * DAY - MS, seen: testing() }, []],
        [{ at: 29 * DAY, seen: testing() }, ['ready ready@T+15d']],
      ],
    ],
    [
      'a TLS failure reported after the clean stretch began: the 14 days count from its end',
      [
        [{ at: 0, seen: testing() }, []],
        [{ at: 14 * DAY, seen: testing(), failureAt: 5 * DAY }, []],
        [{ at: 19 * DAY - MS, seen: testing(), failureAt: 5 * DAY }, []],
        [{ at: 19 * DAY, seen: testing(), failureAt: 5 * DAY }, ['ready ready@T+5d']],
      ],
    ],
    [
      'a TLS failure reported before the clean stretch began changes nothing',
      [
        [{ at: 0, seen: testing(), failureAt: -DAY }, []],
        [{ at: 14 * DAY, seen: testing(), failureAt: -DAY }, ['ready ready@T+0']],
      ],
    ],
  ];
  test.each(rows)('%s', (_name, steps) => expectTransitions(steps));

  test('what it says, with and without TLS-RPT failures to speak of', () => {
    const plain = run([
      { at: 0, seen: testing() },
      { at: 14 * DAY, seen: testing() },
    ]);
    expect(plain.results[1]?.events[0]?.info).toEqual({
      kind: 'finding',
      title: 'Ready to move from testing to enforce',
      subject: DOMAIN,
      severity: 'info',
      message: 'example.com has been in testing mode with no errors since 2026-11-02.',
      fix: 'Publish the policy with mode: enforce and a new id (records below).',
    });
    const reported = run([
      { at: 0, seen: testing() },
      { at: 20 * DAY, seen: testing(), failureAt: 6 * DAY },
    ]);
    expect(reported.results[1]?.events[0]?.info.message).toBe(
      'example.com has been in testing mode with no errors and no reported TLS failures since 2026-11-08.',
    );
  });
});
