import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  encodeRuaUri,
  formatTlsRptRecord,
  isTlsRptRecord,
  parseTlsRptRecord,
  ruaProblem,
} from '../../src/core/tlsrpt-record.js';

describe('parseTlsRptRecord (RFC 8460 §3)', () => {
  test.each([
    // RFC 8460 §3 examples
    ['v=TLSRPTv1;rua=mailto:reports@example.com', ['mailto:reports@example.com'], []],
    [
      'v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt',
      ['https://reporting.example.com/v1/tlsrpt'],
      [],
    ],
    [
      'v=TLSRPTv1; rua=mailto:reports@example.com,https://reporting.example.com/v1/tlsrpt',
      ['mailto:reports@example.com', 'https://reporting.example.com/v1/tlsrpt'],
      [],
    ],
    // White space around the separators, a final ";", extensions kept in order.
    [
      'v=TLSRPTv1; rua=mailto:a@example.com , \tmailto:b@example.com;',
      ['mailto:a@example.com', 'mailto:b@example.com'],
      [],
    ],
    ['v=TLSRPTv1 ; rua=mailto:a@example.com ;  ', ['mailto:a@example.com'], []],
    [
      'v=TLSRPTv1;  rua=mailto:a@example.com \t , \tmailto:b@example.com  \t;\t ext=y ',
      ['mailto:a@example.com', 'mailto:b@example.com'],
      [{ name: 'ext', value: 'y' }],
    ],
    [
      'v=TLSRPTv1; rua=mailto:tlsrpt@example.com; ext=value; x_y.z-1=~!',
      ['mailto:tlsrpt@example.com'],
      [
        { name: 'ext', value: 'value' },
        { name: 'x_y.z-1', value: '~!' },
      ],
    ],
    [
      'v=TLSRPTv1; ext=first; rua=mailto:a@example.com',
      ['mailto:a@example.com'],
      [{ name: 'ext', value: 'first' }],
    ],
    [
      'v=TLSRPTv1; ext=first \t ; rua=mailto:a@example.com',
      ['mailto:a@example.com'],
      [{ name: 'ext', value: 'first' }],
    ],
    // Percent-encoded addresses, schemes in capitals, a subject in the mailto URI.
    ['v=TLSRPTv1; rua=mailto:tls%2Breports@example.com', ['mailto:tls%2Breports@example.com'], []],
    [
      'v=TLSRPTv1;rua=MAILTO:a@example.com,HTTPS://r.example.com/x',
      ['MAILTO:a@example.com', 'HTTPS://r.example.com/x'],
      [],
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.com?subject=tls', ['mailto:a@example.com?subject=tls'], []],
    // A second rua does not override the first, even when the second is broken.
    ['v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com', ['mailto:a@example.com'], []],
    ['v=TLSRPTv1; rua=mailto:a@example.com; rua=bogus', ['mailto:a@example.com'], []],
  ])('accepts %j', (txt, rua, extensions) => {
    expect(parseTlsRptRecord(txt)).toEqual({ record: { rua, extensions }, problems: [] });
  });

  test.each([
    ['v=TLSRPTv1', 'the record has no rua field: senders have nowhere to report'],
    ['v=TLSRPTv1 \t', 'the record has no rua field: senders have nowhere to report'],
    [' v=TLSRPTv1', 'the record must start with "v=TLSRPTv1;" (case-sensitive), seen " v=TLSRPTv1"'],
    [
      'v=TLSRPTv1 rua=mailto:a@example.com',
      'the record must start with "v=TLSRPTv1;" (case-sensitive), seen "v=TLSRPTv1 rua=mailto:a@example.com"',
    ],
    ['v=TLSRPTv1;', 'the record has no rua field: senders have nowhere to report'],
    ['v=TLSRPTv1; ext=1', 'the record has no rua field: senders have nowhere to report'],
    [
      'v=tlsrptv1; rua=mailto:a@example.com',
      'the record must start with "v=TLSRPTv1;" (case-sensitive), seen "v=tlsrptv1; rua=mailto:a@example.com"',
    ],
    [
      'v=TLSRPTv2; rua=mailto:a@example.com',
      'the record must start with "v=TLSRPTv1;" (case-sensitive), seen "v=TLSRPTv2; rua=mailto:a@example.com"',
    ],
    [
      'xv=TLSRPTv1; rua=mailto:a@example.com',
      'the record must start with "v=TLSRPTv1;" (case-sensitive), seen "xv=TLSRPTv1; rua=mailto:a@example.com"',
    ],
    [
      'v=TLSRPTv1; rua=http://example.com/report',
      'the rua URI "http://example.com/report" must be a mailto: or https: URI',
    ],
    [
      'v=TLSRPTv1; rua=reports@example.com',
      'the rua URI "reports@example.com" must be a mailto: or https: URI',
    ],
    [
      'v=TLSRPTv1; rua=1https://x.example',
      'the rua URI "1https://x.example" must be a mailto: or https: URI',
    ],
    ['v=TLSRPTv1; rua=mailto:', 'the rua URI "mailto:" does not hold an e-mail address (mailto:user@domain)'],
    [
      'v=TLSRPTv1; rua=mailto:nobody',
      'the rua URI "mailto:nobody" does not hold an e-mail address (mailto:user@domain)',
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@b',
      'the rua URI "mailto:a@b" does not hold an e-mail address (mailto:user@domain)',
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@example.com@example.net',
      'the rua URI "mailto:a@example.com@example.net" does not hold an e-mail address (mailto:user@domain)',
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@@b.example',
      'the rua URI "mailto:a@@b.example" does not hold an e-mail address (mailto:user@domain)',
    ],
    ['v=TLSRPTv1; rua=https://', 'the rua URI "https://" is not a well-formed URI'],
    [
      'v=TLSRPTv1; rua=mailto:%zz@example.com',
      'the rua URI "mailto:%zz@example.com" is not a well-formed URI',
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.com,', 'the rua URI "" is empty'],
    [
      'v=TLSRPTv1; rua=mailto:a b@example.com',
      'the rua URI "mailto:a b@example.com" holds a space or a character a URI cannot hold (percent-encode it)',
    ],
    [
      'v=TLSRPTv1; rua=mailto:aé@example.com',
      'the rua URI "mailto:aé@example.com" holds a space or a character a URI cannot hold (percent-encode it)',
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.com;;', 'an empty field (two ";" in a row)'],
    ['v=TLSRPTv1; rua', 'the field "rua" is not of the form name=value'],
    ['v=TLSRPTv1; =x; rua=mailto:a@example.com', 'the field "=x" is not of the form name=value'],
    ['v=TLSRPTv1; 1%=a; rua=mailto:a@example.com', 'the field name "1%" is not a valid extension name'],
    [
      'v=TLSRPTv1; ext=a b; rua=mailto:a@example.com',
      'the field "ext" has an empty value or one with a space, "=" or ";"',
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@example.com; ext=',
      'the field "ext" has an empty value or one with a space, "=" or ";"',
    ],
  ])('refuses %j: %s', (txt, why) => {
    expect(parseTlsRptRecord(txt)).toEqual({
      record: null,
      problems: [{ code: 'TLSRPT_INVALID', message: why }],
    });
  });

  test('only records starting with v=TLSRPTv1 count as TLS-RPT records', () => {
    expect(isTlsRptRecord('v=TLSRPTv1; rua=mailto:a@example.com')).toBe(true);
    expect(isTlsRptRecord('v=TLSRPTv1')).toBe(true);
    expect(isTlsRptRecord('v=spf1 -all')).toBe(false);
    expect(isTlsRptRecord('V=TLSRPTv1; rua=mailto:a@example.com')).toBe(false);
    expect(isTlsRptRecord(' v=TLSRPTv1; rua=mailto:a@example.com')).toBe(false);
  });

  /** What every result looks like: a record with at least one reporting URI and no problems, or one problem. */
  const wellShaped = (r: ReturnType<typeof parseTlsRptRecord>) => {
    if (r.record) {
      expect(r.problems).toEqual([]);
      expect(r.record.rua.length).toBeGreaterThanOrEqual(1);
      for (const uri of r.record.rua) expect(ruaProblem(uri)).toBeNull();
    } else {
      expect(r.problems).toEqual([{ code: 'TLSRPT_INVALID', message: expect.any(String) }]);
    }
  };

  test('never throws, whatever the text; the result is a record of valid URIs or one problem', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        wellShaped(parseTlsRptRecord(s));
        wellShaped(parseTlsRptRecord(`v=TLSRPTv1; rua=${s}`));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ruaProblem: what the setup form and `mtasts records` say about a reporting URI', () => {
  test.each([
    ['mailto:tlsrpt@example.com', null],
    ['https://reports.example.com/tlsrpt', null],
    ['', 'is empty'],
    ['mailto:tls reports@example.com', 'holds a space or a character a URI cannot hold (percent-encode it)'],
    ['tlsrpt@example.com', 'must be a mailto: or https: URI'],
    ['ftp://example.com/', 'must be a mailto: or https: URI'],
    ['https://[::1', 'is not a well-formed URI'],
    ['https:///tlsrpt', 'has no host'],
    ['https:reports.example.com/tlsrpt', 'has no host'],
    ['HTTPS://reports.example.com/', null],
    ['mailto:tlsrpt', 'does not hold an e-mail address (mailto:user@domain)'],
    ['mailto:tlsrpt@exa%20mple.com', 'does not hold an e-mail address (mailto:user@domain)'],
  ])('%j: %s', (uri, problem) => {
    expect(ruaProblem(uri)).toBe(problem);
  });
});

describe('formatTlsRptRecord: the record beside its parser, URIs percent-encoded (RFC 8460 §3)', () => {
  test.each([
    [['mailto:tls@example.com'], 'v=TLSRPTv1; rua=mailto:tls@example.com'],
    [
      ['mailto:tls@example.com', 'https://r.example.com/report?a=b&c=d'],
      'v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/report?a=b&c=d',
    ],
    [['mailto:tls;x@example.com'], 'v=TLSRPTv1; rua=mailto:tls%3Bx@example.com'],
    [['mailto:tls,x@example.com'], 'v=TLSRPTv1; rua=mailto:tls%2Cx@example.com'],
    [['mailto:tls!x@example.com'], 'v=TLSRPTv1; rua=mailto:tls%21x@example.com'],
    [['mailto:tls@bücher.example'], 'v=TLSRPTv1; rua=mailto:tls@b%C3%BCcher.example'],
    [['mailto:tls@example.com?subject=a%20b'], 'v=TLSRPTv1; rua=mailto:tls@example.com?subject=a%20b'],
  ])('%j', (rua, text) => {
    expect(formatTlsRptRecord({ rua })).toBe(text);
    expect(parseTlsRptRecord(text).problems).toEqual([]);
  });

  test.each([
    ['a,b!c;d', 'a%2Cb%21c%3Bd'],
    ['a b\tc\nd\x7f', 'a%20b%09c%0Ad%7F'],
    ['"<>\\^`{|}', '%22%3C%3E%5C%5E%60%7B%7C%7D'],
    ["azAZ09-._~:/?#[]@$&'()*+=%", "azAZ09-._~:/?#[]@$&'()*+=%"],
    ['é😀', '%C3%A9%F0%9F%98%80'],
    ['a\ud800b', 'a%EF%BF%BDb'],
  ])('encodeRuaUri(%j) is %j', (uri, encoded) => {
    expect(encodeRuaUri(uri)).toBe(encoded);
  });

  test('a URI holding "," "!" ";" "=" and non-ASCII parses back clean, to the encoded URI', () => {
    const local = fc
      .string({
        unit: fc.constantFrom('a', 'z', '0', ',', '!', ';', '=', 'é', 'ü', '☃', '😀', '.', '-'),
        minLength: 1,
        maxLength: 12,
      })
      .filter((l) => /[^.]/.test(l) && !l.startsWith('.'));
    const domain = fc.constantFrom('example.com', 'bücher.example', 'r.example.org');
    const query = fc.string({ unit: fc.constantFrom('a', '=', '&', ',', ';', '!', 'ß', ' '), maxLength: 8 });
    const uri = fc.oneof(
      fc.tuple(local, domain).map(([l, d]) => `mailto:${l}@${d}`),
      fc.tuple(domain, query).map(([d, q]) => `https://${d}/tlsrpt?${q}`),
    );
    fc.assert(
      fc.property(fc.array(uri, { minLength: 1, maxLength: 4 }), (rua) => {
        const encoded = rua.map(encodeRuaUri);
        for (const u of encoded) expect(ruaProblem(u), u).toBeNull();
        const text = formatTlsRptRecord({ rua });
        expect(parseTlsRptRecord(text)).toEqual({ record: { rua: encoded, extensions: [] }, problems: [] });
        expect(
          encoded.map((u) => decodeURI(u).replace(/%2C|%3B|%21/gi, (c) => decodeURIComponent(c))),
        ).toEqual(rua);
      }),
      { numRuns: 1000 },
    );
  });
});
