import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseTlsRptRecord } from '../../src/core/tlsrpt-record.js';

describe('parseTlsRptRecord (RFC 8460 §3)', () => {
  test.each([
    // RFC 8460 §3 examples
    ['v=TLSRPTv1;rua=mailto:reports@example.com', ['mailto:reports@example.com']],
    ['v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt', ['https://reporting.example.com/v1/tlsrpt']],
    [
      'v=TLSRPTv1; rua=mailto:reports@example.com,https://reporting.example.com/v1/tlsrpt',
      ['mailto:reports@example.com', 'https://reporting.example.com/v1/tlsrpt'],
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@example.com , mailto:b@example.com;',
      ['mailto:a@example.com', 'mailto:b@example.com'],
    ],
    ['v=TLSRPTv1; rua=mailto:tlsrpt@example.com; ext=value', ['mailto:tlsrpt@example.com']],
    ['v=TLSRPTv1; rua=mailto:tls%2Breports@example.com', ['mailto:tls%2Breports@example.com']],
  ])('accepts %j', (txt, rua) => {
    const r = parseTlsRptRecord(txt);
    expect(r.problems).toEqual([]);
    expect(r.record?.rua).toEqual(rua);
  });

  test.each([
    ['v=TLSRPTv1', 'no rua field'],
    ['v=TLSRPTv1;', 'no rua field'],
    ['v=TLSRPTv1; ext=1', 'no rua field'],
    ['v=tlsrptv1; rua=mailto:a@example.com', 'must start with'],
    ['v=TLSRPTv2; rua=mailto:a@example.com', 'must start with'],
    ['v=TLSRPTv1; rua=http://example.com/report', 'mailto: or https:'],
    ['v=TLSRPTv1; rua=reports@example.com', 'mailto: or https:'],
    ['v=TLSRPTv1; rua=mailto:', 'e-mail address'],
    ['v=TLSRPTv1; rua=mailto:nobody', 'e-mail address'],
    ['v=TLSRPTv1; rua=https://', 'well-formed'],
    ['v=TLSRPTv1; rua=mailto:a@example.com,', 'is empty'],
    ['v=TLSRPTv1; rua=mailto:a b@example.com', 'holds a space'],
    ['v=TLSRPTv1; rua=mailto:a@example.com;;', 'empty field'],
    ['v=TLSRPTv1; rua=mailto:%zz@example.com', 'well-formed'],
  ])('refuses %j', (txt, why) => {
    const r = parseTlsRptRecord(txt);
    expect(r.record).toBeNull();
    expect(r.problems[0]?.code).toBe('TLSRPT_INVALID');
    expect(r.problems[0]?.message).toContain(why);
  });

  test('never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        parseTlsRptRecord(s);
        parseTlsRptRecord(`v=TLSRPTv1; rua=${s}`);
      }),
      { numRuns: 3000 },
    );
  });
});
