import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  extensionProblem,
  formatFieldList,
  type OwnField,
  readFieldList,
} from '../../src/core/txt-fields.js';

/** A record that owns the field `own`: a value "bad" is refused, any other value taken. */
const owning: OwnField = (name, value) => {
  if (name !== 'own') return undefined;
  return value === 'bad' ? 'own is bad' : null;
};

describe('readFieldList: the name=value; grammar of RFC 8461 §3.1 and RFC 8460 §3', () => {
  test.each([
    ['', []],
    [';', []],
    [' \t', []],
    ['own=1', []],
    ['own=1;', []],
    ['own=1 ;', []],
    ['own=1 \t; \t', []],
    ['own=1;ext=2', [{ name: 'ext', value: '2' }]],
    ['ext=2; own=1', [{ name: 'ext', value: '2' }]],
    [' \t ext=2 \t ; own=1', [{ name: 'ext', value: '2' }]],
    [
      'a=1; b.c_d-e=~!:<>',
      [
        { name: 'a', value: '1' },
        { name: 'b.c_d-e', value: '~!:<>' },
      ],
    ],
    ['own=a=b', []],
    ['own=', []],
    [`${'x'.repeat(32)}=1`, [{ name: 'x'.repeat(32), value: '1' }]],
  ])('reads %j', (text, extensions) => {
    expect(readFieldList(text, owning)).toEqual({ extensions, problem: null });
  });

  test.each([
    [';;', 'an empty field (two ";" in a row)'],
    ['own=1;;ext=2', 'an empty field (two ";" in a row)'],
    ['own=1; ;', 'an empty field (two ";" in a row)'],
    ['own', 'the field "own" is not of the form name=value'],
    ['=1', 'the field "=1" is not of the form name=value'],
    ['own=1; ext', 'the field "ext" is not of the form name=value'],
    ['own=bad', 'own is bad'],
    ['ext=1; own=bad; =', 'own is bad'],
    ['own=bad; =', 'own is bad'],
    ['e xt=1', 'the field name "e xt" is not a valid extension name'],
    ['_ext=1', 'the field name "_ext" is not a valid extension name'],
    [`${'x'.repeat(33)}=1`, `the field name "${'x'.repeat(33)}" is not a valid extension name`],
    ['ext=', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=a b', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=a=b', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=é', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=\x7f', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=a\nb', 'the field "ext" has an empty value or one with a space, "=" or ";"'],
    ['ext=1; e\x01=2', 'the field name "e\\x01" is not a valid extension name'],
  ])('refuses %j: %s', (text, problem) => {
    expect(readFieldList(text, owning)).toEqual({ extensions: [], problem });
  });

  test('each field is seen in order, once, with white space around it removed', () => {
    const seen: string[] = [];
    readFieldList(' a=1 ;\tb=2\t; a=3 ;', (name, value) => {
      seen.push(`${name}:${value}`);
      return null;
    });
    expect(seen).toEqual(['a:1', 'b:2', 'a:3']);
  });

  test('extension values: every visible ASCII character except "=" and ";"', () => {
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const ok = c >= 0x21 && c <= 0x7e && ch !== '=' && ch !== ';';
      expect(extensionProblem('x', `a${ch}`) === null, JSON.stringify(ch)).toBe(ok);
    }
  });

  test('never throws; what it formats reads back to the same fields', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const r = readFieldList(text, owning);
        expect(r.problem === null || r.extensions.length === 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
    const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/);
    const value = fc.stringMatching(/^[\x21-\x3a\x3c\x3e-\x7e]{1,20}$/);
    fc.assert(
      fc.property(fc.array(fc.record({ name, value }), { maxLength: 6 }), (fields) => {
        const text = formatFieldList('v=X', fields);
        expect(text.startsWith('v=X')).toBe(true);
        expect(readFieldList(text.slice(3).replace(/^; /, ''), () => undefined)).toEqual({
          extensions: fields,
          problem: null,
        });
      }),
    );
  });
});
