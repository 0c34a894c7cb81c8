import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';

const SECRET = 'oauth-signing-secret';
const TOKEN = 'xoxb-t2-very-secret-token';
let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let url = '';
const logs: string[] = [];

beforeAll(async () => {
  slack = await FakeSlack.start();
  slack.handlers.set('oauth.v2.access', (call) => {
    if (call.body.code !== 'good-code' || call.body.client_id !== 'cid.123')
      return { json: { ok: false, error: 'invalid_code' } };
    return {
      json: {
        ok: true,
        app_id: 'A1',
        authed_user: { id: 'U2' },
        scope: 'commands,chat:write,channels:read,groups:read,users:read',
        token_type: 'bot',
        access_token: TOKEN,
        bot_user_id: 'UBOT2',
        team: { id: 'T2', name: 'Second Workspace' },
        enterprise: null,
        is_enterprise_install: false,
      },
    };
  });
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-oauth-'));
  runtime = await openRuntime(
    testConfig({
      SLACK_BOT_TOKEN: '',
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_CLIENT_ID: 'cid.123',
      SLACK_CLIENT_SECRET: 'client-secret',
      SLACK_STATE_SECRET: 'a-long-random-state-secret',
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(dir, 'oauth.sqlite'),
      MTASTS_DNS_SERVERS: '127.0.0.1:9',
    }),
    null,
    { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
  );
  app = buildSlackApp(runtime);
  url = `http://127.0.0.1:${await app.start()}`;
});
afterAll(async () => {
  await app.stop();
  await runtime.close();
  await slack.stop();
});

test('the OAuth flow stores the installation, and the workspace can then use the app', async () => {
  const install = await fetch(`${url}/slack/install`, { redirect: 'manual' });
  expect(install.status).toBe(302);
  const location = new URL(install.headers.get('location') ?? '');
  expect(location.pathname).toBe('/oauth/v2/authorize');
  expect(location.searchParams.get('scope')?.split(',').sort()).toEqual([
    'channels:read',
    'chat:write',
    'commands',
    'groups:read',
    'users:read',
  ]);
  const state = location.searchParams.get('state') ?? '';
  const cookie = (install.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  expect(state).not.toBe('');

  // A callback without the installer's cookie is refused (state verification), and stores nothing.
  const forged = await fetch(
    `${url}/slack/oauth_redirect?code=good-code&state=${encodeURIComponent(state)}`,
    { redirect: 'manual' },
  );
  expect(forged.status).toBeGreaterThanOrEqual(400);
  expect(await runtime.installations.has('T2')).toBe(false);

  const callback = await fetch(
    `${url}/slack/oauth_redirect?code=good-code&state=${encodeURIComponent(state)}`,
    {
      redirect: 'manual',
      headers: { cookie },
    },
  );
  expect(callback.status).toBeLessThan(400);
  expect(slack.callsTo('oauth.v2.access')).toHaveLength(1);
  expect(await runtime.installations.botToken('T2')).toBe(TOKEN);

  // The installed workspace's commands are authorized with its own installation.
  const watch = await sendSigned(
    `${url}/slack/events`,
    SECRET,
    slashCommand('watch example.com', { team: 'T2', channel: 'C2', responseUrl: slack.responseUrl('o1') }),
  );
  expect(watch.status).toBe(200);
  expect(await runtime.subscriptions.get('T2', 'C2', 'example.com')).toBeDefined();
});

test('a workspace that did not install the app is not served', async () => {
  const res = await sendSigned(
    `${url}/slack/events`,
    SECRET,
    slashCommand('watch example.org', { team: 'T9', channel: 'C9', responseUrl: slack.responseUrl('o2') }),
  );
  // Bolt finds no installation to authorize with: the command is not run.
  expect(res.body).not.toContain('watch example.org');
  expect(await runtime.subscriptions.get('T9', 'C9', 'example.org')).toBeUndefined();
});

test('app_uninstalled removes the token and pauses the workspace, without logging the token', async () => {
  const event = {
    token: 'legacy',
    team_id: 'T2',
    api_app_id: 'A1',
    type: 'event_callback',
    event_id: 'EvU',
    event_time: Math.floor(Date.now() / 1000),
    event: { type: 'app_uninstalled', event_ts: '1.2' },
    authorizations: [{ team_id: 'T2', user_id: 'UBOT2', is_bot: true }],
  };
  const res = await sendSigned(
    `${url}/slack/events`,
    SECRET,
    {},
    { rawBody: JSON.stringify(event), contentType: 'application/json' },
  );
  expect(res.status).toBe(200);
  await slack.waitFor(async () => !(await runtime.installations.has('T2')));
  await slack.waitFor(
    async () => (await runtime.subscriptions.get('T2', 'C2', 'example.com'))?.pausedAt !== null,
  );
  expect((await runtime.subscriptions.get('T2', 'C2', 'example.com'))?.pausedReason).toBe(
    'uninstalled: uninstalled',
  );
  expect(logs.join('\n')).not.toContain(TOKEN);
  // Installing again resumes what the uninstall paused.
  await runtime.installations.storeInstallation({
    team: { id: 'T2' },
    enterprise: undefined,
    user: { id: 'U2', token: undefined, scopes: undefined },
    bot: { token: TOKEN, userId: 'UBOT2', id: 'B2', scopes: ['commands'] },
    isEnterpriseInstall: false,
  } as never);
  expect((await runtime.subscriptions.get('T2', 'C2', 'example.com'))?.pausedAt).toBeNull();
});

test('the single-workspace token keeps working when OAuth is not configured', () => {
  const config = testConfig({ DATABASE_PATH: ':memory:' });
  expect(config.oauth).toBeNull();
  expect(config.botToken).toBe('xoxb-test');
});

test('half an OAuth configuration is one line naming what is missing', () => {
  expect(() => testConfig({ SLACK_CLIENT_ID: 'x' })).toThrow(
    /^SLACK_CLIENT_SECRET is not set: multi-workspace install needs/,
  );
});
