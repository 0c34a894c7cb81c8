import { describe, expect, test } from 'vitest';
import { cleanSince, durationText, ROLLOUT_WINDOW_MS, rolloutVerdict } from '../../src/core/rollout.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const at = (days: number) => new Date(T0 + days * DAY).toISOString();

describe('rolloutVerdict: the one rule for testing -> enforce', () => {
  const verdict = (input: {
    mode?: 'testing' | 'enforce' | 'none' | null;
    clean?: number | null;
    failure?: number | null;
    now: number;
    windowDays?: number;
  }) =>
    rolloutVerdict({
      mode: input.mode === undefined ? 'testing' : input.mode,
      cleanSince: input.clean === undefined || input.clean === null ? null : at(input.clean),
      lastReportedFailureAt: input.failure === undefined || input.failure === null ? null : at(input.failure),
      now: new Date(T0 + input.now * DAY),
      windowMs: (input.windowDays ?? 14) * DAY,
    });

  test.each([
    // [case, input, ready, since (days), readyAt (days), missing]
    ['clean for exactly 14 days', { clean: 0, now: 14 }, true, 0, 14, []],
    ['clean for 20 days', { clean: 0, now: 20 }, true, 0, 14, []],
    [
      'clean for 13.9 days',
      { clean: 0, now: 13.9 },
      false,
      0,
      14,
      [
        '14 days in testing with no errors: clean since 2026-11-01T00:00:00.000Z, so not before 2026-11-15T00:00:00.000Z',
      ],
    ],
    [
      'a failure reported after the clean mark restarts the count',
      { clean: 0, failure: 5, now: 14 },
      false,
      5,
      19,
      [
        '14 days with no reported TLS failures: the last reported failure was at 2026-11-06T00:00:00.000Z, so not before 2026-11-20T00:00:00.000Z',
      ],
    ],
    ['14 days after that failure', { clean: 0, failure: 5, now: 19 }, true, 5, 19, []],
    ['a failure before the clean mark does not count', { clean: 3, failure: 1, now: 17 }, true, 3, 17, []],
    ['a failure at the clean mark itself', { clean: 3, failure: 3, now: 17 }, true, 3, 17, []],
    ['a window of 7 days', { clean: 0, now: 7, windowDays: 7 }, true, 0, 7, []],
    [
      'no clock: never clean, or not watched',
      { clean: null, now: 30 },
      false,
      null,
      null,
      ['14 days in testing with no errors, counted by the monitor from its first clean pass'],
    ],
    [
      'no clock, and a failure',
      { clean: null, failure: 1, now: 30 },
      false,
      null,
      null,
      ['14 days in testing with no errors, counted by the monitor from its first clean pass'],
    ],
    [
      'already enforce',
      { mode: 'enforce' as const, clean: 0, now: 30 },
      false,
      null,
      null,
      ['the policy is already in enforce'],
    ],
    [
      'mode none',
      { mode: 'none' as const, clean: 0, now: 30 },
      false,
      null,
      null,
      ['a policy in testing first (it is in none): enforce follows 14 days of testing'],
    ],
    [
      'no policy',
      { mode: null, clean: 0, now: 30 },
      false,
      null,
      null,
      ['a policy in testing first (it is missing or invalid): enforce follows 14 days of testing'],
    ],
  ] as const)('%s', (_name, input, ready, since, readyAt, missing) => {
    expect(verdict(input)).toEqual({
      ready,
      since: since === null ? null : at(since),
      readyAt: readyAt === null ? null : at(readyAt),
      missing,
    });
  });

  test('the default window is 14 days', () => {
    expect(ROLLOUT_WINDOW_MS).toBe(14 * DAY);
  });
});

describe('cleanSince: the mark the rule counts from', () => {
  const now = new Date(T0 + 3 * DAY);
  test.each([
    ['kept while testing without errors', at(1), 'testing', false, at(1)],
    ['started now when it becomes clean', null, 'testing', false, at(3)],
    ['dropped on an error', at(1), 'testing', true, null],
    ['dropped outside testing', at(1), 'enforce', false, null],
    ['never started without a policy', null, null, false, null],
    ['never started with errors', null, 'testing', true, null],
  ] as const)('%s', (_name, previous, mode, errors, expected) => {
    expect(cleanSince(previous, mode, errors, now)).toBe(expected);
  });
});

describe('durationText: durations as people say them', () => {
  test.each([
    [0, '0 seconds'],
    [1, '1 second'],
    [59, '59 seconds'],
    [60, '1 minute'],
    [90, '90 seconds'],
    [120, '2 minutes'],
    [3600, '1 hour'],
    [5400, '90 minutes'],
    [7200, '2 hours'],
    [86399, '86399 seconds'],
    [86400, '1 day'],
    [99999, 'about 1.16 days'],
    [604800, '7 days'],
    [1209600, '14 days'],
    [31557600, '365.25 days'],
  ])('%i seconds: %s', (seconds, text) => {
    expect(durationText(seconds)).toBe(text);
  });
});
