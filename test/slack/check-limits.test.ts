import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';

const SECRET = 'limits-signing-secret';
let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let url = '';
/** The policy host of held.test answers only once the test lets it: its checks stay running until then. */
let releaseHeld: () => void = () => {};
const held = new Promise<void>((resolve) => {
  releaseHeld = resolve;
});

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  await lab.domain('good.test');
  await lab.domain('held.test', {
    policy: (_req, res) => {
      void held.then(() =>
        res
          .writeHead(200, { 'Content-Type': 'text/plain' })
          .end('version: STSv1\nmode: enforce\nmx: mx1.held.test\nmax_age: 1209600\n'),
      );
    },
  });
  runtime = await openRuntime(
    testConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-limits-')), 'limits.sqlite'),
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_CHECKS_PER_USER: '1',
      MTASTS_CHECKS_PER_TEAM: '2',
      MTASTS_CHECKS_PER_TEAM_PER_MINUTE: '3',
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
    { engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } } },
  );
  app = buildSlackApp(runtime);
  url = `http://127.0.0.1:${await app.start()}/slack/events`;
});
afterAll(async () => {
  releaseHeld();
  await app.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

let n = 0;
/** A slash command; `report()` resolves with what arrived through its response_url. */
function command(text: string, team: string, user: string, channel = 'CL') {
  const id = `l${++n}`;
  const sent = sendSigned(
    url,
    SECRET,
    slashCommand(text, { team, user, channel, responseUrl: slack.responseUrl(id) }),
  );
  const responses = () => slack.responses.filter((r) => r.id === id);
  return {
    ack: async () => (await sent).json() as { text?: string; response_type?: string },
    report: async () => {
      await slack.waitFor(() => responses().length > 0);
      return responses()[0]?.body ?? {};
    },
  };
}

const interaction = (payload: Record<string, unknown>) =>
  sendSigned(url, SECRET, { payload: JSON.stringify({ api_app_id: 'A1', token: 'legacy', ...payload }) });

test('checks are rationed per user, per workspace at once, and per workspace per minute', async () => {
  // U1 starts a check that stays running; a second one of theirs is refused, with when to try again.
  const first = command('check held.test', 'TL', 'U1');
  expect((await first.ack()).text).toContain('Checking held.test');
  expect((await command('check good.test', 'TL', 'U1').ack()).text).toContain(
    'You already have a check running; try again when its report has arrived',
  );
  expect((await command('records good.test', 'TL', 'U1').ack()).text).toContain(
    'You already have a check running',
  );

  // U2 fills the workspace's two slots; U3 is refused while both run, and another workspace is not affected.
  const second = command('check held.test', 'TL', 'U2');
  expect((await second.ack()).text).toContain('Checking held.test');
  expect((await command('check good.test', 'TL', 'U3').ack()).text).toContain(
    '2 checks are already running in this workspace',
  );
  const elsewhere = command('check good.test', 'TOTHER', 'U3');
  expect((await elsewhere.ack()).text).toContain('Checking good.test');
  expect(JSON.stringify(await elsewhere.report())).toContain('good.test');

  // Both held checks report once their policy host answers; their tickets are given back.
  releaseHeld();
  expect(JSON.stringify(await first.report())).toContain('held.test');
  expect(JSON.stringify(await second.report())).toContain('held.test');
  const third = command('check good.test', 'TL', 'U3');
  expect((await third.ack()).text).toContain('Checking good.test');
  await third.report();

  // Three started in the last minute: the fourth is refused with the seconds to wait.
  const refused = (await command('check good.test', 'TL', 'U4').ack()).text ?? '';
  expect(refused).toMatch(/started 3 checks in the last minute, the most allowed; try again in \d+ s\./);
  const seconds = Number(/try again in (\d+) s/.exec(refused)?.[1]);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(60);
});

test('the Re-check button, the setup form and a watch are rationed the same way', async () => {
  // TL has used its three checks of the minute (above).
  const recheckId = `l${++n}`;
  const click = await interaction({
    type: 'block_actions',
    team: { id: 'TL', domain: 'test' },
    user: { id: 'U5', team_id: 'TL' },
    channel: { id: 'CL', name: 'x' },
    container: { type: 'message', message_ts: '1.2', channel_id: 'CL' },
    response_url: slack.responseUrl(recheckId),
    trigger_id: '1.2.3',
    actions: [
      {
        type: 'button',
        action_id: 'mtasts_recheck',
        block_id: 'mtasts_report_actions',
        value: JSON.stringify({ d: 'good.test', t: 'TL', c: 'CL' }),
        action_ts: '1',
      },
    ],
  });
  expect(click.status).toBe(200);
  await slack.waitFor(() => slack.responses.some((r) => r.id === recheckId));
  const told = slack.responses.find((r) => r.id === recheckId)?.body;
  expect(told).toMatchObject({ response_type: 'ephemeral', replace_original: false });
  expect(String(told?.text)).toContain('checks in the last minute');

  const form = await interaction({
    type: 'view_submission',
    team: { id: 'TL', domain: 'test' },
    user: { id: 'U5', team_id: 'TL' },
    view: {
      id: 'V1',
      type: 'modal',
      callback_id: 'mtasts_setup',
      private_metadata: JSON.stringify({ d: 'good.test', t: 'TL', c: 'CL' }),
      state: {
        values: {
          mode: { mtasts_setup_input: { type: 'static_select', selected_option: { value: 'testing' } } },
          max_age: { mtasts_setup_input: { type: 'plain_text_input', value: '86400' } },
          mx: { mtasts_setup_input: { type: 'plain_text_input', value: 'mx1.good.test' } },
          rua: { mtasts_setup_input: { type: 'plain_text_input', value: '' } },
        },
      },
    },
  });
  expect(form.json()).toMatchObject({
    response_action: 'errors',
    errors: { mode: expect.stringContaining('checks in the last minute') },
  });

  // A watch is kept; only its first report waits for the monitor.
  const watch = command('watch good.test', 'TL', 'U5');
  expect((await watch.ack()).response_type).toBe('in_channel');
  expect(await runtime.subscriptions.get('TL', 'CL', 'good.test')).toBeDefined();
  expect(String((await watch.report()).text)).toContain('The first report of good.test was not run now');

  // App Home's Re-check: the tab is published again, saying why nothing was checked.
  const before = slack.callsTo('views.publish').length;
  const menu = await interaction({
    type: 'block_actions',
    team: { id: 'TL', domain: 'test' },
    user: { id: 'U5', team_id: 'TL' },
    container: { type: 'view', view_id: 'VH' },
    trigger_id: '1.2.3',
    actions: [
      {
        type: 'overflow',
        action_id: 'mtasts_home_menu',
        block_id: 'b1',
        selected_option: { value: JSON.stringify({ a: 'recheck', d: 'good.test', t: 'TL' }) },
        action_ts: '1',
      },
    ],
  });
  expect(menu.status).toBe(200);
  await slack.waitFor(() => slack.callsTo('views.publish').length === before + 1);
  expect(String(slack.callsTo('views.publish').at(-1)?.body.view)).toContain('checks in the last minute');
});
