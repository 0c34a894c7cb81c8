/**
 * RFC 3339 date-times (section 5.6, `date-time`) read strictly, and the period a TLS-RPT report may cover. Pure: the
 * clock comes in as an argument.
 */

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const DAY_MS = 86_400_000;

/**
 * No TLS-RPT report can be older than the protocol: RFC 8460's own example report is dated 2016-04-01, the year the
 * first drafts appeared.
 */
export const OLDEST_REPORT = Date.UTC(2016, 0, 1);

/** Milliseconds since the epoch, or null when the text is not an RFC 3339 date-time naming a real instant. */
export function parseDateTime(text: string): number | null {
  const m = DATE_TIME.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  // 60 is a leap second (RFC 3339 §5.7); it is counted as the last millisecond of the minute.
  if (hour > 23 || minute > 59 || second > 60 || offsetHours > 23 || offsetMinutes > 59) return null;
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const local = Date.UTC(
    year,
    month - 1,
    day,
    hour,
    minute,
    Math.min(second, 59),
    second === 60 ? 999 : fraction,
  );
  const sign = m[9] === '-' ? -1 : 1;
  return local - (m[8] ? 0 : sign * (offsetHours * 60 + offsetMinutes) * 60_000);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The first instant of the UTC day after tomorrow: a report's period must have ended before it. */
export function latestEnd(now: Date): number {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return today + 2 * DAY_MS;
}

/**
 * What is wrong with a report's period, as `[field, message]`, or null when it is one a sender can have reported:
 * start no earlier than 2016, start not after end, end no later than tomorrow (UTC, by `now`), and at most
 * `maxPeriodDays` long.
 */
export function periodProblem(
  start: number,
  end: number,
  now: Date,
  maxPeriodDays: number,
): [field: string, message: string] | null {
  if (start < OLDEST_REPORT) return ['start-datetime', 'is before 2016-01-01: no TLS-RPT report is that old'];
  if (end < start) return ['end-datetime', 'is before start-datetime'];
  const limit = latestEnd(now);
  if (end >= limit) {
    const tomorrow = new Date(limit - DAY_MS).toISOString().slice(0, 10);
    return ['end-datetime', `is after tomorrow (${tomorrow}, UTC): a report covers a period that has ended`];
  }
  if (end - start > maxPeriodDays * DAY_MS)
    return [
      'end-datetime',
      `makes the period longer than ${maxPeriodDays} day(s) (a report covers one day, RFC 8460 §4.1)`,
    ];
  return null;
}

/** Whole UTC days from `day` (YYYY-MM-DD) to the day of `now`: 0 today, 1 yesterday, -1 tomorrow. */
export function daysAgo(day: string, now: Date): number {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Math.round((today - Date.parse(`${day}T00:00:00Z`)) / DAY_MS);
}
