import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, slashCommand } from '../support/fake-slack.js';
import { FakeSocketMode } from '../support/fake-socket-mode.js';
import { drip, type RawConnection } from '../support/raw-http.js';

let slack: FakeSlack;
let socket: FakeSocketMode;
let runtime: Runtime;
let app: SlackApp;
let port = 0;

beforeAll(async () => {
  [slack, socket] = await Promise.all([FakeSlack.start(), FakeSocketMode.start()]);
  slack.handlers.set('apps.connections.open', () => ({ json: { ok: true, url: socket.url } }));
  runtime = openRuntime(
    testConfig({
      SLACK_APP_TOKEN: 'xapp-1-A1-test',
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-socket-')), 'socket.sqlite'),
      MTASTS_DNS_SERVERS: '127.0.0.1:9',
      MTASTS_HTTP_HEADERS_TIMEOUT_MS: '2000',
      MTASTS_HTTP_REQUEST_TIMEOUT_MS: '3000',
      MTASTS_HTTP_MAX_CONNECTIONS: '100',
      MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '30',
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
  );
  app = buildSlackApp(runtime);
  port = await app.start();
});
afterAll(async () => {
  await app.stop();
  runtime.close();
  await Promise.all([slack.stop(), socket.stop()]);
});

const healthz = async () => fetch(`http://127.0.0.1:${port}/healthz`);
const openConnections = () =>
  new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

let n = 0;
/** A slash command delivered over the WebSocket; resolves with the app's ack of it. */
async function command(text: string) {
  const id = `env-${++n}`;
  socket.sendText({
    envelope_id: id,
    type: 'slash_commands',
    accepts_response_payload: true,
    payload: slashCommand(text, { team: 'TSOCK', channel: 'CSOCK', responseUrl: slack.responseUrl(id) }),
  });
  return socket.ackOf(id);
}

test('Socket Mode: the app connects over the WebSocket, and its own listener serves /healthz (not /slack/events)', async () => {
  expect(socket.connected).toBe(true);
  expect(await (await healthz()).json()).toEqual({ ok: true, mode: 'socket' });
  const ack = await command('list');
  expect(JSON.stringify(ack.payload)).toContain('watches no domains');
  expect((await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST', body: '{}' })).status).toBe(
    404,
  );
});

test('Socket Mode: the listener has the same limits: slow headers are capped per address and cut at the timeout', async () => {
  const head = 'GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ';
  const attack: RawConnection[] = Array.from({ length: 50 }, () =>
    drip(port, '127.0.0.6', head, { drip: 'x', everyMs: 200, total: 10_000 }),
  );
  for (let i = 0; (await openConnections()) < 30 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  expect((await healthz()).status).toBe(200);
  expect(JSON.stringify((await command('list')).payload)).toContain('watches no domains');
  expect(await openConnections()).toBeGreaterThanOrEqual(30);
  const endings = await Promise.all(attack.map((c) => c.ended));
  for (const e of endings) {
    expect(e.sent).toBeLessThan(10_000);
    expect([408, null]).toContain(e.status);
  }
  expect(endings.filter((e) => e.status === null).length).toBeGreaterThanOrEqual(20);
  expect(endings.filter((e) => e.status === 408).length).toBeGreaterThanOrEqual(1);
});

test('Socket Mode: envelopes with a null or malformed payload are logged and acknowledged, never thrown', async () => {
  socket.sendText({ envelope_id: 'bad-1', type: 'events_api', payload: null });
  socket.sendText({ envelope_id: 'bad-2', type: 'events_api', payload: { event: null } });
  socket.sendText({ envelope_id: 'bad-3', type: 'slash_commands', payload: null });
  socket.sendText({
    envelope_id: 'bad-4',
    type: 'interactive',
    payload: { type: 'view_submission', view: null },
  });
  socket.sendText('not json');
  await socket.ackOf('bad-3');
  await socket.ackOf('bad-4');
  // The connection and the app still serve.
  expect(JSON.stringify((await command('list')).payload)).toContain('watches no domains');
  expect((await healthz()).status).toBe(200);
});
