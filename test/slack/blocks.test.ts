import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Report } from '../../src/core/check.js';
import { FINDING_CODES, finding } from '../../src/core/findings.js';
import { hostingSnippets, planRecords } from '../../src/generate/records.js';
import { type Block, esc, LIMITS } from '../../src/slack/blocks/common.js';
import { listMessage } from '../../src/slack/blocks/help.js';
import { homeView } from '../../src/slack/blocks/home.js';
import { recordsMessage } from '../../src/slack/blocks/records.js';
import { reportMessage } from '../../src/slack/blocks/report.js';

/** Every text in a block tree with the limit that applies to it. */
function assertWithinLimits(blocks: Block[], maxBlocks: number): void {
  expect(blocks.length).toBeLessThanOrEqual(maxBlocks);
  for (const b of blocks) {
    if (b.type === 'header') {
      expect(b.text.type).toBe('plain_text');
      expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.headerText);
    }
    if (b.type === 'section') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.sectionText);
    if (b.type === 'context') {
      expect(b.elements.length).toBeLessThanOrEqual(LIMITS.contextElements);
      for (const e of b.elements) expect(e.text.length).toBeLessThanOrEqual(2000);
    }
  }
}

function report(findingCount: number, text: string, mxCount: number): Report {
  const hosts = Array.from({ length: mxCount }, (_, i) => ({
    host: `mx${i}.${'x'.repeat(50)}.example.com`,
    priority: i,
    addresses: ['192.0.2.1'],
    notAllowed: [],
    coveredBy: null,
    probes: [
      {
        host: `mx${i}.example.com`,
        address: '192.0.2.1',
        port: 25,
        connected: true,
        banner: text,
        extensions: [],
        starttlsOffered: false,
        tls: null,
        failedAt: 'starttls' as const,
        error: { kind: 'protocol' as const, message: text },
        durationMs: 1,
      },
    ],
    error: null,
  }));
  return {
    domain: 'example.com',
    domainUnicode: 'example.com',
    checkedAt: '2026-11-29T12:00:00.000Z',
    status: findingCount > 0 ? 'fail' : 'pass',
    findings: Array.from({ length: findingCount }, (_, i) =>
      finding(
        FINDING_CODES[i % FINDING_CODES.length] ?? 'MX_MISSING',
        'example.com',
        text.slice(0, 300),
        text,
      ),
    ),
    durationMs: 1,
    evidence: {
      sts: { name: '_mta-sts.example.com', records: [text], error: null, id: 'abc' },
      tlsrpt: { name: '_smtp._tls.example.com', records: [text], error: null, rua: [text.slice(0, 500)] },
      policy: {
        host: 'mta-sts.example.com',
        addresses: [],
        notAllowed: [],
        fetch: null,
        text,
        policy: { version: 'STSv1', mode: 'enforce', maxAge: 86400, mx: [], extensions: [] },
        valid: false,
        error: text,
      },
      mx: { hosts, nullMx: false, error: null },
      smtpProbe: 'on',
    },
  };
}

describe('Block Kit renderers stay within limits', () => {
  test('the largest report: every finding code many times, long texts, many MX hosts', () => {
    const big = report(FINDING_CODES.length * 5, `${'<!channel> & <https://evil|x> '.repeat(400)}`, 80);
    const m = reportMessage(big);
    assertWithinLimits(m.blocks, LIMITS.blocksPerMessage);
    const json = JSON.stringify(m);
    expect(json).toContain('more findings not shown here');
    expect(json).not.toContain('<!channel>');
    expect(json).not.toContain('<https://evil');
    expect(m.text.length).toBeLessThanOrEqual(LIMITS.fallbackText + 200);
  });

  test('any report', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.string({ maxLength: 5000 }), fc.nat(60), (n, text, mx) => {
        const m = reportMessage(report(n, text, mx));
        assertWithinLimits(m.blocks, LIMITS.blocksPerMessage);
        // Our own Slack date tokens (<!date^UNIX^format|fallback>) are the only special tokens a report may hold.
        const json = JSON.stringify(m.blocks).replace(/<!date\^\d+\^[^|<>]*\|[^<>]*>/g, '');
        expect(json).not.toMatch(/<[!@#]/);
      }),
      { numRuns: 150 },
    );
  });

  test('a clean report says so', () => {
    const m = reportMessage(report(0, 'ok', 2));
    expect(m.blocks[0]?.text.text).toBe(':white_check_mark: example.com: all good');
    expect(JSON.stringify(m)).toContain('No problems found');
  });

  test('escaping makes text from the network inert', () => {
    expect(esc('<!channel> <@U123> <#C1|x> <https://a|b> a&b')).toBe(
      '&lt;!channel&gt; &lt;@U123&gt; &lt;#C1|x&gt; &lt;https://a|b&gt; a&amp;b',
    );
  });

  test('records, list and home', () => {
    const r = report(3, 'x', 3);
    r.evidence.mx.hosts = r.evidence.mx.hosts.map((h, i) => ({ ...h, host: `mx${i}.example.com` }));
    const plan = planRecords(
      { ascii: 'example.com', unicode: 'example.com' },
      { mode: 'testing' },
      r,
      'example.com',
      new Date(),
    );
    const m = recordsMessage(plan, hostingSnippets(plan), {
      supported: true,
      provider: 'P',
      applyUrl: 'https://dc.example/apply?x=1',
      message: 'ok',
    });
    assertWithinLimits(m.blocks, LIMITS.blocksPerMessage);
    expect(JSON.stringify(m)).toContain('https://dc.example/apply?x=1');
    const rows = Array.from({ length: 1500 }, (_, i) => ({
      id: i,
      teamId: 'T',
      channelId: 'C',
      domain: `d${i}.example.com`,
      createdBy: 'U',
      createdAt: '',
      pausedAt: null,
      pausedReason: null,
      mutedUntil: null,
      lastStatus: 'pass' as const,
      lastCheckedAt: null,
    }));
    assertWithinLimits(listMessage(rows).blocks, LIMITS.blocksPerMessage);
    const home = homeView(
      rows.map((row, i) => ({
        domain: row.domain,
        channels: ['C1', 'C2'],
        lastStatus: (['pass', 'warn', 'fail', null] as const)[i % 4] ?? null,
        lastCheckedAt: null,
      })),
    );
    assertWithinLimits(home.blocks, LIMITS.blocksPerView);
    expect(JSON.stringify(home)).toContain('more domains');
  });
});
