import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { mxPatternMatches, parsePolicy } from '../../src/core/policy.js';

const codes = (text: string) => parsePolicy(text).problems.map((p) => p.code);

describe('parsePolicy (RFC 8461 §3.2)', () => {
  test('the RFC 8461 §3.2 example', () => {
    const r = parsePolicy(
      'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n',
    );
    expect(r.valid).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.policy).toEqual({
      version: 'STSv1',
      mode: 'enforce',
      maxAge: 604800,
      mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
      extensions: [],
    });
  });

  test.each([
    ['CRLF line ends', 'version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n'],
    ['mixed line ends', 'version: STSv1\nmode: testing\r\nmx: mx.example.com\nmax_age: 86400'],
    ['no final line break', 'version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400'],
    [
      'no space after the colon, tabs and trailing space',
      'version:STSv1\nmode:\ttesting \nmx:  \t *.example.com\nmax_age: 1 ',
    ],
    ['fields in another order', 'max_age: 86400\nmx: mx.example.com\nmode: testing\nversion: STSv1\n'],
    ['mode none without mx', 'version: STSv1\nmode: none\nmax_age: 86400\n'],
    ['max_age 0', 'version: STSv1\nmode: none\nmax_age: 0\n'],
    ['max_age at the limit', 'version: STSv1\nmode: none\nmax_age: 31557600\n'],
    ['upper-case mx', 'version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 86400\n'],
  ])('accepts %s', (_name, text) => {
    const r = parsePolicy(text);
    expect(r.problems).toEqual([]);
    expect(r.valid).toBe(true);
  });

  test.each([
    ['empty', '', 'version field is missing'],
    ['version STSv0', 'version:STSv0\nmode:none\nmax_age:0', 'version must be "STSv1"'],
    ['version STSv10', 'version:STSv10\nmode:none\nmax_age:0', 'version must be "STSv1"'],
    ['version in lower case', 'version: stsv1\nmode:none\nmax_age:0', 'version must be "STSv1"'],
    ['missing mode', 'version:STSv1\nmax_age:0\nmx:example.com', 'mode field is missing'],
    ['missing max_age', 'version:STSv1\nmode:none', 'max_age field is missing'],
    ['enforce without mx', 'version:STSv1\nmax_age:0\nmode:enforce', 'lists no mx'],
    ['testing without mx', 'version:STSv1\nmax_age:0\nmode:testing', 'lists no mx'],
    ['missing version', 'max_age:0\nmode:none', 'version field is missing'],
    ['max_age of 11 digits', 'version:STSv1\nmode:none\nmax_age:01234567890', '1 to 10 digits'],
    ['max_age over a year', 'version:STSv1\nmode:none\nmax_age:31557601', 'over the limit'],
    ['max_age negative', 'version:STSv1\nmode:none\nmax_age:-1', '1 to 10 digits'],
    ['bad mode', 'version:STSv1\nmode:bad\nmax_age:1', 'mode must be'],
    ['mode in capitals', 'version:STSv1\nmode:Enforce\nmax_age:1\nmx:a.example', 'mode must be'],
    ['bad max_age', 'version:STSv1\nmode:none\nmax_age:a', '1 to 10 digits'],
    ['mx without value', 'version:STSv1\nmode:enforce\nmax_age:0\nmx:', 'has no value'],
    [
      'double wildcard',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:*.*.example',
      'wildcard only as its whole leftmost label',
    ],
    ['** wildcard', 'version:STSv1\nmode:enforce\nmax_age:0\nmx:**.example', 'wildcard only'],
    [
      'wildcard inside a label',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:mx*.example.com',
      'wildcard only',
    ],
    [
      'trailing hyphen',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:test.example-',
      'starts or ends with a hyphen',
    ],
    ['U-label mx', 'version:STSv1\nmode:none\nmax_age:0\nmx: møx.example', 'A-labels'],
    [
      'mx with a trailing dot',
      'version:STSv1\nmode:enforce\nmax_age:1\nmx: mx.example.com.',
      'must not end with a dot',
    ],
    ['mx with a port', 'version:STSv1\nmode:enforce\nmax_age:1\nmx: mx.example.com:25', 'not a host name'],
    ['single-label mx', 'version:STSv1\nmode:enforce\nmax_age:1\nmx: localhost', 'not a fully qualified'],
    ['empty extension', 'version:STSv1\nmode:none\nmax_age:0\next:', 'has no value'],
    [
      'long extension name',
      'version:STSv1\nmode:none\nmax_age:0\na12345678901234567890123456789012:123',
      'not a valid field name',
    ],
    ['bad extension name', 'version:STSv1\nmode:none\nmax_age:0\n_bad:test', 'not a valid field name'],
    ['a line without colon', 'version: STSv1\nmode: none\nmax_age 86400\n', 'not of the form key: value'],
    ['a blank line between fields', 'version: STSv1\n\nmode: none\nmax_age: 86400\n', 'line 2 is empty'],
    ['an HTML page', '<html><body>Not found</body></html>', 'not of the form key: value'],
    ['a bare CR as line end', 'version: STSv1\rmode: none\rmax_age: 86400', 'carriage return'],
  ])('refuses %s', (_name, text, why) => {
    const r = parsePolicy(text);
    expect(r.valid).toBe(false);
    const messages = r.problems.filter((p) => p.code === 'POLICY_SYNTAX').map((p) => p.message);
    expect(messages.join(' | ')).toContain(why);
  });

  test('a duplicate field: the first counts, with a warning; mx may repeat', () => {
    const r = parsePolicy(
      'version: STSv1\nmode: testing\nmode: enforce\nmx: a.example.com\nmx: b.example.com\nmax_age: 86400\nmax_age: 5\n',
    );
    expect(r.valid).toBe(true);
    expect(r.policy.mode).toBe('testing');
    expect(r.policy.maxAge).toBe(86400);
    expect(r.policy.mx).toEqual(['a.example.com', 'b.example.com']);
    expect(r.problems.map((p) => p.code)).toEqual(['POLICY_DUPLICATE_FIELD', 'POLICY_DUPLICATE_FIELD']);
  });

  test('an unknown field is a warning, with a hint for typos', () => {
    const r = parsePolicy(
      'version: STSv1\nmode: enforce\nnmx: mx.example.com\nmx: mx.example.com\nmax_age: 86400\nfoo: bar baz\n',
    );
    expect(r.valid).toBe(true);
    expect(
      codes('version: STSv1\nmode: enforce\nnmx: mx.example.com\nmx: mx.example.com\nmax_age: 86400\n'),
    ).toEqual(['POLICY_UNKNOWN_FIELD']);
    expect(r.problems[0]?.message).toContain('did you mean "mx"');
    expect(r.policy.extensions).toEqual([
      { name: 'nmx', value: 'mx.example.com' },
      { name: 'foo', value: 'bar baz' },
    ]);
  });

  test('a field name in capitals is unknown, and the policy then lacks the real field', () => {
    const r = parsePolicy('Version: STSv1\nmode: none\nmax_age: 86400\n');
    expect(r.valid).toBe(false);
    expect(r.problems[0]?.message).toContain('case-sensitive');
  });

  test('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        const r = parsePolicy(text);
        expect(r.valid).toBe(!r.problems.some((p) => p.code === 'POLICY_SYNTAX'));
      }),
      { numRuns: 2000 },
    );
    const line = fc.oneof(
      fc.constantFrom(
        'version: STSv1',
        'mode: enforce',
        'mode: none',
        'max_age: 86400',
        'mx: *.example.com',
        '',
      ),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
        parsePolicy(lines.join(eol));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('mxPatternMatches (RFC 8461 §4.1)', () => {
  test.each([
    ['mail.example.com', 'mail.example.com', true],
    ['mail.example.com', 'MAIL.Example.com.', true],
    ['MAIL.EXAMPLE.COM', 'mail.example.com', true],
    ['*.example.com', 'mx1.example.com', true],
    ['*.example.com', 'MX1.EXAMPLE.COM.', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['*.example.com', 'mx1.example.net', false],
    ['*.example.com', 'evilexample.com', false],
    ['mail.example.com', 'evilmail.example.com', false],
    ['mail.example.com', 'mail.example.com.evil.net', false],
    ['mail.example.com', 'mail.example.co', false],
  ])('%s covers %s: %s', (pattern, host, expected) => {
    expect(mxPatternMatches(pattern, host)).toBe(expected);
  });
});
