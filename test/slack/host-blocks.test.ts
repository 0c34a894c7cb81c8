import { describe, expect, test } from 'vitest';
import type { HostingRecord } from '../../src/hosting/service.js';
import { alertMessage } from '../../src/slack/blocks/alert.js';
import { type Block, LIMITS } from '../../src/slack/blocks/common.js';
import {
  bindLine,
  HOST_ACTION,
  HOSTING_OFF_TEXT,
  type HostView,
  hostActions,
  hostingAlertMessage,
  hostListMessage,
  hostMessage,
} from '../../src/slack/blocks/hosting.js';
import { HOSTING_ALERT_KINDS, type HostingPayload } from '../../src/store/monitor-state.js';
import { alertObject, logBlock } from '../../src/webhooks/payloads.js';
import { hostedDomain } from '../support/hosted-domain.js';

const scope = { domain: 'example.com', team: 'T1', channel: 'C1' };

const records: HostingRecord[] = [
  {
    name: 'mta-sts.example.com',
    host: 'mta-sts',
    type: 'CNAME',
    value: 'bot.example.net',
    ttl: 3600,
    purpose: 'p',
  },
  {
    name: '_mta-sts.example.com',
    host: '_mta-sts',
    type: 'TXT',
    value: 'v=STSv1; id=20261201T100000',
    ttl: 3600,
    purpose: 'q',
  },
];

function view(over: Partial<HostView> = {}): HostView {
  return {
    hosted: hostedDomain(),
    policyText: 'version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 604800\n',
    records,
    dns: { expected: '20261201T100000', seen: null, carries: false, newlyCarried: false, remindedAt: null },
    dnsError: null,
    cached: [],
    proposal: null,
    hostingName: 'bot.example.net',
    enforce: { ready: false, missing: ['14 days in testing'] },
    domainConnect: null,
    ...over,
  };
}

const actionIds = (block: Block | null) =>
  (block?.elements ?? []).map((e: { action_id: string }) => e.action_id);

/** Every section within Block Kit's limits, and no more blocks than a message holds. */
function withinLimits(message: { text: string; blocks: Block[] }): void {
  expect(message.blocks.length).toBeLessThanOrEqual(LIMITS.blocksPerMessage);
  expect(message.text.length).toBeLessThanOrEqual(LIMITS.fallbackText);
  for (const b of message.blocks) {
    if (b.type === 'section') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.sectionText);
    if (b.type === 'header') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.headerText);
  }
}

describe('the host message', () => {
  test('records as zone lines: the CNAME target fully qualified, the TXT quoted', () => {
    expect(bindLine(records[0] as HostingRecord)).toBe('mta-sts.example.com. 3600 IN CNAME bot.example.net.');
    expect(bindLine({ name: 'x.example.com', ttl: 60, type: 'TXT', value: 'a "b" \\c' })).toBe(
      'x.example.com. 60 IN TXT "a \\"b\\" \\\\c"',
    );
  });

  test.each([
    ['pending', { hosted: hostedDomain({ status: 'pending' }) }, [HOST_ACTION.check, HOST_ACTION.stop]],
    ['active, not ready', {}, [HOST_ACTION.check, HOST_ACTION.stop]],
    [
      'active, ready',
      { enforce: { ready: true, missing: [] } },
      [HOST_ACTION.check, HOST_ACTION.enforce, HOST_ACTION.stop],
    ],
    [
      'active with a proposal',
      {
        proposal: {
          proposal: {
            observed: ['mx2.example.com'],
            add: ['mx2.example.com'],
            drop: ['mx1.example.com'],
            proposedAt: '2026-12-01T10:00:00.000Z',
            interim: ['mx1.example.com', 'mx2.example.com'],
            final: ['mx2.example.com'],
            waitMaxAge: 604800,
            interimServedAt: null,
          },
          next: { kind: 'interim' as const, mx: ['mx1.example.com', 'mx2.example.com'] },
        },
      },
      [HOST_ACTION.check, HOST_ACTION.apply, HOST_ACTION.stop],
    ],
    [
      'pending and ready (no enforce before it is served)',
      { hosted: hostedDomain({ status: 'pending' }), enforce: { ready: true, missing: [] } },
      [HOST_ACTION.check, HOST_ACTION.stop],
    ],
    ['leaving', { hosted: hostedDomain({ status: 'leaving', mode: 'none' }) }, [HOST_ACTION.check]],
  ])('%s: the buttons', (_, over, ids) => {
    const v = view(over as Partial<HostView>);
    expect(actionIds(hostActions(scope, v))).toEqual(ids);
    withinLimits(hostMessage(v, scope));
  });

  test('shown in another channel of the workspace: only Check DNS now, and where changes are made', () => {
    const elsewhere = { ...scope, channel: 'C9' };
    const v = view({ enforce: { ready: true, missing: [] } });
    expect(actionIds(hostActions(elsewhere, v))).toEqual([HOST_ACTION.check]);
    const shown = hostMessage(v, elsewhere);
    withinLimits(shown);
    expect(JSON.stringify(shown)).toContain(
      'are made only from <#C1>, the channel it was enrolled from, and not by guests',
    );
    expect(JSON.stringify(hostMessage(v, scope))).not.toContain('made only from');
    const orphan = view({ hosted: hostedDomain({ channelId: null }) });
    expect(actionIds(hostActions(scope, orphan))).toEqual([HOST_ACTION.check]);
  });

  test('removed: no buttons, no records', () => {
    const v = view({ hosted: hostedDomain({ status: 'removed' }) });
    expect(hostActions(scope, v)).toBeNull();
    expect(JSON.stringify(hostMessage(v, scope))).not.toContain('IN CNAME');
  });

  test('Stop hosting asks first, and says how the way out goes', () => {
    const stop = hostActions(scope, view())?.elements.find((e: Block) => e.action_id === HOST_ACTION.stop);
    expect(stop.style).toBe('danger');
    expect(stop.confirm.text.text).toContain('mode: none');
    expect(stop.confirm.text.text.length).toBeLessThanOrEqual(300);
    expect(JSON.parse(stop.value)).toEqual({ d: 'example.com', t: 'T1', c: 'C1' });
  });

  test('text from DNS and the CA is escaped: no mention, no link', () => {
    const v = view({
      hosted: hostedDomain({
        nameLostAt: '2026-12-01T10:00:00.000Z',
        nameProblem: '<!channel> <https://evil.test|click>',
        certificate: { state: 'failed', at: 'x', notAfter: null, error: '<!here>', retryAt: null },
      }),
      dnsError: '<@U123>',
      dns: null,
    });
    const text = JSON.stringify(hostMessage(v, scope));
    for (const bad of ['<!channel>', '<https://evil.test', '<!here>', '<@U123>'])
      expect(text).not.toContain(bad);
  });

  test("the CA's error is inert: one code span on one line, so no bold, italic, link or mention", () => {
    const error =
      'urn:ietf:params:acme:error:unauthorized: *bold* _italic_ ~strike~ https://evil.test/login <https://evil.test|click> `tick` ```fence```\nsecond line <!here>';
    const failed = (e: string) =>
      hostMessage(
        view({
          hosted: hostedDomain({
            certificate: {
              state: 'failed',
              at: '2026-12-01T10:00:00.000Z',
              notAfter: null,
              error: e,
              retryAt: null,
            },
          }),
        }),
        scope,
      );
    const text = failed(error)
      .blocks.map((b) => b.text?.text ?? '')
      .join('\n');
    const span = /the CA said (`[^`]*`); next try/.exec(text)?.[1] ?? '';
    expect(span).toContain(
      '*bold* _italic_ ~strike~ https://evil.test/login &lt;https://evil.test|click&gt;',
    );
    expect(span).toContain("'tick' '''fence'''");
    expect(span).toContain('second line &lt;!here&gt;');
    expect(span).not.toContain('\n');
    // Nothing of it outside the span: the line reads as it should, around it.
    expect(text.split('*bold*')).toHaveLength(2);
    expect(text).toMatch(
      /:warning: Certificate: the last attempt failed at 2026-12-01T10:00:00Z; the CA said `/,
    );
    const long = /the CA said (`[^`]*`)/.exec(
      failed('x'.repeat(2000))
        .blocks.map((b) => b.text?.text ?? '')
        .join('\n'),
    )?.[1];
    expect(long?.length).toBeLessThanOrEqual(302);
  });

  test('text from DNS (the name problem, a DNS error) is inert: a code span on one line, so a host name is no link', () => {
    const problem =
      'mta-sts.example.com is a CNAME to www.evil.test, not <https://evil.test|the target>: *see* https://evil.test/fix _now_ `x`\n<!here>';
    const sectionsOf = (v: HostView) =>
      hostMessage(v, scope)
        .blocks.map((b) => b.text?.text ?? '')
        .join('\n');
    const inert =
      "`mta-sts.example.com is a CNAME to www.evil.test, not &lt;https://evil.test|the target&gt;: *see* https://evil.test/fix _now_ 'x' &lt;!here&gt;`";
    const pending = sectionsOf(view({ hosted: hostedDomain({ status: 'pending', nameProblem: problem }) }));
    expect(pending).toContain(`Last look: ${inert}`);
    const lost = sectionsOf(
      view({ hosted: hostedDomain({ nameLostAt: '2026-12-01T10:00:00.000Z', nameProblem: problem }) }),
    );
    expect(lost).toContain(
      `:warning: \`mta-sts.example.com\` no longer points at the bot for this enrollment (since 2026-12-01T10:00:00Z): ${inert}`,
    );
    const failed = sectionsOf(view({ dns: null, dnsError: problem }));
    expect(failed).toContain(`\`_mta-sts.example.com\` could not be read now: ${inert}`);
    for (const text of [pending, lost, failed]) {
      // Nothing of it outside the span: the URL-like names and the mrkdwn appear once, inside it.
      expect(text.split('www.evil.test')).toHaveLength(2);
      expect(text.split('*see*')).toHaveLength(2);
    }
    const alert = hostingAlertMessage({
      kind: 'hosting-name-lost',
      domain: 'example.com',
      policyHost: 'mta-sts.example.com',
      at: '2026-12-01T10:00:00.000Z',
      problem: `${'x'.repeat(400)} https://evil.test`,
    })
      .blocks.map((b) => b.text?.text ?? '')
      .join('\n');
    const span = /Last look: (`[^`]*`)\n/.exec(alert)?.[1] ?? '';
    expect(span.length).toBeGreaterThan(250);
    expect(span.length).toBeLessThanOrEqual(302);
    expect(alert).not.toContain('https://evil.test');
    const named = hostingAlertMessage({
      kind: 'hosting-name-lost',
      domain: 'example.com',
      policyHost: 'mta-sts.example.com',
      at: '2026-12-01T10:00:00.000Z',
      problem,
    })
      .blocks.map((b) => b.text?.text ?? '')
      .join('\n');
    expect(named).toContain(`Last look: ${inert}\n`);
    expect(named.split('www.evil.test')).toHaveLength(2);
  });

  test('the way out: the CNAME must go, and only after mode none has been in DNS long enough', () => {
    const sections = (v: HostView) =>
      hostMessage(v, scope)
        .blocks.map((b) => b.text?.text ?? '')
        .join('\n');
    const leaving = (leavingUntil: string | null) =>
      sections(
        view({
          hosted: hostedDomain({ status: 'leaving', mode: 'none', stsId: '20261202T100000', leavingUntil }),
        }),
      );
    const dated = leaving('2026-12-03T10:00:00.000Z');
    expect(dated).toContain(
      'Mode none is served (id `20261202T100000`) until 2026-12-03T10:00:00Z (its max_age after DNS was first seen carrying that id)',
    );
    expect(dated).toContain(
      'Then hosting ends, and the CNAME `mta-sts.example.com` and the `_mta-sts.example.com` record must go; not before',
    );
    expect(leaving(null)).toContain('until DNS carries that id and then for the max_age');
    const removed = sections(view({ hosted: hostedDomain({ status: 'removed' }) }));
    expect(removed).toContain(
      'the CNAME `mta-sts.example.com` and the `_mta-sts.example.com` record must go',
    );
    const stop = hostActions(scope, view())?.elements.find((e: Block) => e.action_id === HOST_ACTION.stop);
    expect(stop.confirm.text.text).toContain('Then hosting ends and the CNAME must go');
    const ended = JSON.stringify(
      hostingAlertMessage({
        kind: 'hosting-removed',
        domain: 'example.com',
        policyHost: 'mta-sts.example.com',
        at: '2026-12-01T10:00:00.000Z',
      }),
    );
    expect(ended).toContain('record must go now');
    for (const text of [dated, removed, stop.confirm.text.text, ended]) expect(text).not.toContain('may go');
  });

  test("the CNAME target is the enrollment's own, under the hosting name (hosting off, pending)", () => {
    expect(HOSTING_OFF_TEXT).toContain('its own target `<token>.<MTASTS_HOSTING_NAME>`');
    expect(HOSTING_OFF_TEXT).toContain("the operator's wildcard `*.<MTASTS_HOSTING_NAME>`");
    expect(HOSTING_OFF_TEXT).not.toContain('CNAME records point to');
    const pending = JSON.stringify(hostMessage(view({ hosted: hostedDomain({ status: 'pending' }) }), scope));
    expect(pending).toContain(
      "pointing at this enrollment's own target below (under `bot.example.net`, never that name itself)",
    );
  });

  test('many mx patterns and versions still fit', () => {
    const mx = Array.from({ length: 20 }, (_, i) => `mx${i}.a-rather-long-mail-host-name.example.com`);
    const policyText = `version: STSv1\nmode: testing\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: 604800\n`;
    const cached = Array.from({ length: 30 }, (_, i) => ({
      stsId: `2026120${i}`,
      policyText,
      mode: 'testing' as const,
      maxAge: 604800,
      createdAt: 'x',
      servedFrom: 'x',
      servedUntil: 'x',
      cachedUntil: '2026-12-09T10:00:00.000Z',
    }));
    withinLimits(hostMessage(view({ hosted: hostedDomain({ mx }), policyText, cached }), scope));
  });

  test('the list: status, id, and where', () => {
    const m = hostListMessage(
      [hostedDomain(), hostedDomain({ domain: 'b.example', status: 'pending', dnsCarriesAt: 'x' })],
      50,
    );
    const text = JSON.stringify(m);
    expect(text).toContain('2 of 50');
    expect(text).toContain('<#C1>');
    withinLimits(m);
    expect(JSON.stringify(hostListMessage([], 50))).toContain('hosts no MTA-STS policy');
  });
});

describe('hosted domains alerts', () => {
  const payload = (kind: HostingPayload['kind']): HostingPayload => ({
    kind,
    domain: 'example.com',
    policyHost: 'mta-sts.example.com',
    at: '2026-12-01T10:00:00.000Z',
    stsId: '20261201T100000',
    seenId: '<!channel>',
    mode: 'enforce',
    mx: ['mx2.example.com'],
    change: {
      add: ['mx2.example.com'],
      drop: ['mx1.example.com'],
      next: 'interim',
      nextMx: ['mx1.example.com', 'mx2.example.com'],
      until: null,
    },
    notAfter: '2027-03-01T10:00:00.000Z',
    error: '<!everyone> failed',
    retryAt: '2026-12-01T11:00:00.000Z',
    problem: '<https://evil.test|x>',
    watch: 'added',
  });

  test.each(HOSTING_ALERT_KINDS.map((k) => [k]))(
    '%s: rendered (Slack, JSON, log), escaped, within limits',
    (kind) => {
      const p = payload(kind);
      const slack = alertMessage(p, { team: 'T1', channel: 'C1' });
      withinLimits(slack);
      const text = JSON.stringify(slack);
      for (const bad of ['<!channel>', '<!everyone>', '<https://evil.test']) expect(text).not.toContain(bad);
      expect(text).toContain('example.com');
      const o = alertObject(p, null, new Date('2026-12-01T10:00:00.000Z'));
      expect(o.kind).toBe(kind);
      expect(o.domain).toBe('example.com');
      expect(logBlock(p, null)).toContain('example.com');
    },
  );

  test('buttons only where something can be done, and only where it is posted', () => {
    const ids = (kind: HostingPayload['kind']) =>
      actionIds(
        hostingAlertMessage(payload(kind), { team: 'T1', channel: 'C1' }).blocks.find(
          (b) => b.type === 'actions',
        ) ?? null,
      );
    expect(ids('hosting-proposal')).toEqual([HOST_ACTION.apply]);
    expect(ids('hosting-id-reminder')).toEqual([HOST_ACTION.check]);
    expect(ids('hosting-active')).toEqual([]);
    expect(hostingAlertMessage(payload('hosting-proposal')).blocks.some((b) => b.type === 'actions')).toBe(
      false,
    );
    const waiting = payload('hosting-proposal');
    waiting.change = {
      add: ['mx2.example.com'],
      drop: ['mx1.example.com'],
      next: 'wait',
      nextMx: ['mx2.example.com'],
      until: '2026-12-08T10:00:00.000Z',
    };
    expect(JSON.stringify(hostingAlertMessage(waiting, { team: 'T1', channel: 'C1' }))).not.toContain(
      HOST_ACTION.apply,
    );
  });

  test("certificate-failed: the CA's words inert, as in the host message", () => {
    const p = {
      ...payload('certificate-failed'),
      error: '*bold* _italic_ https://evil.test/x <https://evil.test|x> `tick`\n<!channel>',
    };
    const text = hostingAlertMessage(p, { team: 'T1', channel: 'C1' })
      .blocks.map((b) => b.text?.text ?? '')
      .join('\n');
    const span = /The CA said: (`[^`]*`)\n/.exec(text)?.[1] ?? '';
    expect(span).toBe(
      "`*bold* _italic_ https://evil.test/x &lt;https://evil.test|x&gt; 'tick' &lt;!channel&gt;`",
    );
    expect(text.split('*bold*')).toHaveLength(2);
  });

  test('hosting-dropped: the loser told what happened and what to check, nothing of the winner, no buttons', () => {
    const p: HostingPayload = {
      kind: 'hosting-dropped',
      domain: 'example.com',
      policyHost: 'mta-sts.example.com',
      at: '2026-12-01T10:00:00.000Z',
    };
    const slack = hostingAlertMessage(p, { team: 'T1', channel: 'C1' });
    withinLimits(slack);
    expect(slack.blocks.map((b) => b.type)).toEqual(['section']);
    const text = slack.blocks.map((b) => b.text?.text ?? '').join('\n');
    expect(text).toContain(
      'Another enrollment proved control of `mta-sts.example.com` first (its CNAME target is in DNS); your pending request was dropped. If the domain is yours, check who changed the CNAME.',
    );
    expect(slack.text).toBe('example.com: your request to host it was dropped');
    expect(alertObject(p, null, new Date()).severity).toBe('warning');
    expect(logBlock(p, null)).toContain(
      '  Another enrollment proved control of `mta-sts.example.com` first (its CNAME target is in DNS); your pending request was dropped.',
    );
  });

  test('the reminder carries the TXT to publish', () => {
    const text = JSON.stringify(hostingAlertMessage(payload('hosting-id-reminder')));
    expect(text).toContain('_mta-sts.example.com. 3600 IN TXT');
    expect(text).toContain('v=STSv1; id=20261201T100000');
  });
});
