import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startApp as start } from '../support/app-process.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';

let slack: FakeSlack;
beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterAll(() => slack.stop());

test('npm start (dist/main.js) in HTTP mode: health, a signed command, a clean stop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-main-'));
  const app = start({
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'secret',
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    DATABASE_PATH: join(dir, 'db', 'bot.sqlite'),
  });
  try {
    let port = 0;
    for (let i = 0; i < 200 && port === 0; i++) {
      port = Number(/HTTP on port (\d+)/.exec(app.output())?.[1] ?? 0);
      if (port === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(port, app.output()).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const res = await sendSigned(
      `http://127.0.0.1:${port}/slack/events`,
      'secret',
      slashCommand('list', { responseUrl: slack.responseUrl('m1') }),
    );
    expect(res.json().text).toContain('watches no domains');
  } finally {
    app.child.kill('SIGTERM');
  }
  expect(await app.exited).toBe(0);
});

test.each([
  // With no Slack setting at all the app runs without Slack (see the no-Slack tests); with one, the rest must be there.
  [{ SLACK_SIGNING_SECRET: 's' }, 'SLACK_BOT_TOKEN is not set'],
  [{ SLACK_BOT_TOKEN: 'xoxp-user-token' }, 'SLACK_BOT_TOKEN must be a bot token starting with xoxb-'],
  [{ SLACK_BOT_TOKEN: 'xoxb-1' }, 'SLACK_SIGNING_SECRET is not set'],
  [{ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xoxb-2' }, 'SLACK_APP_TOKEN must be an app-level token'],
  [{ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', PORT: 'eighty' }, 'PORT must be a whole number'],
  [
    { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_API_URL: 'slack.com' },
    'SLACK_API_URL must be an http(s) URL',
  ],
  [
    { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', MTASTS_SCHEDULE: 'hourly' },
    'MTASTS_SCHEDULE is not a cron expression',
  ],
  [{ SLACK_CLIENT_ID: 'c', SLACK_SIGNING_SECRET: 's' }, 'SLACK_CLIENT_SECRET is not set'],
])('a bad setting stops start-up with one line naming it: %j', async (env, message) => {
  const app = start(env as Record<string, string>);
  expect(await app.exited).toBe(2);
  expect(app.output()).toContain(message);
  expect(app.output().trim().split('\n')).toHaveLength(1);
});

test('three bad settings stop start-up with three lines, one naming each', async () => {
  const app = start({
    SLACK_BOT_TOKEN: 'xoxb-1',
    SLACK_SIGNING_SECRET: 's',
    PORT: 'eighty',
    MTASTS_TIMEOUT_MS: 'soon',
    MTASTS_HTTP_HEADERS_TIMEOUT_MS: '60000',
    MTASTS_HTTP_REQUEST_TIMEOUT_MS: '30000',
  });
  expect(await app.exited).toBe(2);
  expect(app.output().trim().split('\n')).toEqual([
    'mtasts-bot: PORT must be a whole number from 0 to 65535, got "eighty"',
    'MTASTS_TIMEOUT_MS must be a whole number from 100 to 120000, got "soon"',
    'MTASTS_HTTP_HEADERS_TIMEOUT_MS (60000) must not exceed MTASTS_HTTP_REQUEST_TIMEOUT_MS (30000): the headers are part of the request',
  ]);
});
