import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatStsRecord, isStsRecord, parseStsRecord } from '../../src/core/sts-record.js';

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
    ['v=STSv1\t; id=x', 'x', []],
    ['v=STSv1;id=x;', 'x', []],
    ['v=STSv1; id=x ; ', 'x', []],
    // Runs of spaces and tabs around every separator (RFC 8461 §3.1: *WSP ";" *WSP).
    ['v=STSv1;  id=x \t ;\t ext=y  ;  \t', 'x', [{ name: 'ext', value: 'y' }]],
    ['v=STSv1; ext=first; id=x', 'x', [{ name: 'ext', value: 'first' }]],
    ['v=STSv1; id=x; a_b.c-d=~!', 'x', [{ name: 'a_b.c-d', value: '~!' }]],
    [
      'v=STSv1; id=x; a1234567890123456789012345678901=1',
      'x',
      [{ name: 'a1234567890123456789012345678901', value: '1' }],
    ],
  ])('accepts %j', (txt, id, extensions) => {
    const result = parseStsRecord(txt);
    expect(result.problems).toEqual([]);
    expect(result.record).toEqual({ id, extensions });
  });

  test.each([
    ['v=STSv0', 'the record must start with "v=STSv1", seen "v=STSv0"'],
    ['v=STSv10', 'the version "v=STSv1" must be followed by ";" (seen "v=STSv10")'],
    ['v=STSv2; id=1', 'the record must start with "v=STSv1", seen "v=STSv2; id=1"'],
    ['v=stsv1; id=1', 'the version must be exactly "v=STSv1" (case-sensitive), seen "v=stsv1; id=1"'],
    ['V=STSv1; id=1', 'the version must be exactly "v=STSv1" (case-sensitive), seen "V=STSv1; id=1"'],
    ['id=1; v=STSv1', 'the record must start with "v=STSv1", seen "id=1; v=STSv1"'],
    [' v=STSv1; id=1', 'the record must start with "v=STSv1", seen " v=STSv1; id=1"'],
    ['v=STSv1', 'the id field is missing (RFC 8461 §3.1 requires id=<1-32 letters and digits>)'],
    ['v=STSv1;', 'the id field is missing (RFC 8461 §3.1 requires id=<1-32 letters and digits>)'],
    ['v=STSv1; ext=1', 'the id field is missing (RFC 8461 §3.1 requires id=<1-32 letters and digits>)'],
    ['v=STSv1; id=', 'the id "" must be 1 to 32 letters and digits (RFC 8461 §3.1)'],
    [
      'v=STSv1; id=012345678901234567890123456789012',
      'the id "012345678901234567890123456789012" must be 1 to 32 letters and digits (RFC 8461 §3.1)',
    ],
    ['v=STSv1; id=test-123', 'the id "test-123" must be 1 to 32 letters and digits (RFC 8461 §3.1)'],
    ['v=STSv1; id=2026.11.29', 'the id "2026.11.29" must be 1 to 32 letters and digits (RFC 8461 §3.1)'],
    ['v=STSv1; id=a b', 'the id "a b" must be 1 to 32 letters and digits (RFC 8461 §3.1)'],
    ['v=STSv1; id=a; more=', 'the field "more" has an empty value or one with a space, "=" or ";"'],
    ['v=STSv1; id=a; test==', 'the field "test" has an empty value or one with a space, "=" or ";"'],
    ['v=STSv1; id=a; ext=a b', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['v=STSv1; id=a; ext=é', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    [
      'v=STSv1; id=a; a12345678901234567890123456789012=1',
      'the field name "a12345678901234567890123456789012" is not a valid extension name',
    ],
    ['v=STSv1; id=a; 1%=a', 'the field name "1%" is not a valid extension name'],
    ['v=STSv1; id=a;;', 'an empty field (two ";" in a row)'],
    ['v=STSv1; ;id=a', 'an empty field (two ";" in a row)'],
    ['v=STSv1; id', 'the field "id" is not of the form name=value'],
    ['v=STSv1; =1', 'the field "=1" is not of the form name=value'],
    ['v=STSv1; id=1; ext=a;b', 'the field "b" is not of the form name=value'],
  ])('refuses %j: %s', (txt, why) => {
    expect(parseStsRecord(txt)).toEqual({
      record: null,
      problems: [{ code: 'STS_RECORD_INVALID', message: why }],
    });
  });

  test('only records starting with v=STSv1 count as MTA-STS records', () => {
    expect(isStsRecord('v=STSv1; id=1')).toBe(true);
    expect(isStsRecord('v=spf1 -all')).toBe(false);
    expect(isStsRecord('V=STSv1; id=1')).toBe(false);
  });

  /** What every result looks like: a record with a valid id and no problems, or no record and one problem. */
  const wellShaped = (r: ReturnType<typeof parseStsRecord>) => {
    if (r.record) {
      expect(r.problems).toEqual([]);
      expect(r.record.id).toMatch(/^[A-Za-z0-9]{1,32}$/);
    } else {
      expect(r.problems).toEqual([{ code: 'STS_RECORD_INVALID', message: expect.any(String) }]);
    }
  };

  test('never throws, whatever the text; the result is a record or one problem', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (txt) => wellShaped(parseStsRecord(txt))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (tail) => wellShaped(parseStsRecord(`v=STSv1;${tail}`))),
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

describe('formatStsRecord: the record beside its parser', () => {
  test.each([
    [{ id: '20261129T120000' }, 'v=STSv1; id=20261129T120000'],
    [{ id: 'a' }, 'v=STSv1; id=a'],
    [{ id: 'x', extensions: [{ name: 'ext', value: '1' }] }, 'v=STSv1; id=x; ext=1'],
  ])('%j', (record, text) => {
    expect(formatStsRecord(record)).toBe(text);
  });

  test('what it formats parses back to the same id and extensions, with no problems', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/).filter((n) => n !== 'id');
    const value = fc.stringMatching(/^[\x21-\x3a\x3c\x3e-\x7e]{1,20}$/);
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9]{1,32}$/),
        fc.array(fc.record({ name, value }), { maxLength: 4 }),
        (id, extensions) => {
          expect(parseStsRecord(formatStsRecord({ id, extensions }))).toEqual({
            record: { id, extensions },
            problems: [],
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
