import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  formatPolicy,
  MAX_AGE_LIMIT,
  mxPatternMatches,
  mxPatternProblem,
  POLICY_MODES,
  type Policy,
  type PolicyMode,
  parsePolicy,
} from '../../src/core/policy.js';

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

  const policy = (mode: PolicyMode, maxAge: number, mx: string[]): Policy => ({
    version: 'STSv1',
    mode,
    maxAge,
    mx,
    extensions: [],
  });
  test.each([
    [
      'CRLF line ends',
      'version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n',
      policy('testing', 86400, ['mx.example.com']),
    ],
    [
      'mixed line ends',
      'version: STSv1\nmode: testing\r\nmx: mx.example.com\nmax_age: 86400',
      policy('testing', 86400, ['mx.example.com']),
    ],
    [
      'no final line break',
      'version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400',
      policy('testing', 86400, ['mx.example.com']),
    ],
    [
      'no space after the colon, tabs and trailing space',
      'version:STSv1\nmode:\ttesting \t \nmx:  \t *.example.com\nmax_age: 1 ',
      policy('testing', 1, ['*.example.com']),
    ],
    [
      'fields in another order',
      'max_age: 86400\nmx: mx.example.com\nmode: testing\nversion: STSv1\n',
      policy('testing', 86400, ['mx.example.com']),
    ],
    ['mode none without mx', 'version: STSv1\nmode: none\nmax_age: 86400\n', policy('none', 86400, [])],
    [
      'mode none with mx',
      'version: STSv1\nmode: none\nmx: mx.example.com\nmax_age: 86400\n',
      policy('none', 86400, ['mx.example.com']),
    ],
    ['max_age 0', 'version: STSv1\nmode: none\nmax_age: 0\n', policy('none', 0, [])],
    ['max_age of 10 digits', 'version: STSv1\nmode: none\nmax_age: 0000086400\n', policy('none', 86400, [])],
    ['max_age at the limit', 'version: STSv1\nmode: none\nmax_age: 31557600\n', policy('none', 31557600, [])],
    [
      'upper-case mx, kept in lower case',
      'version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 86400\n',
      policy('testing', 86400, ['mx.example.com']),
    ],
    [
      'a label of 63 characters',
      `version: STSv1\nmode: enforce\nmx: ${'a'.repeat(63)}.example.com\nmax_age: 86400\n`,
      policy('enforce', 86400, [`${'a'.repeat(63)}.example.com`]),
    ],
  ])('accepts %s', (_name, text, expected) => {
    expect(parsePolicy(text)).toEqual({ policy: expected, valid: true, problems: [] });
  });

  test.each([
    [
      'empty',
      '',
      [
        'the version field is missing (the policy must say "version: STSv1")',
        'the mode field is missing (mode: enforce, testing or none)',
        'the max_age field is missing (max_age: <seconds>)',
      ],
    ],
    [
      'white space only',
      '  \n \n',
      [
        'the version field is missing (the policy must say "version: STSv1")',
        'the mode field is missing (mode: enforce, testing or none)',
        'the max_age field is missing (max_age: <seconds>)',
      ],
    ],
    [
      'version STSv0',
      'version:STSv0\nmode:none\nmax_age:0',
      ['line 1: version must be "STSv1", seen "STSv0"'],
    ],
    [
      'version STSv10',
      'version:STSv10\nmode:none\nmax_age:0',
      ['line 1: version must be "STSv1", seen "STSv10"'],
    ],
    [
      'version in lower case',
      'version: stsv1\nmode:none\nmax_age:0',
      ['line 1: version must be "STSv1", seen "stsv1"'],
    ],
    [
      'missing version',
      'max_age:0\nmode:none',
      ['the version field is missing (the policy must say "version: STSv1")'],
    ],
    [
      'missing mode',
      'version:STSv1\nmax_age:0\nmx:example.com',
      ['the mode field is missing (mode: enforce, testing or none)'],
    ],
    ['missing max_age', 'version:STSv1\nmode:none', ['the max_age field is missing (max_age: <seconds>)']],
    [
      'enforce without mx',
      'version:STSv1\nmax_age:0\nmode:enforce',
      ['mode is enforce but the policy lists no mx; every MX host must be covered by an mx line'],
    ],
    [
      'testing without mx',
      'version:STSv1\nmax_age:0\nmode:testing',
      ['mode is testing but the policy lists no mx; every MX host must be covered by an mx line'],
    ],
    [
      'max_age of 11 digits',
      'version:STSv1\nmode:none\nmax_age:01234567890',
      ['line 3: max_age must be 1 to 10 digits (seconds), seen "01234567890"'],
    ],
    [
      'max_age over a year',
      'version:STSv1\nmode:none\nmax_age:31557601',
      ['line 3: max_age 31557601 is over the limit of 31557600 seconds (one year)'],
    ],
    [
      'max_age negative',
      'version:STSv1\nmode:none\nmax_age:-1',
      ['line 3: max_age must be 1 to 10 digits (seconds), seen "-1"'],
    ],
    [
      'max_age not a number',
      'version:STSv1\nmode:none\nmax_age:a',
      ['line 3: max_age must be 1 to 10 digits (seconds), seen "a"'],
    ],
    [
      'bad mode',
      'version:STSv1\nmode:bad\nmax_age:1',
      ['line 2: mode must be enforce, testing or none (lower case), seen "bad"'],
    ],
    [
      'mode in capitals',
      'version:STSv1\nmode:Enforce\nmax_age:1\nmx:a.example',
      ['line 2: mode must be enforce, testing or none (lower case), seen "Enforce"'],
    ],
    [
      'mx without value',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:',
      [
        'line 4: the field "mx" has no value',
        'mode is enforce but the policy lists no mx; every MX host must be covered by an mx line',
      ],
    ],
    [
      'double wildcard',
      'version:STSv1\nmode:none\nmax_age:0\nmx:*.*.example',
      ['line 4: mx "*.*.example" may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ],
    [
      '** wildcard',
      'version:STSv1\nmode:none\nmax_age:0\nmx:**.example',
      ['line 4: mx "**.example" may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ],
    [
      'wildcard inside a label',
      'version:STSv1\nmode:none\nmax_age:0\nmx:mx*.example.com',
      ['line 4: mx "mx*.example.com" may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ],
    [
      'a wildcard alone',
      'version:STSv1\nmode:none\nmax_age:0\nmx: *',
      ['line 4: mx "*" may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ],
    [
      'a wildcard and nothing after',
      'version:STSv1\nmode:none\nmax_age:0\nmx: *.',
      ['line 4: mx "*." is not a host name: it is empty'],
    ],
    [
      'trailing hyphen',
      'version:STSv1\nmode:none\nmax_age:0\nmx:test.example-',
      ['line 4: mx "test.example-" is not a host name: the label "example-" starts or ends with a hyphen'],
    ],
    [
      'a label of 64 characters',
      `version:STSv1\nmode:none\nmax_age:0\nmx: ${'a'.repeat(64)}.example.com`,
      [
        `line 4: mx "${'a'.repeat(59)}…" is not a host name: the label "${'a'.repeat(20)}…" is 64 characters; at most 63`,
      ],
    ],
    [
      'U-label mx',
      'version:STSv1\nmode:none\nmax_age:0\nmx: møx.example',
      ['line 4: mx "møx.example" must be written in A-labels (punycode), without spaces or Unicode'],
    ],
    [
      'mx with a trailing dot',
      'version:STSv1\nmode:none\nmax_age:1\nmx: mx.example.com.',
      ['line 4: mx "mx.example.com." must not end with a dot'],
    ],
    [
      'mx with a port',
      'version:STSv1\nmode:none\nmax_age:1\nmx: mx.example.com:25',
      [
        'line 4: mx "mx.example.com:25" is not a host name: the label "com:25" holds a character a host name cannot hold (only letters, digits and hyphens)',
      ],
    ],
    [
      'single-label mx',
      'version:STSv1\nmode:none\nmax_age:1\nmx: localhost',
      ['line 4: mx "localhost" is not a fully qualified host name'],
    ],
    [
      'empty extension',
      'version:STSv1\nmode:none\nmax_age:0\next:',
      ['line 4: the field "ext" has no value'],
    ],
    [
      'long extension name',
      'version:STSv1\nmode:none\nmax_age:0\na12345678901234567890123456789012:123',
      ['line 4: "a12345678901234567890123456789012" is not a valid field name'],
    ],
    [
      'bad extension name',
      'version:STSv1\nmode:none\nmax_age:0\n_bad:test',
      ['line 4: "_bad" is not a valid field name'],
    ],
    [
      'a line without colon',
      'version: STSv1\nmode: none\nmax_age 86400\n',
      [
        'line 3 ("max_age 86400") is not of the form key: value',
        'the max_age field is missing (max_age: <seconds>)',
      ],
    ],
    [
      'a blank line between fields',
      'version: STSv1\n\nmode: none\nmax_age: 86400\n',
      ['line 2 is empty; the policy must have one key: value pair on every line'],
    ],
    [
      'a blank line between CRLF lines',
      'version: STSv1\r\n\r\nmode: none\r\nmax_age: 86400\r\n',
      ['line 2 is empty; the policy must have one key: value pair on every line'],
    ],
    [
      'two line breaks at the end',
      'version: STSv1\nmode: none\nmax_age: 86400\n\n',
      ['line 4 is empty; the policy must have one key: value pair on every line'],
    ],
    [
      'an HTML page',
      '<html><body>Not found</body></html>',
      [
        'line 1 ("<html><body>Not found</body></html>") is not of the form key: value',
        'the version field is missing (the policy must say "version: STSv1")',
        'the mode field is missing (mode: enforce, testing or none)',
        'the max_age field is missing (max_age: <seconds>)',
      ],
    ],
    [
      'a bare CR as line end',
      'version: STSv1\rmode: none\rmax_age: 86400',
      [
        'line 1 holds a carriage return not followed by a line feed; lines end in LF or CRLF',
        'the version field is missing (the policy must say "version: STSv1")',
        'the mode field is missing (mode: enforce, testing or none)',
        'the max_age field is missing (max_age: <seconds>)',
      ],
    ],
  ])('refuses %s', (_name, text, why) => {
    const r = parsePolicy(text);
    expect(r.valid).toBe(false);
    expect(r.problems).toEqual(why.map((message) => ({ code: 'POLICY_SYNTAX', message })));
  });

  test('a duplicate field: the first counts, with a warning; mx may repeat', () => {
    expect(
      parsePolicy(
        'version: STSv1\nmode: testing\nmode: enforce\nmx: a.example.com\nmx: b.example.com\nmax_age: 86400\nmax_age: 5\nversion: STSv1\n',
      ),
    ).toEqual({
      policy: policy('testing', 86400, ['a.example.com', 'b.example.com']),
      valid: true,
      problems: [
        {
          code: 'POLICY_DUPLICATE_FIELD',
          message: 'line 3: "mode" appears again ("enforce"); senders use the first one',
        },
        {
          code: 'POLICY_DUPLICATE_FIELD',
          message: 'line 7: "max_age" appears again ("5"); senders use the first one',
        },
        {
          code: 'POLICY_DUPLICATE_FIELD',
          message: 'line 8: "version" appears again ("STSv1"); senders use the first one',
        },
      ],
    });
  });

  test('a broken first value is not replaced by a later good one', () => {
    const r = parsePolicy('version: STSv1\nmode: bad\nmode: enforce\nmx: a.example.com\nmax_age: 1\n');
    expect(r.valid).toBe(false);
    expect(r.policy.mode).toBeNull();
    expect(r.problems).toEqual([
      {
        code: 'POLICY_SYNTAX',
        message: 'line 2: mode must be enforce, testing or none (lower case), seen "bad"',
      },
      {
        code: 'POLICY_DUPLICATE_FIELD',
        message: 'line 3: "mode" appears again ("enforce"); senders use the first one',
      },
    ]);
  });

  test.each([
    ['nmx', ' (did you mean "mx"?)'],
    ['mxx', ' (did you mean "mx"?)'],
    ['mod', ' (did you mean "mode"?)'],
    ['moda', ' (did you mean "mode"?)'],
    ['mdoe', ''],
    ['maxage', ' (did you mean "max_age"?)'],
    ['max-age', ' (did you mean "max_age"?)'],
    ['vresion', ''],
    ['Version', ' (field names are case-sensitive: write "version")'],
    ['MX', ' (field names are case-sensitive: write "mx")'],
    ['foo', ''],
  ])('an unknown field %j is a warning that senders ignore it%s', (name, hint) => {
    const r = parsePolicy(`version: STSv1\nmode: none\nmax_age: 86400\n${name}: some value\n`);
    expect(r).toEqual({
      policy: { ...policy('none', 86400, []), extensions: [{ name, value: 'some value' }] },
      valid: true,
      problems: [
        {
          code: 'POLICY_UNKNOWN_FIELD',
          message: `line 4: "${name}" is not a field RFC 8461 defines, so senders ignore it${hint}`,
        },
      ],
    });
  });

  test('a field name in capitals is unknown, and the policy then lacks the real field', () => {
    expect(parsePolicy('Version: STSv1\nmode: none\nmax_age: 86400\n').problems).toEqual([
      {
        code: 'POLICY_UNKNOWN_FIELD',
        message:
          'line 1: "Version" is not a field RFC 8461 defines, so senders ignore it (field names are case-sensitive: write "version")',
      },
      {
        code: 'POLICY_SYNTAX',
        message: 'the version field is missing (the policy must say "version: STSv1")',
      },
    ]);
  });

  test.each([
    ['Unicode text', 'grüße aus Köln', []],
    ['a colon', 'a:b', []],
    ['one character', 'x', []],
    ['a line separator (U+2028), which is not a line break in a policy', 'a\u2028b', []],
    ['a control character', 'a\u0001b', ['line 4: the value of "note" holds a control character']],
    ['a tab inside', 'a\tb', ['line 4: the value of "note" holds a control character']],
  ])('the value of an unknown field may hold anything printable: %s', (_name, value, syntax) => {
    const r = parsePolicy(`version: STSv1\nmode: none\nmax_age: 86400\nnote: ${value}\n`);
    expect(r.policy.extensions).toEqual([{ name: 'note', value }]);
    expect(r.problems).toEqual([
      {
        code: 'POLICY_UNKNOWN_FIELD',
        message: 'line 4: "note" is not a field RFC 8461 defines, so senders ignore it',
      },
      ...syntax.map((message) => ({ code: 'POLICY_SYNTAX', message })),
    ]);
    expect(r.valid).toBe(syntax.length === 0);
  });

  const PROBLEM_CODES = ['POLICY_SYNTAX', 'POLICY_UNKNOWN_FIELD', 'POLICY_DUPLICATE_FIELD'];
  /** What every result looks like: problems named by their rule; valid exactly when none is a syntax error. */
  const wellShaped = (r: ReturnType<typeof parsePolicy>) => {
    for (const p of r.problems) {
      expect(PROBLEM_CODES).toContain(p.code);
      expect(p.message).toMatch(/^\S.*\S$/s);
    }
    expect(r.valid).toBe(!r.problems.some((p) => p.code === 'POLICY_SYNTAX'));
    if (r.valid) {
      expect(r.policy.version).toBe('STSv1');
      expect(POLICY_MODES).toContain(r.policy.mode);
      expect(r.policy.maxAge).toBeLessThanOrEqual(MAX_AGE_LIMIT);
    }
  };

  test('never throws, whatever the text; the result names the rules it breaks', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => wellShaped(parsePolicy(text))),
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
      fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), (lines, eol) =>
        wellShaped(parsePolicy(lines.join(eol))),
      ),
      { numRuns: 2000 },
    );
  });

  test('every well-formed policy parses back to itself, with no problems', () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
    const host = fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.'));
    const pattern = fc.oneof(
      host,
      host.map((h) => `*.${h}`),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...POLICY_MODES),
        fc.integer({ min: 0, max: MAX_AGE_LIMIT }),
        fc.array(pattern, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('\n', '\r\n'),
        (mode, maxAge, mx, eol) => {
          const text = [
            'version: STSv1',
            `mode: ${mode}`,
            ...mx.map((m) => `mx: ${m}`),
            `max_age: ${maxAge}`,
            '',
          ].join(eol);
          expect(parsePolicy(text)).toEqual({ policy: policy(mode, maxAge, mx), valid: true, problems: [] });
        },
      ),
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
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'mx1.example.net', false],
    ['*.example.com', 'evilexample.com', false],
    ['mail.example.com', 'evilmail.example.com', false],
    ['mail.example.com', 'mail.example.com.evil.net', false],
    ['mail.example.com', 'mail.example.co', false],
  ])('%s covers %s: %s', (pattern, host, expected) => {
    expect(mxPatternMatches(pattern, host)).toBe(expected);
  });
});

describe('mxPatternProblem: [*.]hostname in A-labels (RFC 8461 §3.2)', () => {
  test.each([
    ['mx1.example.com', null],
    ['*.example.com', null],
    ['xn--mx-bcher-kva.example', null],
    ['*.com', 'is not a fully qualified host name'],
    ['mx1', 'is not a fully qualified host name'],
    ['*.*.example.com', 'may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ['mx1.*.example.com', 'may hold a wildcard only as its whole leftmost label ("*.example.com")'],
    ['mx1.example.com.', 'must not end with a dot'],
    ['mx 1.example.com', 'must be written in A-labels (punycode), without spaces or Unicode'],
    ['bücher.example', 'must be written in A-labels (punycode), without spaces or Unicode'],
    ['MX1.Example.COM', null],
    [
      'mx_1.example.com',
      'is not a host name: the label "mx_1" holds a character a host name cannot hold (only letters, digits and hyphens)',
    ],
  ])('%j: %s', (pattern, problem) => {
    expect(mxPatternProblem(pattern)).toBe(problem);
  });
});

describe('formatPolicy: the policy file beside its parser', () => {
  test.each([
    [
      { mode: 'enforce' as const, mx: ['mx1.example.com', '*.mail.example.com'], maxAge: 1209600 },
      'version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.mail.example.com\nmax_age: 1209600\n',
    ],
    [{ mode: 'none' as const, mx: [], maxAge: 86400 }, 'version: STSv1\nmode: none\nmax_age: 86400\n'],
  ])('%j', (policy, text) => {
    expect(formatPolicy(policy)).toBe(text);
  });

  test('what it formats parses back to the same mode, mx and max_age, with no problems', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    const pattern = fc
      .tuple(fc.boolean(), fc.array(label, { minLength: 2, maxLength: 4 }))
      .map(([wild, labels]) => `${wild ? '*.' : ''}${labels.join('.')}`)
      .filter((p) => mxPatternProblem(p) === null);
    fc.assert(
      fc.property(
        fc.constantFrom('enforce' as const, 'testing' as const, 'none' as const),
        fc.array(pattern, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 31557600 }),
        (mode, mx, maxAge) => {
          const parsed = parsePolicy(formatPolicy({ mode, mx, maxAge }));
          expect(parsed.problems).toEqual([]);
          expect(parsed.valid).toBe(true);
          expect(parsed.policy).toEqual({ version: 'STSv1', mode, maxAge, mx, extensions: [] });
        },
      ),
      { numRuns: 500 },
    );
  });
});
