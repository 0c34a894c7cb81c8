import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startApp as start } from '../support/app-process.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';

/** npm start's own process (dist/main.js, built by `npm test`), attacked over loopback. */
let slack: FakeSlack;
beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterAll(() => slack.stop());

test('npm start survives signed null bodies and answers afterwards; it still stops cleanly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-main-hostile-'));
  const app = start({
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'secret',
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    DATABASE_PATH: join(dir, 'bot.sqlite'),
  });
  try {
    let port = 0;
    for (let i = 0; i < 200 && port === 0; i++) {
      port = Number(/HTTP on port (\d+)/.exec(app.output())?.[1] ?? 0);
      if (port === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(port, app.output()).toBeGreaterThan(0);
    const url = `http://127.0.0.1:${port}/slack/events`;
    const json = await sendSigned(url, 'secret', {}, { rawBody: 'null', contentType: 'application/json' });
    expect(json.status).toBe(400);
    const formNull = await sendSigned(url, 'secret', {}, { rawBody: 'payload=null' });
    expect(formNull.status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const list = await sendSigned(
      url,
      'secret',
      slashCommand('list', { responseUrl: slack.responseUrl('mh') }),
    );
    expect(list.json().text).toContain('watches no domains');
  } finally {
    app.child.kill('SIGTERM');
  }
  expect(await app.exited).toBe(0);
  expect(app.output()).not.toMatch(/uncaught exception|unhandled rejection/);
});

test('a headers timeout longer than the request timeout stops start-up with one line naming it', async () => {
  const app = start({
    SLACK_BOT_TOKEN: 'xoxb-1',
    SLACK_SIGNING_SECRET: 's',
    MTASTS_HTTP_HEADERS_TIMEOUT_MS: '60000',
    MTASTS_HTTP_REQUEST_TIMEOUT_MS: '30000',
  });
  expect(await app.exited).toBe(2);
  expect(app.output().trim().split('\n')).toEqual([
    expect.stringContaining(
      'MTASTS_HTTP_HEADERS_TIMEOUT_MS (60000) must not exceed MTASTS_HTTP_REQUEST_TIMEOUT_MS',
    ),
  ]);
});
