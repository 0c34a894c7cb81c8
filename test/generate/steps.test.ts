import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import type { Report } from '../../src/core/check.js';
import { formatPolicy, mxPatternMatches, parsePolicy } from '../../src/core/policy.js';
import { parseStsRecord } from '../../src/core/sts-record.js';
import { parseTlsRptRecord } from '../../src/core/tlsrpt-record.js';
import { type PlanStep, planRecords, type RecordsPlan } from '../../src/generate/records.js';
import { MX_TTL_MARGIN_S } from '../../src/generate/steps.js';
import { stepHeading } from '../../src/render/records-text.js';
import type { Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { LIMITS } from '../../src/slack/blocks/common.js';
import { recordsMessage } from '../../src/slack/blocks/records.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';
import { reportOf } from '../support/report.js';
import { startSlackRig } from '../support/slack-rig.js';
import { NGINX, NginxRunner, warnIfMissing } from './nginx-runner.js';

warnIfMissing('the MX migration served by nginx (test/generate/steps.test.ts)');

/** One clock for the CLI and the Slack app, so that both plan the same steps (ids and dates come from it). */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const SECRET = 'steps-signing-secret';

let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let appUrl: string;
const nginxes: NginxRunner[] = [];

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  ({
    runtime,
    app,
    url: appUrl,
  } = await startSlackRig(lab, slack, {
    secret: SECRET,
    databasePath: join(mkdtempSync(join(tmpdir(), 'mtasts-steps-')), 'app.sqlite'),
    overrides: { now: () => NOW, engine: { options: { now: () => NOW } } },
  }));
});
afterAll(async () => {
  for (const n of nginxes) await n.stop();
  await app.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

/** The CLI in process against the lab, on the shared clock. */
function cli(env: Record<string, string> = {}) {
  const t = lab.cliIo(env);
  t.value.engine = { ...t.value.engine, now: () => NOW };
  return t;
}

async function recordsJson(args: string[], env: Record<string, string> = {}): Promise<RecordsPlan> {
  const t = cli(env);
  const code = await main(['records', ...args, '--json'], t.value);
  expect(t.err()).toBe('');
  expect(code).toBe(0);
  return (JSON.parse(t.out()) as { plan: RecordsPlan }).plan;
}

async function recordsText(args: string[]): Promise<string> {
  const t = cli();
  expect(await main(['records', ...args], t.value)).toBe(0);
  return t.out();
}

/** What a sender sees now: the check's report through the real CLI. */
async function senderView(domain: string): Promise<Report> {
  const t = cli();
  await main(['check', domain, '--json'], t.value);
  return JSON.parse(t.out()) as Report;
}

/** `/mtasts records …` through the real Bolt app: every text of the blocks it answers with. */
async function slackRecords(text: string): Promise<string> {
  const responseUrl = slack.responseUrl(`steps-${Math.random()}`);
  const id = responseUrl.split('/').pop() ?? '';
  await sendSigned(`${appUrl}/slack/events`, SECRET, slashCommand(`records ${text}`, { responseUrl }));
  await slack.waitFor(() => slack.responses.some((r) => r.id === id), 20000);
  const body = slack.responses.find((r) => r.id === id)?.body as { text?: string; blocks?: unknown[] };
  return blockTexts(body);
}

function blockTexts(body: { text?: string; blocks?: unknown[] }): string {
  const texts: string[] = [body.text ?? ''];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
    } else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.text === 'string') texts.push(o.text);
      for (const v of Object.values(o)) walk(v);
    }
  };
  walk(body.blocks);
  return texts.join('\n').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** White space runs made one space: text wrapped and indented for a terminal compares with the plain value. */
const flat = (text: string) => text.replace(/\s+/g, ' ').trim();

/** Every TXT record and policy of a step parses back clean with the project's own parsers. */
function expectParsesBack(step: PlanStep): void {
  for (const r of step.records) {
    if (r.name.startsWith('_mta-sts.')) expect(parseStsRecord(r.value)).toMatchObject({ problems: [] });
    if (r.name.startsWith('_smtp._tls.')) expect(parseTlsRptRecord(r.value)).toMatchObject({ problems: [] });
  }
  expect(parsePolicy(step.policyText)).toMatchObject({ valid: true, problems: [] });
  expect(step.snippets.caddy).toContain(step.policyText);
  expect(step.snippets.nginx).toContain(`return 200 "${step.policyText.replace(/\n/g, '\\n')}";`);
}

describe('an MX migration in enforce: three steps, each safe when it goes live', () => {
  const domain = 'northwind.test';
  const args = [
    domain,
    '--mx',
    'mx9.elsewhere.test',
    '--mode',
    'enforce',
    '--rua',
    'mailto:tls@northwind.test',
  ];
  let plan: RecordsPlan;
  let initial: string;

  beforeAll(async () => {
    initial = (await lab.domain(domain)).policy;
    await lab.mxHost('mx9.elsewhere.test');
    plan = await recordsJson(args);
  });

  test('the plan: interim policy and its id now, MX records after the old max_age, final policy and id a day later', () => {
    expect(plan.steps.map((s) => [s.number, s.title, s.policyChanges])).toEqual([
      [1, 'Publish the interim policy (old and new hosts), then a new id', true],
      [2, 'Move mail: MX records to mx9.elsewhere.test', false],
      [3, 'Drop mx1.northwind.test, mx2.northwind.test from the policy, then a new id', true],
    ]);
    const [one, two, three] = plan.steps as [PlanStep, PlanStep, PlanStep];
    const at = (s: number) => new Date(NOW.getTime() + s * 1000).toISOString().replace(/\.000Z$/, 'Z');
    expect([one.notBefore, two.notBefore, three.notBefore]).toEqual([
      null,
      at(1209600),
      at(1209600 + MX_TTL_MARGIN_S),
    ]);
    expect(one.policyText).toBe(
      'version: STSv1\nmode: enforce\nmx: mx1.northwind.test\nmx: mx2.northwind.test\nmx: mx9.elsewhere.test\nmax_age: 1209600\n',
    );
    expect(two.policyText).toBe(one.policyText);
    expect(three.policyText).toBe(
      'version: STSv1\nmode: enforce\nmx: mx9.elsewhere.test\nmax_age: 1209600\n',
    );
    // Two new ids: one for the interim policy, one for the final; step 2 changes no id.
    expect(new Set([one.id, three.id, '20261129T000000']).size).toBe(3);
    expect(two.id).toBe(one.id);
    expect(one.records.map((r) => [r.type, r.host, r.value])).toEqual([
      ['TXT', '_mta-sts', `v=STSv1; id=${one.id}`],
      ['TXT', '_smtp._tls', 'v=TLSRPTv1; rua=mailto:tls@northwind.test'],
    ]);
    expect(two.records.map((r) => [r.type, r.host, r.priority, r.value])).toEqual([
      ['MX', '@', 10, 'mx9.elsewhere.test'],
    ]);
    expect(three.records.map((r) => [r.type, r.host, r.value])).toEqual([
      ['TXT', '_mta-sts', `v=STSv1; id=${three.id}`],
    ]);
    // The policy file goes live before the TXT record with the new id.
    for (const s of [one, three]) {
      const serve = s.actions.findIndex((a) => a.includes('Serve'));
      const publish = s.actions.findIndex((a) => a.includes(`publish the _mta-sts record with id ${s.id}`));
      expect(serve).toBeGreaterThanOrEqual(0);
      expect(publish).toBeGreaterThan(serve);
    }
    for (const s of plan.steps) expectParsesBack(s);
    expect(plan.id).toBe(one.id);
    expect(plan.policyText).toBe(one.policyText);
  });

  test('no sender ever holds a policy that misses an MX host it can be handed (cached policies and MX records)', () => {
    // Worst cases: a sender fetched a policy just before it was replaced and keeps it for its max_age; a resolver
    // hands out MX records for a day after they changed. Each step goes live at its notBefore.
    const [one, two, three] = plan.steps as [PlanStep, PlanStep, PlanStep];
    const t = (s: PlanStep) => (s.notBefore ? Date.parse(s.notBefore) : NOW.getTime());
    const oldPolicy = { mx: ['mx1.northwind.test', 'mx2.northwind.test'], maxAge: 1209600 };
    const policies = [
      { from: NOW.getTime() - 1, until: t(one) + oldPolicy.maxAge * 1000, mx: oldPolicy.mx },
      { from: t(one), until: t(three) + 1209600_000, mx: parsePolicy(one.policyText).policy.mx },
      { from: t(three), until: Number.POSITIVE_INFINITY, mx: parsePolicy(three.policyText).policy.mx },
    ];
    const mxSets = [
      { from: NOW.getTime() - 1, until: t(two) + MX_TTL_MARGIN_S * 1000, hosts: oldPolicy.mx },
      { from: t(two), until: Number.POSITIVE_INFINITY, hosts: two.records.map((r) => r.value) },
    ];
    const moments = [t(one), t(two), t(three), t(two) + 1, t(three) + 1, t(three) + 30 * 86400_000];
    for (const at of moments) {
      for (const p of policies.filter((p) => p.from <= at && at < p.until)) {
        for (const m of mxSets.filter((m) => m.from <= at && at < m.until)) {
          for (const host of m.hosts) {
            expect(
              p.mx.some((pattern) => mxPatternMatches(pattern, host)),
              `${host} at ${new Date(at).toISOString()}`,
            ).toBe(true);
          }
        }
      }
    }
  });

  test.skipIf(!NGINX)(
    'published step by step, served by a real nginx: what a sender fetches covers every MX DNS lists',
    async () => {
      const host = `mta-sts.${domain}`;
      const address = lab.newAddress();
      const nginx = new NginxRunner(address, lab.policyPort, lab.cert([host]));
      nginxes.push(nginx);
      const expectCovered = async (policyText: string, id: string) => {
        const report = await senderView(domain);
        expect(report.evidence.policy.text).toBe(policyText);
        expect(report.evidence.sts.id).toBe(id);
        const mx = parsePolicy(policyText).policy.mx;
        expect(report.evidence.mx.hosts.length).toBeGreaterThan(0);
        for (const h of report.evidence.mx.hosts) {
          expect(
            mx.some((p) => mxPatternMatches(p, h.host)),
            h.host,
          ).toBe(true);
        }
        expect(report.findings.map((f) => f.code)).not.toContain('MX_NOT_IN_POLICY');
        expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
      };
      const publish = (step: PlanStep) => {
        for (const r of step.records.filter((r) => r.type === 'TXT')) lab.set(r.name, { TXT: [r.value] });
        const mx = step.records.filter((r) => r.type === 'MX');
        if (mx.length > 0) {
          lab.edit(domain, { MX: mx.map((r) => ({ preference: r.priority ?? 10, exchange: r.value })) });
        }
      };
      const [one, two, three] = plan.steps as [PlanStep, PlanStep, PlanStep];
      await expectCovered(initial, '20261129T000000');
      // Step 1: the interim policy file first (the old id still announced), then its id.
      await nginx.serve(one.snippets.nginx, host);
      lab.set(host, { A: [address] });
      await expectCovered(one.policyText, '20261129T000000');
      publish(one);
      await expectCovered(one.policyText, one.id);
      // Step 2: the MX records move; the policy and id stay.
      publish(two);
      expect((await senderView(domain)).evidence.mx.hosts.map((h) => h.host)).toEqual(['mx9.elsewhere.test']);
      await expectCovered(two.policyText, one.id);
      // Step 3: the final policy file first, then its id.
      await nginx.serve(three.snippets.nginx, host);
      await expectCovered(three.policyText, one.id);
      publish(three);
      await expectCovered(three.policyText, three.id);
      const final = await senderView(domain);
      expect(final.status).toBe('pass');
    },
  );
});

describe('the command line text, its JSON and Slack show the same steps', () => {
  test('an MX migration, step by step, with every id, date, policy file and record', async () => {
    const domain = 'agree.test';
    await lab.domain(domain);
    const args = [domain, '--mx', 'mx9.agree.test', '--mode', 'enforce', '--rua', 'mailto:tls;x@agree.test'];
    const plan = await recordsJson(args);
    const text = flat(await recordsText(args));
    const blocks = flat(await slackRecords(args.join(' ')));
    expect(plan.steps).toHaveLength(3);
    for (const step of plan.steps) {
      const pieces = [
        stepHeading(plan, step),
        ...step.actions,
        step.id,
        ...step.records.map((r) => r.value),
        ...(step.policyChanges ? [step.policyText] : []),
      ];
      for (const piece of pieces) {
        expect(text, `text: ${piece}`).toContain(flat(piece));
        expect(blocks, `Slack: ${piece}`).toContain(flat(piece));
      }
      if (step.notBefore) {
        expect(text).toContain(`not before ${step.notBefore}`);
        expect(blocks).toContain(`not before ${step.notBefore}`);
      }
    }
    // The rua with a ";" is percent-encoded in both, and parses back clean.
    const tlsrpt = plan.steps[0]?.records.find((r) => r.name === `_smtp._tls.${domain}`)?.value ?? '';
    expect(tlsrpt).toBe('v=TLSRPTv1; rua=mailto:tls%3Bx@agree.test');
    expect(parseTlsRptRecord(tlsrpt).record?.rua).toEqual(['mailto:tls%3Bx@agree.test']);
    expect(blocks).toContain(tlsrpt);
    // The step order is the same: each heading after the one before.
    const order = (s: string) => plan.steps.map((step) => s.indexOf(flat(stepHeading(plan, step))));
    for (const positions of [order(text), order(blocks)]) {
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    }
  });
});

describe('one rollout rule: enforce after 14 clean days in testing and no reported TLS failures', () => {
  const domain = 'rollout.test';
  const DAY = 86400_000;
  const ago = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();
  let dbPath: string;

  beforeAll(async () => {
    await lab.domain(domain, { mode: 'testing' });
    dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-rollout-')), 'mtasts.sqlite');
  });

  /** The monitor's state as the app leaves it: the domain watched, clean in testing since `cleanSince`. */
  async function monitored(cleanSince: string | null): Promise<void> {
    const [{ openDatabase }, { SubscriptionStore }, { MonitorStore }] = await Promise.all([
      import('../../src/store/db.js'),
      import('../../src/store/subscriptions.js'),
      import('../../src/store/monitor.js'),
    ]);
    const db = openDatabase(dbPath);
    try {
      await new SubscriptionStore(db).watch('T1', 'C1', domain, 'U1', 100, NOW);
      await new MonitorStore(db).commit(
        domain,
        { snapshot: null, conditions: [], cleanSince, readyAnnounced: null },
        [],
        NOW,
      );
    } finally {
      await db.close();
    }
  }

  const env = () => ({ DATABASE_PATH: dbPath });

  test('without a monitoring database: testing kept, and it says what enforce needs', async () => {
    const plan = await recordsJson([domain], {
      DATABASE_PATH: join(tmpdir(), 'no-such-dir-mtasts', 'x.sqlite'),
    });
    expect(plan.mode).toBe('testing');
    expect(plan.reasons[0]).toBe(
      'mode testing: kept; enforce needs 14 days in testing with no errors, counted by the monitor from its first clean pass (no monitoring history here: the monitor counts the days of a watched domain, and the command line reads them from the database at DATABASE_PATH). (--mode enforce gives it now, at your own risk.)',
    );
    expect(plan.steps.map((s) => s.title)).toEqual(['Nothing to change: keep the policy and its id']);
  });

  test('a database where the domain is not watched', async () => {
    const { openDatabase } = await import('../../src/store/db.js');
    await openDatabase(dbPath).close();
    const plan = await recordsJson([domain], env());
    expect(plan.mode).toBe('testing');
    expect(plan.reasons[0]).toContain(
      '(the domain is not watched: /mtasts watch it, and the monitor counts the days)',
    );
  });

  test('watched, clean for 3 days: testing, and enforce not before day 14', async () => {
    await monitored(ago(3));
    const plan = await recordsJson([domain], env());
    expect(plan.mode).toBe('testing');
    const readyAt = new Date(Date.parse(ago(3)) + 14 * DAY).toISOString();
    expect(plan.rollout).toEqual({
      ready: false,
      since: ago(3),
      readyAt,
      missing: [`14 days in testing with no errors: clean since ${ago(3)}, so not before ${readyAt}`],
    });
    expect(plan.reasons[0]).toContain(`so not before ${readyAt}`);
    // --mode enforce still gives it, on request, with a warning naming what the rule still needs.
    const asked = await recordsJson([domain, '--mode', 'enforce'], env());
    expect(asked.mode).toBe('enforce');
    expect(asked.warnings).toContain(
      `enforce before the rollout rule is met: it needs 14 days in testing with no errors: clean since ${ago(3)}, so not before ${readyAt}.`,
    );
  });

  test('watched, clean for 15 days: enforce offered, in one step, with the policy before the id', async () => {
    await monitored(ago(15));
    const plan = await recordsJson([domain], env());
    expect(plan.mode).toBe('enforce');
    expect(plan.rollout).toMatchObject({ ready: true, since: ago(15), missing: [] });
    expect(plan.reasons[0]).toBe(
      `mode enforce: in testing with no errors and no reported TLS failures since ${ago(15)}, 14 days or more, so ready to enforce.`,
    );
    expect(plan.maxAge).toBe(1209600);
    expect(plan.steps).toHaveLength(1);
    expect(plan.steps[0]?.title).toBe('Publish the new policy, then its new id');
    expect(plan.steps[0]?.policyText).toContain('mode: enforce\n');
    expect(plan.change?.differences).toEqual(['mode: testing -> enforce']);
    const text = await recordsTextWith([domain], env());
    expect(text).toContain('mode enforce, max_age 1209600 (14 days)');
    expect(text).toContain('One step, safe now.');
  });

  test('a TLS-RPT report of failed sessions two days ago restarts the count', async () => {
    await monitored(ago(20));
    const { gzipSync } = await import('node:zlib');
    const { tlsrptReport } = await import('../support/report.js');
    const report = tlsrptReport({
      domain,
      id: 'rollout-1',
      start: ago(3).replace(/\.\d{3}Z$/, 'Z'),
      end: ago(2).replace(/\.\d{3}Z$/, 'Z'),
      failed: 5,
    });
    const mail = Buffer.from(
      [
        'From: reports@reporter.example',
        `To: tls@${domain}`,
        `Subject: Report Domain: ${domain} Submitter: reporter.example Report-ID: <rollout-1>`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/report; report-type=tlsrpt; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain',
        '',
        'A TLS report.',
        '--b1',
        'Content-Type: application/tlsrpt+gzip',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="report.json.gz"',
        '',
        gzipSync(report).toString('base64'),
        '--b1--',
        '',
      ].join('\r\n'),
    );
    const ingest = cli(env());
    ingest.value.stdin = async () => mail;
    expect(await main(['ingest-email'], ingest.value)).toBe(0);
    const plan = await recordsJson([domain], env());
    expect(plan.mode).toBe('testing');
    const failure = ago(2).replace(/\.\d{3}Z$/, 'Z');
    expect(plan.rollout?.ready).toBe(false);
    expect(plan.rollout?.missing[0]).toMatch(
      /^14 days with no reported TLS failures: the last reported failure was at /,
    );
    expect(Date.parse(plan.rollout?.since ?? '')).toBe(Date.parse(failure));
  });
});

async function recordsTextWith(args: string[], env: Record<string, string>): Promise<string> {
  const t = cli(env);
  expect(await main(['records', ...args], t.value)).toBe(0);
  return t.out();
}

describe('advice that is true in every state', () => {
  test('dropping an MX host that DNS still lists is refused in enforce (exit 2), warned in testing', async () => {
    await lab.domain('drop.test');
    for (const extra of [['--mode', 'enforce'], []]) {
      const t = cli();
      expect(await main(['records', 'drop.test', '--mx', 'mx1.drop.test', ...extra], t.value)).toBe(2);
      expect(t.err()).toBe(
        'mtasts: --mx leaves mx2.drop.test uncovered while MX records point to it: in enforce mode senders would refuse to deliver to it. Add it to --mx, remove it from the MX records first, or use --mode testing\n',
      );
      expect(t.out()).toBe('');
    }
    const plan = await recordsJson(['drop.test', '--mx', 'mx1.drop.test', '--mode', 'testing']);
    expect(plan.warnings[0]).toBe(
      '--mx leaves mx2.drop.test uncovered while MX records point to it: senders will report failures for it. Add it before moving to enforce.',
    );
  });

  test('enforce on request for a domain that never tested: given, with the rule named', async () => {
    await lab.domain('untested.test', { mode: 'none' });
    const plan = await recordsJson(['untested.test', '--mode', 'enforce']);
    expect(plan.mode).toBe('enforce');
    expect(plan.rollout).toBeNull();
    expect(plan.warnings).toContain(
      'enforce without testing first: the rollout rule offers enforce after 14 days in testing with no errors and no reported TLS failures; in enforce, senders refuse to deliver to an MX host whose TLS fails.',
    );
  });

  test('bad flags in Slack get the same one line as on the command line', async () => {
    const t = cli();
    expect(await main(['records', 'example.com', '--max-age', '99999999999'], t.value)).toBe(2);
    const line = t
      .err()
      .replace(/^mtasts: /, '')
      .trim();
    expect(line).toBe('--max-age 99999999999 is out of range: give 1 to 31557600 seconds (365.25 days)');
    const ack = await sendSigned(
      `${appUrl}/slack/events`,
      SECRET,
      slashCommand('records example.com --max-age 99999999999', { responseUrl: slack.responseUrl('maxage') }),
    );
    expect(JSON.stringify(ack.json())).toContain(line);
  });

  test('a policy file without an _mta-sts record: the record is to be published, with the id shown', async () => {
    await lab.domain('nosts.test');
    delete lab.dns.zone['_mta-sts.nosts.test'];
    const plan = await recordsJson(['nosts.test']);
    expect(plan.change?.differences).toEqual([]);
    expect(plan.change?.idMustChange).toBe(true);
    expect(plan.steps.map((s) => [s.title, s.policyChanges])).toEqual([
      ['Publish the _mta-sts record', false],
    ]);
    expect(plan.steps[0]?.records[0]?.value).toBe(`v=STSv1; id=${plan.id}`);
    const text = await recordsText(['nosts.test']);
    expect(text).not.toContain('so does the id');
    expect(flat(text)).toContain(
      `The policy file stays as it is, but no _mta-sts record announces it: publish the record with id ${plan.id}.`,
    );
  });

  test("the Slack setup form says what the rollout rule needs, and Slack records follow the monitor's clean days", async () => {
    lab.set('newform.test', { MX: [{ preference: 10, exchange: 'mx1.newform.test' }] });
    const before = slack.callsTo('views.open').length;
    await sendSigned(
      `${appUrl}/slack/events`,
      SECRET,
      slashCommand('setup newform.test', { responseUrl: slack.responseUrl('setup-form') }),
    );
    await slack.waitFor(() => slack.callsTo('views.open').length === before + 1);
    const view = JSON.parse(String(slack.callsTo('views.open').at(-1)?.body.view)) as {
      blocks: { block_id?: string; hint?: { text: string } }[];
    };
    expect(view.blocks.find((b) => b.block_id === 'mode')?.hint?.text).toBe(
      'Start in testing: enforce follows 14 days in testing with no errors and no reported TLS failures.',
    );
    const blocks = flat(await slackRecords('rollout.test'));
    expect(blocks).toContain('mode testing: kept; enforce needs 14 days in testing with no errors');
    expect(blocks).toContain(
      '(the domain is not watched: /mtasts watch it, and the monitor counts the days)',
    );
    // Watched (in any workspace: the monitor checks a domain once): Slack reads the monitor's clean days as the
    // command line does. No pass yet: testing kept; 15 clean days in the monitor's state: enforce offered.
    await runtime.subscriptions.watch('T1', 'C1', 'rollout.test', 'U1', 100, NOW);
    const watched = flat(await slackRecords('rollout.test'));
    expect(watched).toContain('mode testing: kept; enforce needs 14 days in testing with no errors');
    expect(watched).not.toContain('the monitor counts the days of this watched domain');
    const since = new Date(NOW.getTime() - 15 * 86_400_000).toISOString();
    await runtime.monitorStore.commit(
      'rollout.test',
      { snapshot: null, conditions: [], cleanSince: since, readyAnnounced: null },
      [],
      NOW,
    );
    const ready = flat(await slackRecords('rollout.test'));
    expect(ready).toContain(
      `mode enforce: in testing with no errors and no reported TLS failures since ${since}`,
    );
  });
});

describe('Slack blocks of a plan stay within Block Kit limits', () => {
  const policy = (mx: string[]) => ({
    version: 'STSv1',
    mode: 'enforce' as const,
    maxAge: 1209600,
    mx,
    extensions: [],
  });
  const plan = (count: number) => {
    const hosts = Array.from({ length: count }, (_, i) => `mx${i}.${'l'.repeat(40)}.example.com`);
    const report = reportOf({
      mx: hosts,
      policy: policy(hosts),
      policyText: formatPolicy({ mode: 'enforce', mx: hosts, maxAge: 1209600 }),
      stsId: 'old',
    });
    return planRecords(
      { ascii: 'example.com', unicode: 'example.com' },
      { mx: ['new.example.net'], mode: 'enforce' },
      report,
      'example.com',
      NOW,
    );
  };

  test.each([2, 40])(
    'a migration away from %i MX hosts: three steps, every block within its limit',
    (count) => {
      const p = plan(count);
      expect(p.steps).toHaveLength(3);
      const m = recordsMessage(p, null, {
        supported: true,
        provider: 'P',
        applyUrl: 'https://dc.example/apply?x=1',
        message: 'ok',
      });
      expect(m.blocks.length).toBeLessThanOrEqual(LIMITS.blocksPerMessage);
      for (const b of m.blocks) {
        if (b.type === 'header') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.headerText);
        if (b.type === 'section') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.sectionText);
        if (b.type === 'context') for (const e of b.elements) expect(e.text.length).toBeLessThanOrEqual(2000);
      }
      const all = JSON.stringify(m);
      // A copy-ready block is whole or not there: a policy too long for Slack points to the command line instead.
      for (const step of p.steps.filter((s) => s.policyChanges)) {
        const shown = all.includes(JSON.stringify(step.policyText).slice(1, -1));
        expect(shown || all.includes('too long for a Slack message')).toBe(true);
      }
      if (count === 40)
        expect(all).toContain('too long for a Slack message; `npx mtasts records` on the command line');
      else expect(all).not.toContain('too long for a Slack message');
    },
  );
});
