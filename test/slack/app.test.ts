import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { BOT_SCOPES } from '../../src/slack/app.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { barrier, Lab } from '../support/lab.js';
import { type SlackRig, startSlackRig } from '../support/slack-rig.js';

const SECRET = 'test-signing-secret';
let lab: Lab;
let slack: FakeSlack;
const dir = mkdtempSync(join(tmpdir(), 'mtasts-slack-'));
const dbPath = join(dir, 'nested', 'mtasts.sqlite');
let holdPolicy: (() => Promise<void>) | null = null;

function startApp(maxDomainsPerTeam = 100): Promise<SlackRig> {
  return startSlackRig(lab, slack, {
    secret: SECRET,
    databasePath: dbPath,
    env: { MTASTS_MAX_DOMAINS_PER_TEAM: String(maxDomainsPerTeam) },
  });
}

let running: SlackRig;
let responses = 0;
const nextResponseUrl = () => slack.responseUrl(`r${++responses}`);
const command = (text: string, where: { team?: string; channel?: string; user?: string } = {}) => {
  const responseUrl = nextResponseUrl();
  const id = responseUrl.split('/').pop() ?? '';
  const sent = sendSigned(
    `${running.url}/slack/events`,
    SECRET,
    slashCommand(text, { ...where, responseUrl }),
  );
  return { sent, id, responses: () => slack.responses.filter((r) => r.id === id) };
};

/** Watches, then waits for the first check's report, so that no check is left running. */
async function watchAndWait(domain: string, where: { team?: string; channel?: string }): Promise<void> {
  const c = command(`watch ${domain}`, where);
  expect((await c.sent).json().response_type).toBe('in_channel');
  await slack.waitFor(() => c.responses().length === 1);
}

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  await lab.domain('good.test');
  await lab.domain('held.test', {
    policy: (_req, res) => {
      const release = holdPolicy ? holdPolicy() : Promise.resolve();
      release.then(() =>
        res
          .writeHead(200, { 'Content-Type': 'text/plain' })
          .end('version: STSv1\nmode: enforce\nmx: mx1.held.test\nmx: mx2.held.test\nmax_age: 1209600\n'),
      );
    },
  });
  await lab.domain('bad.test', { mode: 'testing' });
  lab.set('_mta-sts.bad.test', { TXT: ['v=STSv1; id=<!channel>'] });
  lab.set('_smtp._tls.bad.test', { TXT: ['v=TLSRPTv1; rua=<https://evil.test|click here>'] });
  running = await startApp();
});
afterAll(async () => {
  await running.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

describe('slash commands over HTTP, signed as Slack signs them', () => {
  test('check: the ack comes before the check finishes, then the report arrives through response_url', async () => {
    const gate = barrier(2);
    let released = false;
    holdPolicy = () => gate();
    const c = command('check held.test');
    const ack = await c.sent;
    expect(ack.status).toBe(200);
    expect(ack.json()).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringContaining('Checking held.test'),
    });
    // The policy host is still holding its answer, so no report can have been sent yet.
    expect(c.responses()).toHaveLength(0);
    released = true;
    await gate();
    await slack.waitFor(() => c.responses().length === 1);
    holdPolicy = null;
    const report = c.responses()[0]?.body as {
      response_type: string;
      blocks: { type: string; text?: { text: string } }[];
      text: string;
    };
    expect(released).toBe(true);
    expect(report.response_type).toBe('in_channel');
    expect(report.blocks[0]?.text?.text).toContain('held.test: all good');
    expect(report.text).toContain('PASS held.test');
  });

  test('a report with findings shows each finding, escaped', async () => {
    const c = command('check bad.test');
    await c.sent;
    await slack.waitFor(() => c.responses().length === 1);
    const body = JSON.stringify(c.responses()[0]?.body);
    expect(body).toContain('STS_RECORD_INVALID');
    expect(body).toContain('TLSRPT_INVALID');
    expect(body).not.toContain('<!channel>');
    expect(body).toContain('&lt;!channel&gt;');
    expect(body).not.toContain('<https://evil.test|click here>');
  });

  test('a bad domain gets a clear ephemeral message', async () => {
    for (const text of ['check', 'check foo bar', 'check 10.0.0.1', 'watch -rf', 'unwatch a..b.com']) {
      const r = await command(text).sent;
      expect(r.status).toBe(200);
      const json = r.json();
      expect(json.response_type).toBe('ephemeral');
      expect(String(json.text)).toMatch(/^:warning: /);
    }
  });

  test('help, and an unknown subcommand, show usage', async () => {
    for (const text of ['help', '', 'frobnicate example.com']) {
      const json = (await command(text).sent).json();
      expect(JSON.stringify(json)).toContain('/mtasts watch example.com');
    }
    expect(JSON.stringify((await command('frobnicate').sent).json())).toContain('Unknown subcommand');
  });

  test('forged and stale signatures are refused, and nothing is written', async () => {
    const fields = slashCommand('watch forged.test', { responseUrl: nextResponseUrl() });
    const forged = await sendSigned(`${running.url}/slack/events`, SECRET, fields, {
      signature: 'v0=deadbeef',
    });
    expect(forged.status).toBe(401);
    const wrongSecret = await sendSigned(`${running.url}/slack/events`, 'not-the-secret', fields);
    expect(wrongSecret.status).toBe(401);
    const stale = await sendSigned(`${running.url}/slack/events`, SECRET, fields, {
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    expect(stale.status).toBe(401);
    const list = (await command('list').sent).json();
    expect(JSON.stringify(list)).not.toContain('forged.test');
  });

  test('watch, list, unwatch; watching twice is not an error', async () => {
    const watched = command('watch good.test', { channel: 'CWATCH' });
    expect((await watched.sent).json()).toMatchObject({
      response_type: 'in_channel',
      text: expect.stringContaining('watch good.test'),
    });
    await slack.waitFor(() => watched.responses().length === 1);
    expect((await command('watch good.test', { channel: 'CWATCH' }).sent).json().text).toContain(
      'already watched',
    );
    const list = JSON.stringify((await command('list', { channel: 'CWATCH' }).sent).json());
    expect(list).toContain('good.test');
    expect(list).toContain('pass');
    expect((await command('unwatch good.test', { channel: 'CWATCH' }).sent).json().text).toContain(
      'stopped watching',
    );
    expect((await command('unwatch good.test', { channel: 'CWATCH' }).sent).json().text).toContain(
      'is not watched',
    );
  });

  test('two workspaces and two channels stay apart', async () => {
    await watchAndWait('good.test', { team: 'TA', channel: 'C1' });
    await watchAndWait('bad.test', { team: 'TA', channel: 'C2' });
    await watchAndWait('held.test', { team: 'TB', channel: 'C1' });
    const listA1 = JSON.stringify((await command('list', { team: 'TA', channel: 'C1' }).sent).json());
    expect(listA1).toContain('good.test');
    expect(listA1).not.toContain('bad.test');
    expect(listA1).not.toContain('held.test');
    const listB1 = JSON.stringify((await command('list', { team: 'TB', channel: 'C1' }).sent).json());
    expect(listB1).toContain('held.test');
    expect(listB1).not.toContain('good.test');
    // Unwatching from another workspace's channel of the same id touches nothing.
    expect((await command('unwatch good.test', { team: 'TB', channel: 'C1' }).sent).json().text).toContain(
      'is not watched',
    );
    expect(JSON.stringify((await command('list', { team: 'TA', channel: 'C1' }).sent).json())).toContain(
      'good.test',
    );
  });

  test('the per-workspace cap', async () => {
    const small = await startApp(2);
    try {
      const send = (text: string) =>
        sendSigned(
          `${small.url}/slack/events`,
          SECRET,
          slashCommand(text, { team: 'TCAP', responseUrl: nextResponseUrl() }),
        );
      const before = slack.responses.length;
      expect((await send('watch a1.test')).json().response_type).toBe('in_channel');
      expect((await send('watch a2.test')).json().response_type).toBe('in_channel');
      expect((await send('watch a3.test')).json().text).toContain('limit');
      await slack.waitFor(() => slack.responses.length === before + 2);
    } finally {
      await small.close();
    }
  });

  test('subscriptions survive a restart on the same database file', async () => {
    await watchAndWait('good.test', { team: 'TR', channel: 'CR' });
    await running.close();
    running = await startApp();
    const list = JSON.stringify((await command('list', { team: 'TR', channel: 'CR' }).sent).json());
    expect(list).toContain('good.test');
  });

  test('records answers with copy-ready blocks, and bad flags name the flag', async () => {
    const c = command('records good.test --mode enforce');
    expect((await c.sent).json().text).toContain('Preparing records');
    await slack.waitFor(() => c.responses().length === 1);
    const body = JSON.stringify(c.responses()[0]?.body);
    expect(body).toContain('v=STSv1; id=');
    expect(body).toContain('server_name mta-sts.good.test;');
    const bad = (await command('records good.test --mode strict').sent).json();
    expect(bad.text).toContain('--mode must be testing, enforce or none');
  });

  test("app_home_opened publishes the domains of the user's channels, within the view limits", async () => {
    await watchAndWait('bad.test', { team: 'TH', channel: 'CH1' });
    await watchAndWait('good.test', { team: 'TH', channel: 'CH2' });
    await watchAndWait('held.test', { team: 'TH', channel: 'CH3' });
    // The user is in CH1 and CH2, not in CH3.
    slack.handlers.set('users.conversations', (call) => ({
      json: {
        ok: true,
        channels: call.body.user === 'UH' ? [{ id: 'CH1' }, { id: 'CH2' }] : [],
        response_metadata: { next_cursor: '' },
      },
    }));
    const event = {
      token: 'legacy',
      team_id: 'TH',
      api_app_id: 'A1',
      type: 'event_callback',
      event_id: 'Ev1',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'app_home_opened', user: 'UH', channel: 'DH', tab: 'home', event_ts: '1.2' },
      authorizations: [{ team_id: 'TH', user_id: 'UBOT', is_bot: true }],
    };
    const res = await sendSigned(
      `${running.url}/slack/events`,
      SECRET,
      {},
      {
        rawBody: JSON.stringify(event),
        contentType: 'application/json',
      },
    );
    expect(res.status).toBe(200);
    await slack.waitFor(() => slack.callsTo('views.publish').length === 1);
    const call = slack.callsTo('views.publish')[0];
    expect(call?.body.user_id).toBe('UH');
    const view = JSON.parse(String(call?.body.view)) as { type: string; blocks: unknown[] };
    expect(view.type).toBe('home');
    expect(view.blocks.length).toBeLessThanOrEqual(100);
    const text = JSON.stringify(view);
    expect(text.indexOf('Failing')).toBeLessThan(text.indexOf('Healthy'));
    expect(text).toContain('<#CH1>');
    expect(text).toContain('mode enforce');
    expect(text).toContain('next certificate expiry');
    expect(text).not.toContain('held.test'); // watched only by a channel the user is not in
    slack.handlers.delete('users.conversations');
  });

  test("mute and unmute this channel's alerts", async () => {
    await watchAndWait('good.test', { team: 'TM', channel: 'CM' });
    const muted = (await command('mute good.test 2h', { team: 'TM', channel: 'CM' }).sent).json();
    expect(muted).toMatchObject({
      response_type: 'in_channel',
      text: expect.stringContaining('muted alerts about good.test'),
    });
    expect(JSON.stringify((await command('list', { team: 'TM', channel: 'CM' }).sent).json())).toContain(
      'muted until',
    );
    expect(
      (await command('mute good.test forever', { team: 'TM', channel: 'CM' }).sent).json().text,
    ).toContain('duration');
    expect((await command('mute good.test 31d', { team: 'TM', channel: 'CM' }).sent).json().text).toContain(
      'at most 30d',
    );
    expect((await command('mute other.test', { team: 'TM', channel: 'CM' }).sent).json().text).toContain(
      'is not watched',
    );
    expect((await command('unmute good.test', { team: 'TM', channel: 'CM' }).sent).json().text).toContain(
      'unmuted',
    );
    expect(JSON.stringify((await command('list', { team: 'TM', channel: 'CM' }).sent).json())).not.toContain(
      'muted until',
    );
  });

  test('GET /healthz', async () => {
    const res = await fetch(`${running.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, mode: 'http' });
  });
});

describe('manifest.yml', () => {
  const manifest = parseYaml(readFileSync(new URL('../../manifest.yml', import.meta.url), 'utf8')) as {
    display_information: { name: string };
    features: {
      slash_commands: { command: string; usage_hint: string; description: string }[];
      bot_user: { display_name: string };
    };
    oauth_config: { scopes: { bot: string[] } };
    settings: {
      socket_mode_enabled: boolean;
      interactivity: { is_enabled: boolean };
      event_subscriptions: { bot_events: string[] };
    };
  };
  test('names the command the code registers and only the scopes it uses', () => {
    expect(manifest.display_information.name).toBe('mtasts-bot');
    expect(manifest.features.slash_commands.map((c) => c.command)).toEqual(['/mtasts']);
    const source = readFileSync(new URL('../../src/slack/app.ts', import.meta.url), 'utf8');
    expect(source).toContain("app.command('/mtasts'");
    expect(manifest.features.slash_commands[0]?.usage_hint).toContain('check');
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...BOT_SCOPES].sort());
    expect(manifest.settings.event_subscriptions.bot_events).toEqual(
      expect.arrayContaining(['app_home_opened', 'app_uninstalled', 'tokens_revoked']),
    );
    expect(manifest.settings.socket_mode_enabled).toBe(true);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.event_subscriptions.bot_events).toContain('app_home_opened');
  });
});

describe('buttons, the setup form and their scoping', () => {
  const click = (
    action: { action_id: string; value: string; block_id?: string },
    where: { team: string; channel: string; user?: string },
    message?: unknown,
  ) => {
    const responseUrl = nextResponseUrl();
    const id = responseUrl.split('/').pop() ?? '';
    const payload = {
      type: 'block_actions',
      api_app_id: 'A1',
      token: 'legacy',
      team: { id: where.team, domain: 'test' },
      user: { id: where.user ?? 'U1', team_id: where.team },
      channel: { id: where.channel, name: 'mail-ops' },
      container: {
        type: 'message',
        message_ts: '1700000000.000100',
        channel_id: where.channel,
        is_ephemeral: false,
      },
      message: message ?? {
        ts: '1700000000.000100',
        blocks: [{ type: 'header', text: { type: 'plain_text', text: 'old verdict' } }],
      },
      response_url: responseUrl,
      trigger_id: '123.456.abc',
      actions: [
        { type: 'button', block_id: action.block_id ?? 'mtasts_report_actions', action_ts: '1', ...action },
      ],
    };
    const sent = sendSigned(`${running.url}/slack/events`, SECRET, { payload: JSON.stringify(payload) });
    return { sent, responses: () => slack.responses.filter((r) => r.id === id) };
  };
  const value = (domain: string, team: string, channel: string) =>
    JSON.stringify({ d: domain, t: team, c: channel });

  test('a check report carries Re-check, Watch and Show records, scoped to where it was posted', async () => {
    const c = command('check good.test', { team: 'TB1', channel: 'CB1' });
    await c.sent;
    await slack.waitFor(() => c.responses().length === 1);
    const blocks = c.responses()[0]?.body.blocks as {
      type: string;
      elements?: { action_id: string; value: string }[];
    }[];
    const actions = blocks.find((b) => b.type === 'actions');
    expect(actions?.elements?.map((e) => e.action_id)).toEqual([
      'mtasts_recheck',
      'mtasts_watch',
      'mtasts_records',
    ]);
    expect(JSON.parse(actions?.elements?.[0]?.value ?? '{}')).toEqual({ d: 'good.test', t: 'TB1', c: 'CB1' });
  });

  test('Re-check replaces the report and keeps the old verdict in the thread', async () => {
    const before = slack.callsTo('chat.postMessage').length;
    const c = click(
      { action_id: 'mtasts_recheck', value: value('good.test', 'TB1', 'CB1') },
      { team: 'TB1', channel: 'CB1' },
    );
    expect((await c.sent).status).toBe(200);
    await slack.waitFor(() => c.responses().length === 1);
    expect(c.responses()[0]?.body).toMatchObject({ replace_original: true });
    expect(JSON.stringify(c.responses()[0]?.body)).toContain('good.test: all good');
    await slack.waitFor(() => slack.callsTo('chat.postMessage').length === before + 1);
    const thread = slack.callsTo('chat.postMessage').at(-1);
    expect(thread?.body).toMatchObject({
      channel: 'CB1',
      thread_ts: '1700000000.000100',
      text: 'Before the re-check: old verdict',
    });
  });

  test('Watch and Unwatch act on the channel the button was clicked in', async () => {
    const w = click(
      { action_id: 'mtasts_watch', value: value('good.test', 'TB1', 'CB1') },
      { team: 'TB1', channel: 'CB1' },
    );
    await w.sent;
    await slack.waitFor(() => w.responses().length === 2);
    expect(await running.runtime.subscriptions.get('TB1', 'CB1', 'good.test')).toBeDefined();
    const u = click(
      { action_id: 'mtasts_unwatch', value: value('good.test', 'TB1', 'CB1') },
      { team: 'TB1', channel: 'CB1' },
    );
    await u.sent;
    await slack.waitFor(() => u.responses().length === 2);
    expect(await running.runtime.subscriptions.get('TB1', 'CB1', 'good.test')).toBeUndefined();
  });

  test('the Watch button in a channel the bot is not in says how to invite it and sets nothing up', async () => {
    slack.notMemberOf.add('CNOT');
    try {
      const w = click(
        { action_id: 'mtasts_watch', value: value('good.test', 'TB1', 'CNOT') },
        { team: 'TB1', channel: 'CNOT' },
      );
      await w.sent;
      await slack.waitFor(() => w.responses().length === 1);
      expect(w.responses()[0]?.body.text).toContain('I am not a member of this channel');
      expect(w.responses()[0]?.body.text).toContain('`/invite @mtasts`');
      expect(await running.runtime.subscriptions.get('TB1', 'CNOT', 'good.test')).toBeUndefined();
    } finally {
      slack.notMemberOf.delete('CNOT');
    }
  });

  test("a crafted button naming another workspace's domain is refused, and nothing changes", async () => {
    await watchAndWait('good.test', { team: 'TVICTIM', channel: 'CV' });
    for (const action_id of ['mtasts_unwatch', 'mtasts_mute', 'mtasts_recheck']) {
      const c = click(
        { action_id, value: value('good.test', 'TVICTIM', 'CV') },
        { team: 'TATTACK', channel: 'CV' },
      );
      await c.sent;
      await slack.waitFor(() => c.responses().length === 1);
      expect(c.responses()[0]?.body.text).toContain('belongs to another workspace or channel');
    }
    const sub = await running.runtime.subscriptions.get('TVICTIM', 'CV', 'good.test');
    expect(sub).toMatchObject({ mutedUntil: null, pausedAt: null });
    // Nor does a button from another channel of the same workspace act here.
    const other = click(
      { action_id: 'mtasts_unwatch', value: value('good.test', 'TVICTIM', 'CV') },
      { team: 'TVICTIM', channel: 'COTHER' },
    );
    await other.sent;
    await slack.waitFor(() => other.responses().length === 1);
    expect(await running.runtime.subscriptions.get('TVICTIM', 'CV', 'good.test')).toBeDefined();
  });

  test('an alert button mutes the channel for 24 hours', async () => {
    await watchAndWait('bad.test', { team: 'TAL', channel: 'CAL' });
    const clicked = Date.now();
    const c = click(
      { action_id: 'mtasts_mute', value: value('bad.test', 'TAL', 'CAL'), block_id: 'mtasts_alert_actions' },
      { team: 'TAL', channel: 'CAL' },
    );
    await c.sent;
    await slack.waitFor(() => c.responses().length === 1);
    const answered = Date.now();
    expect(c.responses()[0]?.body.text).toContain('muted alerts about bad.test here until');
    // Muted until 24 hours after the click was handled, which was between sending it and the answer.
    const sub = await running.runtime.subscriptions.get('TAL', 'CAL', 'bad.test');
    expect(sub).toMatchObject({ pausedAt: null, mutedUntil: expect.any(String) });
    const until = Date.parse(sub?.mutedUntil ?? '');
    expect(until).toBeGreaterThanOrEqual(clicked + 24 * 3600_000);
    expect(until).toBeLessThanOrEqual(answered + 24 * 3600_000);
  });

  test('Show records on a domain without a policy opens the setup form, pre-filled from DNS', async () => {
    lab.set('nopolicy.test', {
      MX: [
        { preference: 10, exchange: 'mx1.nopolicy.test' },
        { preference: 20, exchange: 'mx2.nopolicy.test' },
      ],
    });
    const before = slack.callsTo('views.open').length;
    const c = click(
      { action_id: 'mtasts_records', value: value('nopolicy.test', 'TS', 'CS') },
      { team: 'TS', channel: 'CS' },
    );
    await c.sent;
    await slack.waitFor(() => slack.callsTo('views.open').length === before + 1);
    const call = slack.callsTo('views.open').at(-1);
    expect(call?.body.trigger_id).toBe('123.456.abc');
    const view = JSON.parse(String(call?.body.view)) as {
      callback_id: string;
      private_metadata: string;
      blocks: { block_id?: string; element?: { initial_value?: string } }[];
    };
    expect(view.callback_id).toBe('mtasts_setup');
    expect(JSON.parse(view.private_metadata)).toEqual({ d: 'nopolicy.test', t: 'TS', c: 'CS' });
    expect(view.blocks.find((b) => b.block_id === 'mx')?.element?.initial_value).toBe(
      'mx1.nopolicy.test\nmx2.nopolicy.test',
    );
  });

  test('/mtasts setup opens the form too', async () => {
    const before = slack.callsTo('views.open').length;
    await command('setup good.test', { team: 'TS', channel: 'CS' }).sent;
    await slack.waitFor(() => slack.callsTo('views.open').length === before + 1);
    const view = JSON.parse(String(slack.callsTo('views.open').at(-1)?.body.view)) as {
      blocks: { block_id?: string; element?: { initial_value?: string } }[];
    };
    expect(view.blocks.find((b) => b.block_id === 'max_age')?.element?.initial_value).toBe('1209600');
  });

  const submit = async (values: { mode: string; max_age: string; mx: string; rua: string }, team = 'TS') => {
    const payload = {
      type: 'view_submission',
      team: { id: team, domain: 'test' },
      user: { id: 'U9', team_id: team },
      api_app_id: 'A1',
      token: 'legacy',
      trigger_id: '1.2.3',
      view: {
        id: 'V1',
        type: 'modal',
        callback_id: 'mtasts_setup',
        private_metadata: value('good.test', 'TS', 'CS'),
        state: {
          values: {
            mode: { mtasts_setup_input: { type: 'static_select', selected_option: { value: values.mode } } },
            max_age: { mtasts_setup_input: { type: 'plain_text_input', value: values.max_age } },
            mx: { mtasts_setup_input: { type: 'plain_text_input', value: values.mx } },
            rua: { mtasts_setup_input: { type: 'plain_text_input', value: values.rua } },
          },
        },
      },
    };
    return sendSigned(`${running.url}/slack/events`, SECRET, { payload: JSON.stringify(payload) });
  };

  test("the form is checked as the user types: the field's hint becomes its error, typed values kept", async () => {
    const typed = async (max_age: string) => {
      const payload = {
        type: 'block_actions',
        team: { id: 'TS', domain: 'test' },
        user: { id: 'U9', team_id: 'TS' },
        api_app_id: 'A1',
        token: 'legacy',
        trigger_id: '1.2.3',
        container: { type: 'view', view_id: 'V7' },
        view: {
          id: 'V7',
          hash: `h-${max_age}`,
          type: 'modal',
          callback_id: 'mtasts_setup',
          private_metadata: value('good.test', 'TS', 'CS'),
          state: {
            values: {
              mode: { mtasts_setup_input: { type: 'static_select', selected_option: { value: 'enforce' } } },
              max_age: { mtasts_setup_input: { type: 'plain_text_input', value: max_age } },
              mx: { mtasts_setup_input: { type: 'plain_text_input', value: 'mx1.good.test' } },
              rua: { mtasts_setup_input: { type: 'plain_text_input', value: '' } },
            },
          },
        },
        actions: [
          {
            type: 'plain_text_input',
            block_id: 'max_age',
            action_id: 'mtasts_setup_input',
            value: max_age,
            action_ts: '1',
          },
        ],
      };
      const before = slack.callsTo('views.update').length;
      expect(
        (await sendSigned(`${running.url}/slack/events`, SECRET, { payload: JSON.stringify(payload) }))
          .status,
      ).toBe(200);
      await slack.waitFor(() => slack.callsTo('views.update').length === before + 1);
      const call = slack.callsTo('views.update').at(-1);
      expect(call?.body).toMatchObject({ view_id: 'V7', hash: `h-${max_age}` });
      return JSON.parse(String(call?.body.view)) as {
        blocks: { block_id?: string; hint?: { text: string }; element?: { initial_value?: string } }[];
      };
    };
    const bad = await typed('12x');
    const maxAge = bad.blocks.find((b) => b.block_id === 'max_age');
    expect(maxAge?.hint?.text).toMatch(/^:warning: Seconds, from 1 to 31557600/);
    expect(maxAge?.element?.initial_value).toBe('12x');
    expect(bad.blocks.find((b) => b.block_id === 'mx')?.hint?.text).toContain('One per line');
    const good = await typed('1209600');
    expect(good.blocks.find((b) => b.block_id === 'max_age')?.hint?.text).toContain('604800 (a week)');
  });

  test('the form shows errors under their fields', async () => {
    const res = await submit({
      mode: 'enforce',
      max_age: 'a week',
      mx: 'mx1.good.test\nmx2.good.test:25',
      rua: 'http://x.test/r',
    });
    expect(res.status).toBe(200);
    const body = res.json() as { response_action: string; errors: Record<string, string> };
    expect(body.response_action).toBe('errors');
    expect(Object.keys(body.errors).sort()).toEqual(['max_age', 'mx', 'rua']);
    expect(body.errors.mx).toContain('mx2.good.test:25');
  });

  test('a valid form posts the records to the user, only to them', async () => {
    const before = slack.callsTo('chat.postEphemeral').length;
    const res = await submit({
      mode: 'enforce',
      max_age: '1209600',
      mx: 'mx1.good.test\nmx2.good.test',
      rua: 'mailto:tls@good.test',
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    await slack.waitFor(() => slack.callsTo('chat.postEphemeral').length === before + 1);
    const call = slack.callsTo('chat.postEphemeral').at(-1);
    expect(call?.body).toMatchObject({ channel: 'CS', user: 'U9' });
    expect(JSON.stringify(call?.body)).toContain('v=TLSRPTv1; rua=mailto:tls@good.test');
  });

  test('a form submitted in another workspace than its own is refused', async () => {
    const res = await submit({ mode: 'testing', max_age: '86400', mx: 'mx1.good.test', rua: '' }, 'TOTHER');
    expect(res.json()).toMatchObject({ response_action: 'errors' });
  });
});
