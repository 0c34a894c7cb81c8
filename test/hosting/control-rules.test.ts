import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { STS_ID } from '../../src/core/sts-record.js';
import {
  afterInterim,
  cachedVersions,
  changedPolicy,
  checkMode,
  checkMxPatterns,
  enforceVerdict,
  HostingInputError,
  hostedPolicyText,
  leavingUntil,
  maxAgeProblem,
  mxHostsOf,
  nextId,
  nextProposalStep,
  proposeMx,
  sameObserved,
  sameText,
  servableText as servable,
  uncoveredHosts,
  usableMxHost as usable,
  WEEK,
} from '../../src/hosting/policy-plan.js';
import type { PolicyVersion } from '../../src/store/hosting.js';

const T0 = new Date('2026-11-29T12:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

describe('the served text', () => {
  it('is a valid policy that parses back to its fields', () => {
    const text = hostedPolicyText({
      mode: 'testing',
      maxAge: 604800,
      mx: ['mx1.example.com', '*.mail.example.net'],
    });
    expect(text).toBe(
      'version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: *.mail.example.net\nmax_age: 604800\n',
    );
    const parsed = parsePolicy(text);
    expect(parsed.valid).toBe(true);
    expect(parsed.problems).toEqual([]);
  });

  it('lists no mx in mode none, and two policies differing only in mx then give the same text', () => {
    const a = { mode: 'none' as const, maxAge: 86400, mx: ['a.example.com'] };
    const b = { mode: 'none' as const, maxAge: 86400, mx: ['b.example.com'] };
    expect(hostedPolicyText(a)).toBe('version: STSv1\nmode: none\nmax_age: 86400\n');
    expect(sameText(a, b)).toBe(true);
    expect(sameText(a, { ...a, maxAge: 86401 })).toBe(false);
    expect(sameText({ ...a, mode: 'testing' }, { ...b, mode: 'testing' })).toBe(false);
  });
});

describe('ids', () => {
  it('is the UTC time when unused, a valid sts id', () => {
    const id = nextId(T0, []);
    expect(id).toBe('20261129T120000');
    expect(STS_ID.test(id)).toBe(true);
  });

  it('differs from every id used before, even within one second and with the clock set back', () => {
    const used = ['20261129T120000', '20261129T1200001'];
    const id = nextId(T0, used);
    expect(id).toBe('20261129T1200002');
    expect(STS_ID.test(id)).toBe(true);
    const many: string[] = [];
    for (let i = 0; i < 50; i++) many.push(nextId(T0, many));
    expect(new Set(many).size).toBe(50);
    expect(many.every((m) => STS_ID.test(m))).toBe(true);
  });
});

describe('input rules', () => {
  it('max_age from 1 to 31557600 only (RFC 8461 §3.2)', () => {
    expect(maxAgeProblem(1)).toBeNull();
    expect(maxAgeProblem(31557600)).toBeNull();
    expect(maxAgeProblem(31557601)).toMatch(/out of range: give 1 to 31557600/);
    expect(maxAgeProblem(0)).toMatch(/out of range/);
    expect(maxAgeProblem(-5)).toMatch(/out of range/);
    expect(maxAgeProblem(1e300)).toMatch(/whole number/);
    expect(maxAgeProblem(Number.NaN)).toMatch(/whole number/);
    expect(maxAgeProblem(1.5)).toMatch(/whole number/);
  });

  it('mx patterns: exact hosts and a leading *. label only, lower-cased, without repeats', () => {
    expect(
      checkMxPatterns(['MX1.Example.com', 'mx1.example.com', '*.mail.protection.outlook.com'], 10),
    ).toEqual(['mx1.example.com', '*.mail.protection.outlook.com']);
    const bad = [
      'mx.*.example.com',
      '*example.com',
      '*.*.example.com',
      'a..b.com',
      'mx_1.example.com',
      'mx1',
      'a b.com',
      'münchen.de',
      'mx.example.com.',
      '1.2.3.4.5..',
      '',
    ];
    for (const pattern of bad) {
      expect(() => checkMxPatterns([pattern], 10), pattern).toThrow(HostingInputError);
    }
  });

  it('refuses more patterns than allowed, thousands at once', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `mx${i}.example.com`);
    expect(() => checkMxPatterns(many, 20)).toThrow(/5000 mx patterns given; at most 20/);
  });

  it('modes are the three of RFC 8461', () => {
    expect(checkMode('enforce')).toBe('enforce');
    expect(() => checkMode('Enforce')).toThrow(HostingInputError);
    expect(() => checkMode('off')).toThrow(/testing, enforce or none/);
  });

  it('MX hosts from DNS: by preference, lower case, no repeats, a null MX is none', () => {
    expect(
      mxHostsOf([
        { exchange: 'MX2.example.com.', priority: 20 },
        { exchange: 'mx1.example.com', priority: 10 },
        { exchange: 'mx2.example.com', priority: 30 },
      ]),
    ).toEqual(['mx1.example.com', 'mx2.example.com']);
    expect(mxHostsOf([{ exchange: '', priority: 0 }])).toEqual([]);
    expect(mxHostsOf([{ exchange: '.', priority: 0 }])).toEqual([]);
  });
});

describe('changes', () => {
  const testing = { mode: 'testing' as const, maxAge: 86400, mx: ['mx1.example.com'] };

  it('moving to enforce raises max_age to a week unless given; other changes keep it', () => {
    expect(changedPolicy(testing, { mode: 'enforce' }).maxAge).toBe(WEEK);
    expect(changedPolicy({ ...testing, maxAge: 2 * WEEK }, { mode: 'enforce' }).maxAge).toBe(2 * WEEK);
    expect(changedPolicy(testing, { mode: 'enforce', maxAge: 3600 }).maxAge).toBe(3600);
    expect(changedPolicy(testing, { mx: ['mx9.example.com'] })).toEqual({
      mode: 'testing',
      maxAge: 86400,
      mx: ['mx9.example.com'],
    });
  });

  it('uncovered hosts: a wildcard covers exactly one leftmost label', () => {
    expect(uncoveredHosts(['*.example.com'], ['mx1.example.com', 'a.b.example.com', 'example.com'])).toEqual([
      'a.b.example.com',
      'example.com',
    ]);
  });
});

describe('enforce: the rollout rule', () => {
  const window = 14 * 86_400_000;

  it('is refused before the window is complete, with what is missing', () => {
    const v = enforceVerdict(
      'testing',
      { watched: true, cleanSince: at(0).toISOString(), lastReportedFailureAt: null },
      at(86400),
      window,
    );
    expect(v.ready).toBe(false);
    expect(v.missing.join(' ')).toMatch(
      /clean since 2026-11-29T12:00:00.000Z, so not before 2026-12-13T12:00:00.000Z/,
    );
  });

  it('is ready after 14 clean days with no reported failures', () => {
    const v = enforceVerdict(
      'testing',
      { watched: true, cleanSince: at(0).toISOString(), lastReportedFailureAt: null },
      at(14 * 86400),
      window,
    );
    expect(v).toMatchObject({ ready: true, missing: [] });
  });

  it('a reported TLS failure restarts the window', () => {
    const v = enforceVerdict(
      'testing',
      { watched: true, cleanSince: at(0).toISOString(), lastReportedFailureAt: at(10 * 86400).toISOString() },
      at(15 * 86400),
      window,
    );
    expect(v.ready).toBe(false);
    expect(v.missing.join(' ')).toMatch(/last reported failure/);
  });

  it('an unwatched domain has no clock, and is told to be watched', () => {
    const v = enforceVerdict(
      'testing',
      { watched: false, cleanSince: at(0).toISOString(), lastReportedFailureAt: null },
      at(30 * 86400),
      window,
    );
    expect(v.ready).toBe(false);
    expect(v.missing.join(' ')).toMatch(/not watched/);
  });

  it('from none it asks for testing first', () => {
    const v = enforceVerdict(
      'none',
      { watched: true, cleanSince: null, lastReportedFailureAt: null },
      at(0),
      window,
    );
    expect(v.ready).toBe(false);
    expect(v.missing[0]).toMatch(/testing first/);
  });
});

describe('MX change: the safe order', () => {
  const served = { mode: 'enforce' as const, maxAge: 1209600, mx: ['old1.example.com', 'old2.example.com'] };

  it('nothing to propose while the patterns cover exactly the hosts DNS lists', () => {
    expect(proposeMx(served, ['OLD2.example.com.', 'old1.example.com'], T0)).toBeNull();
    expect(
      proposeMx({ ...served, mx: ['*.example.com'] }, ['a.example.com', 'b.example.com'], T0),
    ).toBeNull();
    expect(proposeMx(served, [], T0)).toBeNull();
  });

  it('a migration: step 1 serves old and new, step 2 drops the old after the old max_age since DNS carried step 1', () => {
    const p = proposeMx(served, ['new1.example.com', 'old2.example.com'], T0);
    expect(p).toMatchObject({
      add: ['new1.example.com'],
      drop: ['old1.example.com'],
      interim: ['old1.example.com', 'old2.example.com', 'new1.example.com'],
      final: ['old2.example.com', 'new1.example.com'],
      waitMaxAge: 1209600,
      interimServedAt: null,
    });
    if (!p) throw new Error('no proposal');
    expect(nextProposalStep(p, 'enforce', T0)).toEqual({ kind: 'interim', mx: p.interim });
    // Step 1 goes live an hour later, replacing a version whose max_age was then one day (changed meanwhile).
    const live = afterInterim(p, 86400, at(3600));
    expect(live.waitMaxAge).toBe(86400);
    // DNS is first seen carrying step 1's id two hours after it went live: the wait counts from then.
    const carried = at(3 * 3600).toISOString();
    expect(nextProposalStep(live, 'enforce', at(3 * 3600 + 86399), carried)).toEqual({
      kind: 'wait',
      until: at(3 * 3600 + 86400).toISOString(),
      mx: p.final,
    });
    expect(nextProposalStep(live, 'enforce', at(3 * 3600 + 86400), carried)).toEqual({
      kind: 'final',
      mx: p.final,
    });
    // Never carried: still waiting, however long ago step 1 went live.
    expect(nextProposalStep(live, 'enforce', at(400 * 86400))).toMatchObject({ kind: 'wait' });
  });

  it('the wait is counted from step 1, with the max_age of the version served before it', () => {
    const p = proposeMx(served, ['new1.example.com'], T0);
    if (!p) throw new Error('no proposal');
    const live = afterInterim(p, served.maxAge, at(10 * 86400));
    const due = at(10 * 86400 + served.maxAge);
    const carried = at(10 * 86400).toISOString();
    expect(nextProposalStep(live, 'enforce', new Date(due.getTime() - 1), carried)).toMatchObject({
      kind: 'wait',
    });
    expect(nextProposalStep(live, 'enforce', due, carried)).toMatchObject({
      kind: 'final',
      mx: ['new1.example.com'],
    });
  });

  it('hosts only added: one step, at once', () => {
    const p = proposeMx(served, ['old1.example.com', 'old2.example.com', 'new1.example.com'], T0);
    expect(p).toMatchObject({ add: ['new1.example.com'], drop: [], interim: null });
    if (!p) throw new Error('no proposal');
    expect(nextProposalStep(p, 'enforce', T0)).toEqual({
      kind: 'final',
      mx: ['old1.example.com', 'old2.example.com', 'new1.example.com'],
    });
  });

  it('hosts only dropped: no step 1, and the drop waits for the served max_age from the proposal', () => {
    const p = proposeMx(served, ['old1.example.com'], T0);
    expect(p).toMatchObject({
      add: [],
      drop: ['old2.example.com'],
      interim: null,
      final: ['old1.example.com'],
    });
    if (!p) throw new Error('no proposal');
    expect(nextProposalStep(p, 'enforce', at(1209599))).toMatchObject({
      kind: 'wait',
      until: at(1209600).toISOString(),
    });
    expect(nextProposalStep(p, 'enforce', at(1209600))).toMatchObject({ kind: 'final' });
  });

  it('in testing both steps go together: the final patterns at once', () => {
    const p = proposeMx({ ...served, mode: 'testing' }, ['new1.example.com'], T0);
    if (!p) throw new Error('no proposal');
    expect(nextProposalStep(p, 'testing', T0)).toEqual({ kind: 'final', mx: ['new1.example.com'] });
  });

  it('a wildcard the user gave is kept while it covers a host', () => {
    const p = proposeMx(
      { ...served, mx: ['*.mail.protection.outlook.com', 'old.example.com'] },
      ['example-com.mail.protection.outlook.com', 'new.example.com'],
      T0,
    );
    expect(p).toMatchObject({
      final: ['*.mail.protection.outlook.com', 'new.example.com'],
      drop: ['old.example.com'],
    });
  });

  it('the same MX set is the same proposal, in any order or case', () => {
    const p = proposeMx(served, ['new1.example.com', 'old2.example.com'], T0);
    if (!p) throw new Error('no proposal');
    expect(sameObserved(p, ['OLD2.example.com', 'new1.example.com.'])).toBe(true);
    expect(sameObserved(p, ['new1.example.com'])).toBe(false);
  });
});

describe('versions senders may cache, and the way out', () => {
  const v = (
    stsId: string,
    mode: PolicyVersion['mode'],
    maxAge: number,
    from: number | null,
    until: number | null,
  ): PolicyVersion => ({
    stsId,
    policyText: '',
    mode,
    maxAge,
    createdAt: at(from ?? 0).toISOString(),
    servedFrom: from === null ? null : at(from).toISOString(),
    servedUntil: until === null ? null : at(until).toISOString(),
  });

  it('a version is held until served_until + its max_age; the one served now until now + max_age', () => {
    const versions = [
      v('never', 'testing', 604800, null, null),
      v('a', 'testing', 100, 0, 1000),
      v('b', 'enforce', 5000, 1000, 2000),
      v('c', 'enforce', 50, 2000, null),
    ];
    const held = cachedVersions(versions, at(2500));
    expect(held.map((h) => [h.stsId, h.cachedUntil])).toEqual([
      ['c', at(2550).toISOString()],
      ['b', at(7000).toISOString()],
    ]);
    expect(cachedVersions(versions, at(7000)).map((h) => h.stsId)).toEqual(['c']);
  });

  it('leaving lasts until the latest cached version other than none expires', () => {
    const versions = [
      v('a', 'enforce', 1209600, 0, 1000),
      v('b', 'testing', 86400, 1000, 2000),
      v('none', 'none', 86400, 2000, null),
    ];
    expect(leavingUntil(versions, at(2000))).toBe(at(1000 + 1209600).toISOString());
    expect(leavingUntil(versions, at(1000 + 1209600))).toBeNull();
    expect(leavingUntil([v('p', 'testing', 604800, null, null)], at(0))).toBeNull();
  });
});

describe('servable text (defense in depth behind the mx checks)', () => {
  it('serves only a text the parser reads back as the same policy', () => {
    expect(servable({ mode: 'testing', maxAge: 86400, mx: ['mx.example.com'] })).toBe(
      'version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n',
    );
    for (const mx of ['a\nmode: enforce', 'mx one.example.com\nmx: b', 'x\r\nmax_age: 1']) {
      expect(() => servable({ mode: 'testing', maxAge: 86400, mx: [mx] }), JSON.stringify(mx)).toThrow(
        /not served/,
      );
    }
    expect([usable('mx.example.com'), usable('*.example.com'), usable('mx one.example.com')]).toEqual([
      true,
      false,
      false,
    ]);
  });
});
