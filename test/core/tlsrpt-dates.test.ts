import { describe, expect, test } from 'vitest';
import {
  daysAgo,
  latestEnd,
  OLDEST_REPORT,
  parseDateTime,
  periodProblem,
} from '../../src/core/tlsrpt-dates.js';

/**
 * The dates of a TLS-RPT report (RFC 8460 §4.4: "date-range" of RFC 3339 §5.6 `date-time`s), read strictly, and the
 * period a report may cover: from 2016 on, ended by tomorrow (UTC), at most a few days long.
 */

const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);

describe('parseDateTime: RFC 3339 §5.6 date-time', () => {
  test.each([
    // The forms reporters send.
    ['2016-04-01T00:00:00Z', '2016-04-01T00:00:00.000Z'],
    ['2024-09-03T23:59:59Z', '2024-09-03T23:59:59.000Z'],
    // "T" and "Z" may be lower case (§5.6 NOTE).
    ['2026-11-28t12:30:45z', '2026-11-28T12:30:45.000Z'],
    ['2026-11-28t12:30:45Z', '2026-11-28T12:30:45.000Z'],
    // Fractions of a second, 1 to 9 digits; beyond milliseconds they are cut, not rounded.
    ['2026-11-28T12:30:45.5Z', '2026-11-28T12:30:45.500Z'],
    ['2026-11-28T12:30:45.12Z', '2026-11-28T12:30:45.120Z'],
    ['2026-11-28T12:30:45.123Z', '2026-11-28T12:30:45.123Z'],
    ['2026-11-28T12:30:45.123999999Z', '2026-11-28T12:30:45.123Z'],
    ['2026-11-28T12:30:45.000000000Z', '2026-11-28T12:30:45.000Z'],
    // Numeric offsets: local time minus the offset.
    ['2026-11-28T12:00:00+00:00', '2026-11-28T12:00:00.000Z'],
    ['2026-11-28T12:00:00-00:00', '2026-11-28T12:00:00.000Z'],
    ['2026-11-28T12:00:00+02:00', '2026-11-28T10:00:00.000Z'],
    ['2026-11-28T12:00:00-05:30', '2026-11-28T17:30:00.000Z'],
    ['2026-11-28T00:15:00+01:45', '2026-11-27T22:30:00.000Z'],
    ['2026-11-28T23:00:00-23:59', '2026-11-29T22:59:00.000Z'],
    ['2026-11-28T12:00:00.250+01:00', '2026-11-28T11:00:00.250Z'],
    // Every field at its largest.
    ['2026-12-31T23:59:59Z', '2026-12-31T23:59:59.000Z'],
    ['2026-01-31T00:00:00Z', '2026-01-31T00:00:00.000Z'],
    ['2026-04-30T00:00:00Z', '2026-04-30T00:00:00.000Z'],
    // 29 February only in a leap year (2000 is one, being divisible by 400).
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29T00:00:00Z', '2000-02-29T00:00:00.000Z'],
    // A leap second (§5.7) is the last millisecond of its minute, whatever fraction it has.
    ['2016-12-31T23:59:60Z', '2016-12-31T23:59:59.999Z'],
    ['2016-12-31T23:59:60.5Z', '2016-12-31T23:59:59.999Z'],
    ['2016-12-31T18:59:60-05:00', '2016-12-31T23:59:59.999Z'],
  ])('%s is %s', (text, iso) => {
    expect(new Date(parseDateTime(text) as number).toISOString()).toBe(iso);
  });

  test.each([
    // Not the date-time form: RFC 3339 needs all of date, "T", time with seconds, and an offset.
    '',
    '2026-11-28',
    '2026-11-28T12:30Z',
    '2026-11-28T12:30:45',
    '2026-11-28 12:30:45Z',
    '2026-11-28_12:30:45Z',
    '20261128T123045Z',
    '2026-11-28T12:30:45+0200',
    '2026-11-28T12:30:45+02',
    '2026-11-28T12:30:45 Z',
    '2026-11-28T12:30:45UTC',
    '2026-11-28T12:30:45GMT',
    // Digits counted exactly.
    '226-11-28T12:30:45Z',
    '02026-11-28T12:30:45Z',
    '2026-1-28T12:30:45Z',
    '2026-011-28T12:30:45Z',
    '2026-11-8T12:30:45Z',
    '2026-11-028T12:30:45Z',
    '2026-11-28T2:30:45Z',
    '2026-11-28T012:30:45Z',
    '2026-11-28T12:3:45Z',
    '2026-11-28T12:030:45Z',
    '2026-11-28T12:30:5Z',
    '2026-11-28T12:30:045Z',
    '2026-11-28T12:30:45.Z',
    '2026-11-28T12:30:45.1234567890Z',
    '2026-11-28T12:30:45+2:00',
    '2026-11-28T12:30:45+002:00',
    '2026-11-28T12:30:45+02:0',
    '2026-11-28T12:30:45+02:000',
    // Not digits.
    'abcd-11-28T12:30:45Z',
    '2026-ab-28T12:30:45Z',
    '2026-11-abT12:30:45Z',
    '2026-11-28Tab:30:45Z',
    '2026-11-28T12:ab:45Z',
    '2026-11-28T12:30:abZ',
    '2026-11-28T12:30:45.abcZ',
    '2026-11-28T12:30:45+ab:00',
    '2026-11-28T12:30:45+02:ab',
    '２０２６-11-28T12:30:45Z',
    // Both an offset and Z, or text around it.
    '2026-11-28T12:30:45Z+00:00',
    '2026-11-28T12:30:45+00:00Z',
    ' 2026-11-28T12:30:45Z',
    '2026-11-28T12:30:45Z ',
    'x2026-11-28T12:30:45Z',
    '2026-11-28T12:30:45Zx',
    '2026-11-28T12:30:45Z\n',
    // Instants that do not exist.
    '2026-00-10T00:00:00Z',
    '2026-13-10T00:00:00Z',
    '2026-11-00T00:00:00Z',
    '2026-11-31T00:00:00Z',
    '2026-12-32T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-11-28T24:00:00Z',
    '2026-11-28T12:60:00Z',
    '2026-11-28T12:30:61Z',
    '2026-11-28T12:30:45+24:00',
    '2026-11-28T12:30:45+02:60',
  ])('%j is refused', (text) => {
    expect(parseDateTime(text)).toBeNull();
  });
});

describe('latestEnd: the first instant of the day after tomorrow (UTC)', () => {
  test.each([
    ['2026-11-29T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    ['2026-11-29T12:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    ['2026-11-29T23:59:59.999Z', '2026-12-01T00:00:00.000Z'],
    ['2026-12-31T10:00:00.000Z', '2027-01-02T00:00:00.000Z'],
    ['2028-02-28T10:00:00.000Z', '2028-03-01T00:00:00.000Z'],
  ])('now %s: %s', (now, limit) => {
    expect(new Date(latestEnd(new Date(now))).toISOString()).toBe(limit);
  });
});

describe('periodProblem: the period a report may cover', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  const ok = null;
  const TOO_LATE: [string, string] = [
    'end-datetime',
    'is after tomorrow (2026-11-30, UTC): a report covers a period that has ended',
  ];
  const TOO_LONG = (days: number): [string, string] => [
    'end-datetime',
    `makes the period longer than ${days} day(s) (a report covers one day, RFC 8460 §4.1)`,
  ];
  test.each([
    // One UTC day, as reporters send it (end at 00:00 of the next day, or at 23:59:59).
    ['2026-11-28T00:00:00Z', '2026-11-29T00:00:00Z', 1, ok],
    ['2026-11-28T00:00:00Z', '2026-11-28T23:59:59Z', 1, ok],
    // A period of no length, or one that ends before it starts.
    ['2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', 1, ok],
    ['2026-11-28T00:00:00.001Z', '2026-11-28T00:00:00Z', 1, ['end-datetime', 'is before start-datetime']],
    // The floor: 2016-01-01T00:00:00Z exactly, and one millisecond before.
    ['2016-01-01T00:00:00Z', '2016-01-01T12:00:00Z', 1, ok],
    [
      '2015-12-31T23:59:59.999Z',
      '2016-01-01T12:00:00Z',
      1,
      ['start-datetime', 'is before 2016-01-01: no TLS-RPT report is that old'],
    ],
    // The latest end: tomorrow's last instant, and one millisecond later (reporters' clocks may be ahead by a day).
    ['2026-11-30T00:00:00Z', '2026-11-30T23:59:59.999Z', 1, ok],
    ['2026-11-30T00:00:00Z', '2026-12-01T00:00:00Z', 1, TOO_LATE],
    ['2026-12-05T00:00:00Z', '2026-12-06T00:00:00Z', 1, TOO_LATE],
    // The period limit exactly, and one millisecond over.
    ['2026-11-26T00:00:00Z', '2026-11-29T00:00:00Z', 3, ok],
    ['2026-11-26T00:00:00Z', '2026-11-29T00:00:00.001Z', 3, TOO_LONG(3)],
    ['2026-11-28T00:00:00Z', '2026-11-29T00:00:00Z', 1, ok],
    ['2026-11-27T23:59:59.999Z', '2026-11-29T00:00:00Z', 1, TOO_LONG(1)],
    ['2016-01-01T00:00:00Z', '2026-11-29T00:00:00Z', 7, TOO_LONG(7)],
  ] as const)('%s to %s, at most %i day(s): %j', (start, end, days, problem) => {
    expect(periodProblem(at(start), at(end), now, days)).toEqual(problem);
  });

  test('the floor is checked first, then the order, then the end, then the length', () => {
    const old = at('2015-06-01T00:00:00Z');
    expect(periodProblem(old, old - DAY, now, 1)?.[0]).toBe('start-datetime');
    expect(periodProblem(at('2027-01-02T00:00:00Z'), at('2027-01-01T00:00:00Z'), now, 1)).toEqual([
      'end-datetime',
      'is before start-datetime',
    ]);
    expect(periodProblem(at('2020-01-01T00:00:00Z'), at('2027-01-01T00:00:00Z'), now, 1)).toEqual(TOO_LATE);
  });

  test('OLDEST_REPORT is 2016-01-01 UTC', () => {
    expect(new Date(OLDEST_REPORT).toISOString()).toBe('2016-01-01T00:00:00.000Z');
  });
});

describe('daysAgo: whole UTC days from a report day to now', () => {
  test.each([
    ['2026-11-29', '2026-11-29T00:00:00Z', 0],
    ['2026-11-29', '2026-11-29T23:59:59Z', 0],
    ['2026-11-28', '2026-11-29T00:00:01Z', 1],
    ['2026-11-30', '2026-11-29T23:00:00Z', -1],
    ['2026-10-30', '2026-11-29T08:00:00Z', 30],
    ['2025-11-29', '2026-11-29T08:00:00Z', 365],
  ])('%s at %s: %i', (day, now, n) => {
    expect(daysAgo(day, new Date(now))).toBe(n);
  });
});
