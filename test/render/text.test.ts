import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import { expiryPhrase } from '../../src/core/net/certificate.js';
import { wrap } from '../../src/render/text.js';
import { Lab } from '../support/lab.js';

describe('wrap: breaks only at spaces, so what is copied is whole', () => {
  const cases: [string, string, number, string[]][] = [
    ['short text stays on one line', 'a b c', 20, ['  a b c']],
    ['words move to the next line', 'aaaa bbbb cccc', 14, ['  aaaa bbbb', '  cccc']],
    [
      'a token longer than a line stands alone, whole',
      'rua mailto:tls-reports-for-a-very-long-mailbox-name@oceanic-https-rua.example.com ok',
      40,
      ['  rua', '  mailto:tls-reports-for-a-very-long-mailbox-name@oceanic-https-rua.example.com', '  ok'],
    ],
    ['runs of white space fold to one space', 'a \t\n  b', 20, ['  a b']],
    ['nothing to wrap gives no line', '   ', 20, []],
  ];
  test.each(cases)('%s', (_name, text, width, expected) => {
    expect(wrap(text, width, '  ')).toEqual(expected);
  });

  test('the first line has its own indent, the room is what the wider indent leaves', () => {
    expect(wrap('Fix: do this and that', 20, '  ', '       ')).toEqual(['  Fix: do this', '       and that']);
  });
});

describe('expiryPhrase: the sign of the days is in the words', () => {
  const cases: [{ notAfter: string; daysLeft: number; expired: boolean }, string][] = [
    [
      { notAfter: '2027-01-10T00:00:00.000Z', daysLeft: 42, expired: false },
      'expires 2027-01-10 (in 42 days)',
    ],
    [{ notAfter: '2026-11-30T10:00:00.000Z', daysLeft: 1, expired: false }, 'expires 2026-11-30 (in 1 day)'],
    [{ notAfter: '2026-11-29T20:00:00.000Z', daysLeft: 0, expired: false }, 'expires 2026-11-29 (today)'],
    [{ notAfter: '2026-11-29T01:00:00.000Z', daysLeft: 0, expired: true }, 'expired 2026-11-29 (today)'],
    [{ notAfter: '2026-11-28T01:00:00.000Z', daysLeft: -1, expired: true }, 'expired 2026-11-28 (1 day ago)'],
    [
      { notAfter: '2026-11-26T01:00:00.000Z', daysLeft: -3, expired: true },
      'expired 2026-11-26 (3 days ago)',
    ],
  ];
  test.each(cases)('%j -> %s', (cert, phrase) => {
    expect(expiryPhrase(cert)).toBe(phrase);
  });
});

describe('mtasts check: evidence that reads as it is', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await Lab.start();
    await lab.domain('off.test', { mode: 'none', policy: 'version: STSv1\nmode: none\nmax_age: 86400\n' });
    await lab.domain('stale.test', {
      mx: { 'mx1.stale.test': { cert: lab.cert(['mx1.stale.test'], { notAfterDays: -3 }) } },
    });
    await lab.domain('big.test', {
      policy: (_req, res) => {
        const body = 'x'.repeat(120_090);
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
        res.end(body);
      },
    });
  });
  afterAll(() => lab.stop());

  const run = async (domain: string) => {
    const t = lab.cliIo({});
    await main(['check', domain], t.value);
    return t.out();
  };

  test('mode none: no MX is shown as "NOT in policy", as none needs to be', async () => {
    const text = await run('off.test');
    expect(text).toContain('POLICY_MODE_NONE');
    expect(text).toMatch(/^ {4}10 mx1\.off\.test$/m);
    expect(text).not.toContain('NOT in policy');
  });

  test('a body refused by its declared size says so, not "0 bytes"', async () => {
    const text = await run('big.test');
    expect(text).toContain('POLICY_TOO_LARGE');
    expect(text).toContain('HTTP 200, text/plain, 120090 bytes declared (over the limit, not read)');
    expect(text).not.toMatch(/\b0 bytes\b/);
  });

  test('certificate expiry is written as days to come or days gone, never a negative count', async () => {
    const text = await run('stale.test');
    expect(text).toContain('MX_CERT_EXPIRED');
    expect(text).toMatch(/expired \d{4}-\d{2}-\d{2} \(3 days ago\)/);
    expect(text).toMatch(/expires \d{4}-\d{2}-\d{2} \(in (89|90) days\)/); // the policy host's
    expect(text).not.toMatch(/\(-?\d+ days\)/);
  });
});
