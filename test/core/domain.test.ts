import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseDomain } from '../../src/core/domain.js';

describe('parseDomain', () => {
  test.each([
    ['example.com', 'example.com', 'example.com'],
    ['  Example.COM.  ', 'example.com', 'example.com'],
    ['mail-1.sub.example.co.uk', 'mail-1.sub.example.co.uk', 'mail-1.sub.example.co.uk'],
    ['bücher.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['BÜCHER.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'bücher.example'],
    ['例え.テスト', 'xn--r8jz45g.xn--zckzah', '例え.テスト'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ])('accepts %j as %s', (input, ascii, unicode) => {
    const r = parseDomain(input);
    expect(r).toEqual({ ok: true, domain: { ascii, unicode } });
  });

  test.each([
    ['', 'no domain given'],
    ['   ', 'no domain given'],
    ['foo bar', 'white space'],
    ['-rf', 'starts with a hyphen'],
    ['a..b.com', 'empty label'],
    ['.example.com', 'empty label'],
    ['192.0.2.1', 'IP address'],
    ['[2001:db8::1]', 'IP address'],
    ['2001:db8::1', 'IP address'],
    ['localhost', 'localhost'],
    ['mail.localhost', 'localhost'],
    ['https://example.com/', 'not a URL'],
    ['example.com/path', 'not a URL'],
    ['user@example.com', 'e-mail address'],
    [`${'a'.repeat(64)}.com`, 'at most 63'],
    [`${'abcdefghi.'.repeat(26)}com`, 'at most 253'],
    ['exa_mple.com', 'character a host name cannot hold'],
    ['ex!ample.com', 'character a host name cannot hold'],
    ['-example.com', 'starts with a hyphen'],
    ['example-.com', 'starts or ends with a hyphen'],
    ['com', 'single label'],
    ['1.2.3', 'number or an IP address'],
    ['exa\u0000mple.com', '\\x00'],
  ])('refuses %j', (input, why) => {
    const r = parseDomain(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain(why);
      expect(r.error).not.toMatch(/\n/);
    }
  });

  test('never throws and always says why', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const r = parseDomain(s);
        if (r.ok) expect(r.domain.ascii).toMatch(/^[a-z0-9.-]+$/);
        else expect(r.error.length).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });
});
