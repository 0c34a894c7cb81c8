import type { PolicyMode } from './policy.js';

/**
 * The rollout rule, testing -> enforce, in one place: the monitor's "ready to enforce" alert, `records` and the setup
 * form all ask it. Enforce is offered once the domain has been in testing with no errors for the whole window (14
 * days by default) and no TLS-RPT report has told of failed sessions in that time.
 */

/** The default window: 14 days. */
export const ROLLOUT_WINDOW_MS = 14 * 86_400_000;

export interface RolloutInput {
  /** The published policy's mode; null when there is no valid policy. */
  mode: PolicyMode | null;
  /** Since when the domain has been in testing with no errors (see cleanSince); null when no clock runs. */
  cleanSince: string | null;
  /** The end of the latest TLS-RPT period with failed sessions; null when none was reported. */
  lastReportedFailureAt: string | null;
  now: Date;
  windowMs: number;
}

export interface RolloutVerdict {
  ready: boolean;
  /** Since when the window counts: the later of cleanSince and the last reported failure; null when no clock runs. */
  since: string | null;
  /** When the window is complete if nothing goes wrong; null when no clock runs. */
  readyAt: string | null;
  /** What enforce still needs, in words; empty when ready. */
  missing: string[];
}

/**
 * The clean-since mark after one look at the domain: kept while it is in testing with no errors, started now when it
 * becomes so, dropped otherwise.
 */
export function cleanSince(
  previous: string | null,
  mode: PolicyMode | null,
  hasErrors: boolean,
  now: Date,
): string | null {
  return mode === 'testing' && !hasErrors ? (previous ?? now.toISOString()) : null;
}

/** The rule itself: ready or not, since when, when it will be, and what is missing. Pure. */
export function rolloutVerdict(input: RolloutInput): RolloutVerdict {
  const { mode, lastReportedFailureAt: failure, now, windowMs } = input;
  const days = durationText(windowMs / 1000);
  if (mode !== 'testing') {
    const missing =
      mode === 'enforce'
        ? 'the policy is already in enforce'
        : `a policy in testing first (it is ${mode === null ? 'missing or invalid' : `in ${mode}`}): enforce follows ${days} of testing`;
    return { ready: false, since: null, readyAt: null, missing: [missing] };
  }
  const clean = input.cleanSince;
  if (clean === null) {
    return {
      ready: false,
      since: null,
      readyAt: null,
      missing: [`${days} in testing with no errors, counted by the monitor from its first clean pass`],
    };
  }
  const since = failure !== null && failure > clean ? failure : clean;
  const readyAtMs = Date.parse(since) + windowMs;
  const readyAt = new Date(readyAtMs).toISOString();
  if (now.getTime() >= readyAtMs) return { ready: true, since, readyAt, missing: [] };
  const missing =
    since === failure
      ? `${days} with no reported TLS failures: the last reported failure was at ${since}, so not before ${readyAt}`
      : `${days} in testing with no errors: clean since ${since}, so not before ${readyAt}`;
  return { ready: false, since, readyAt, missing: [missing] };
}

/** A duration in seconds as people say it: "14 days", "1 day", "365.25 days", "about 1.16 days", "12 hours". */
export function durationText(seconds: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds >= 86400) {
    const days = Math.round(seconds / 864) / 100;
    return `${days * 86400 === seconds ? '' : 'about '}${plural(days, 'day')}`;
  }
  if (seconds >= 3600 && seconds % 3600 === 0) return plural(seconds / 3600, 'hour');
  if (seconds >= 60 && seconds % 60 === 0) return plural(seconds / 60, 'minute');
  return plural(seconds, 'second');
}
