import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { canonicalHost, hostnameProblem, parseDomain } from '../../src/core/domain.js';

/** Names at the length limits (RFC 1035 §2.3.4): 63 characters a label, 253 a name written without its final dot. */
const label63 = 'a'.repeat(63);
const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
const name254 = `${name253}d`;
/** A German law's name, 63 letters: short enough as typed, 70 characters once written in A-labels. */
const gesetz = 'rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz';

describe('parseDomain', () => {
  test.each([
    ['example.com', 'example.com', 'example.com'],
    ['  Example.COM.  ', 'example.com', 'example.com'],
    ['mail-1.sub.example.co.uk', 'mail-1.sub.example.co.uk', 'mail-1.sub.example.co.uk'],
    ['a.example.com', 'a.example.com', 'a.example.com'],
    ['123.example', '123.example', '123.example'],
    ['example.123', 'example.123', 'example.123'],
    ['bücher.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['BÜCHER.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['mail.XN--BCHER-KVA.example', 'mail.xn--bcher-kva.example', 'mail.bücher.example'],
    ['例え.テスト', 'xn--r8jz45g.xn--zckzah', '例え.テスト'],
    [`${label63}.com`, `${label63}.com`, `${label63}.com`],
    [name253, name253, name253],
    [`${name253}.`, name253, name253],
  ])('accepts %j as %s', (input, ascii, unicode) => {
    expect(parseDomain(input)).toEqual({ ok: true, domain: { ascii, unicode } });
  });

  test.each([
    ['foo bar', 'it contains white space'],
    ['exam\u00a0ple.com', 'it contains white space'],
    ['-rf', 'it starts with a hyphen'],
    ['a..b.com', 'it has an empty label (two dots in a row)'],
    ['.example.com', 'it has an empty label (two dots in a row)'],
    ['example.com..', 'it has an empty label (two dots in a row, or a leading dot)'],
    ['.', 'it is empty'],
    ['192.0.2.1', 'it is an IP address; MTA-STS is published for a domain name'],
    ['[192.0.2.1]', 'it is an IP address; MTA-STS is published for a domain name'],
    ['[2001:db8::1]', 'it is an IP address; MTA-STS is published for a domain name'],
    ['2001:db8::1', 'it is an IP address; MTA-STS is published for a domain name'],
    ['1.2.3', 'it looks like a number or an IP address, not a domain'],
    ['localhost', 'localhost is not a mail domain'],
    ['mail.localhost.', 'localhost is not a mail domain'],
    ['https://example.com/', 'give the bare domain (example.com), not a URL or an e-mail address'],
    ['example.com/path', 'give the bare domain (example.com), not a URL or an e-mail address'],
    ['user@example.com', 'give the bare domain (example.com), not a URL or an e-mail address'],
    [`${'a'.repeat(64)}.com`, 'the label "aaaaaaaaaaaaaaaaaaaa…" is 64 characters; at most 63'],
    [`ü${'a'.repeat(63)}.com`, 'the label "üaaaaaaaaaaaaaaaaaaa…" is 64 characters; at most 63'],
    [`${gesetz}.de`, 'the label "xn--rindfleischetike…" is 70 characters; at most 63'],
    [
      'exa_mple.com',
      'the label "exa_mple" holds a character a host name cannot hold (only letters, digits and hyphens)',
    ],
    [
      'ex!ample.com',
      'the label "ex!ample" holds a character a host name cannot hold (only letters, digits and hyphens)',
    ],
    ['example-.com', 'the label "example-" starts or ends with a hyphen'],
    ['mail.-example.com', 'the label "-example" starts or ends with a hyphen'],
    ['com', 'it has a single label; give a full domain such as example.com'],
    ['info＠例え.テスト', 'it is not a valid internationalized domain name (IDNA)'],
    ['bücher<.example', 'it is not a valid internationalized domain name (IDNA)'],
    // An "xn--" label is an A-label only if it decodes (RFC 5890 §2.3.2.1).
    ['xn--zz.example', 'it is not a valid internationalized domain name (IDNA)'],
    ['mail.xn--.example', 'it is not a valid internationalized domain name (IDNA)'],
  ])('refuses %j: %s', (input, why) => {
    expect(parseDomain(input)).toEqual({ ok: false, error: `"${input.trim()}" is not a domain: ${why}` });
  });

  test.each(['', '   '])('refuses %j: no domain given', (input) => {
    expect(parseDomain(input)).toEqual({
      ok: false,
      error: 'no domain given: name a domain such as example.com',
    });
  });

  test('what the user typed is quoted visibly and cut short', () => {
    expect(parseDomain('exa\u0000mple.com')).toEqual({
      ok: false,
      error: '"exa\\x00mple.com" is not a domain: it is not a valid internationalized domain name (IDNA)',
    });
    expect(parseDomain(name254)).toEqual({
      ok: false,
      error: `"${name254.slice(0, 79)}…" is not a domain: it is 254 characters long; a domain name holds at most 253`,
    });
  });

  test('never throws: either a lower-case A-label name of at most 253 characters, or one line saying why not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const r = parseDomain(s);
        if (r.ok) {
          expect(r.domain.ascii).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
          expect(r.domain.ascii.length).toBeLessThanOrEqual(253);
        } else {
          expect(r.error).toMatch(/^(no domain given: |".*" is not a domain: )\S/s);
          expect(r.error).not.toContain('\n');
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('hostnameProblem (the LDH rule, RFC 1123 / RFC 5890)', () => {
  test.each([
    ['mx1.example.com', null],
    ['a.b', null],
    ['x', null],
    [name253, null],
    ['', 'it is empty'],
    [name254, 'it is 254 characters long; a domain name holds at most 253'],
    ['mx..example.com', 'it has an empty label (two dots in a row, or a leading dot)'],
    [`${'m'.repeat(64)}.example.com`, 'the label "mmmmmmmmmmmmmmmmmmmm…" is 64 characters; at most 63'],
    ['-mx.example.com', 'the label "-mx" starts or ends with a hyphen'],
    ['mx.example-.com', 'the label "example-" starts or ends with a hyphen'],
    [
      'mx_1.example.com',
      'the label "mx_1" holds a character a host name cannot hold (only letters, digits and hyphens)',
    ],
  ])('%j: %s', (name, problem) => {
    expect(hostnameProblem(name)).toBe(problem);
  });
});

describe('canonicalHost: the form in which two host names are compared', () => {
  test.each([
    ['MX1.Example.COM.', 'mx1.example.com'],
    ['mx1.example.com', 'mx1.example.com'],
    ['mx1.example.com..', 'mx1.example.com.'],
  ])('%j -> %j', (name, canonical) => {
    expect(canonicalHost(name)).toBe(canonical);
  });
});
