import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isStsRecord, parseStsRecord } from '../../src/core/sts-record.js';

describe('parseStsRecord (RFC 8461 §3.1)', () => {
  test.each([
    // RFC 8461 §3.1 example
    ['v=STSv1; id=20160831085700Z;', '20160831085700Z', []],
    ['v=STSv1; \t id=20160831085700Z  \t;', '20160831085700Z', []],
    ['v=STSv1; id=a', 'a', []],
    ['v=STSv1;id=abc123', 'abc123', []],
    [
      'v=STSv1; id=a; more=a; ext=2',
      'a',
      [
        { name: 'more', value: 'a' },
        { name: 'ext', value: '2' },
      ],
    ],
    ['v=STSv1; id=01234567890123456789012345678901', '01234567890123456789012345678901', []],
    ['v=STSv1; id=first; id=second', 'first', []],
    ['v=STSv1; id=x; ', 'x', []],
  ])('accepts %j', (txt, id, extensions) => {
    const result = parseStsRecord(txt);
    expect(result.problems).toEqual([]);
    expect(result.record).toEqual({ id, extensions });
  });

  test.each([
    ['v=STSv0', 'must start with "v=STSv1"'],
    ['v=STSv10', 'must be followed by ";"'],
    ['v=STSv2; id=1', 'must start with "v=STSv1"'],
    ['v=stsv1; id=1', 'case-sensitive'],
    ['id=1; v=STSv1', 'must start with "v=STSv1"'],
    [' v=STSv1; id=1', 'must start with "v=STSv1"'],
    ['v=STSv1', 'id field is missing'],
    ['v=STSv1;', 'id field is missing'],
    ['v=STSv1; ext=1', 'id field is missing'],
    ['v=STSv1; id=', '1 to 32 letters and digits'],
    ['v=STSv1; id=012345678901234567890123456789012', '1 to 32 letters and digits'],
    ['v=STSv1; id=test-123', '1 to 32 letters and digits'],
    ['v=STSv1; id=2026.11.29', '1 to 32 letters and digits'],
    ['v=STSv1; id=a; more=', 'empty value'],
    ['v=STSv1; id=a; a12345678901234567890123456789012=1', 'not a valid extension name'],
    ['v=STSv1; id=a; 1%=a', 'not a valid extension name'],
    ['v=STSv1; id=a; test==', 'empty value or one with'],
    ['v=STSv1; id=a;;', 'empty field'],
    ['v=STSv1; id=a b', '1 to 32 letters and digits'],
    ['v=STSv1; id', 'not of the form name=value'],
  ])('refuses %j', (txt, why) => {
    const result = parseStsRecord(txt);
    expect(result.record).toBeNull();
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]?.code).toBe('STS_RECORD_INVALID');
    expect(result.problems[0]?.message).toContain(why);
  });

  test('only records starting with v=STSv1 count as MTA-STS records', () => {
    expect(isStsRecord('v=STSv1; id=1')).toBe(true);
    expect(isStsRecord('v=spf1 -all')).toBe(false);
    expect(isStsRecord('V=STSv1; id=1')).toBe(false);
  });

  test('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (txt) => {
        const r = parseStsRecord(txt);
        expect(r.record === null).toBe(r.problems.length > 0);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (tail) => {
        parseStsRecord(`v=STSv1;${tail}`);
      }),
      { numRuns: 2000 },
    );
  });

  test('every well-formed record parses back to its id', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9]{1,32}$/), (id) => {
        expect(parseStsRecord(`v=STSv1; id=${id}`).record?.id).toBe(id);
      }),
    );
  });
});
