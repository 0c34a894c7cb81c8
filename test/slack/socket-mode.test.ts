import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LogSink } from '../../src/log.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createSlackApp, type SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { TestDnsServer } from '../support/dns-server.js';
import { FakeSlack, slashCommand } from '../support/fake-slack.js';
import { FakeSocketMode } from '../support/fake-socket-mode.js';
import { drip, type RawConnection } from '../support/raw-http.js';

const APP_TOKEN = 'xapp-1-A1-socketsecret';
let slack: FakeSlack;
let socket: FakeSocketMode;
let dns: TestDnsServer;
let runtime: Runtime;
let app: SlackApp;
let port = 0;
/** What the app logged (through the same sink as in production), one line per entry. */
const logged: string[] = [];
const log = () => logged.join('');

beforeAll(async () => {
  [slack, socket, dns] = await Promise.all([
    FakeSlack.start(),
    FakeSocketMode.start(),
    TestDnsServer.start(),
  ]);
  slack.handlers.set('apps.connections.open', () => ({ json: { ok: true, url: socket.url } }));
  runtime = await openRuntime(
    testConfig({
      SLACK_APP_TOKEN: APP_TOKEN,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-socket-')), 'socket.sqlite'),
      MTASTS_DNS_SERVERS: dns.address,
      MTASTS_HTTP_HEADERS_TIMEOUT_MS: '2000',
      MTASTS_HTTP_REQUEST_TIMEOUT_MS: '3000',
      MTASTS_HTTP_MAX_CONNECTIONS: '100',
      MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '30',
      MTASTS_SLACK_RECONNECT_MIN_MS: '100',
      MTASTS_SLACK_RECONNECT_MAX_MS: '1000',
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
  );
  const logs = new LogSink((line) => void logged.push(line));
  logs.configure({ secrets: [APP_TOKEN, runtime.config.botToken] });
  app = createSlackApp(
    runtime.config,
    {
      engine: runtime.engine,
      subscriptions: runtime.subscriptions,
      checks: runtime.checks,
      tlsrpt: runtime.tlsrpt,
      installations: null,
      maxDomainsPerTeam: 100,
      now: () => new Date(),
    },
    [],
    { logs },
  );
  port = await app.start();
});
afterAll(async () => {
  await app.stop();
  await runtime.close();
  await Promise.all([slack.stop(), socket.stop(), dns.stop()]);
});

const healthz = async () => fetch(`http://127.0.0.1:${port}/healthz`);
const openConnections = () =>
  new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

/** Resolves once `predicate` holds; fails after `ms` with what was logged. */
async function until(predicate: () => boolean, ms = 10000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`not in time; the app logged:\n${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let n = 0;
/** A slash command delivered over the WebSocket; resolves with the app's ack of it. */
async function command(text: string, responseId = `env-${n + 1}`) {
  const id = `env-${++n}`;
  socket.sendText({
    envelope_id: id,
    type: 'slash_commands',
    accepts_response_payload: true,
    payload: slashCommand(text, {
      team: 'TSOCK',
      channel: 'CSOCK',
      responseUrl: slack.responseUrl(responseId),
    }),
  });
  return socket.ackOf(id);
}

test('Socket Mode: the app connects over the WebSocket, and its own listener serves /healthz (not /slack/events)', async () => {
  expect(socket.connected).toBe(true);
  expect(app.socket()).toMatchObject({ connected: true, error: null, retryAt: null });
  expect(await (await healthz()).json()).toEqual({ ok: true, mode: 'socket' });
  const ack = await command('list');
  expect(JSON.stringify(ack.payload)).toContain('watches no domains');
  expect((await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST', body: '{}' })).status).toBe(
    404,
  );
});

test('Socket Mode: a slash command is acknowledged over the socket and answered through response_url', async () => {
  const ack = await command('check nowhere.test', 'sm-check');
  expect(JSON.stringify(ack.payload)).toContain('nowhere.test');
  await slack.waitFor(() => slack.responses.some((r) => r.id === 'sm-check'));
  const report = slack.responses.find((r) => r.id === 'sm-check')?.body;
  // The full report, in the channel, with its buttons: the check ran and its answer went back through response_url.
  expect(report?.response_type).toBe('in_channel');
  expect(report?.text).toMatch(/^FAIL nowhere\.test: /);
  expect(JSON.stringify(report?.blocks)).toContain('"action_id":"mtasts_recheck"');
});

test('Socket Mode: a button (interactive envelope) is acknowledged and acted on', async () => {
  socket.sendText({
    envelope_id: 'button-1',
    type: 'interactive',
    accepts_response_payload: false,
    payload: {
      type: 'block_actions',
      api_app_id: 'A1',
      team: { id: 'TSOCK', domain: 'test' },
      user: { id: 'USOCK', team_id: 'TSOCK' },
      channel: { id: 'CBUTTON', name: 'mail-ops' },
      container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'CBUTTON' },
      response_url: slack.responseUrl('sm-button'),
      trigger_id: '1.2.3',
      actions: [
        {
          type: 'button',
          action_id: 'mtasts_watch',
          block_id: 'mtasts_report_actions',
          value: JSON.stringify({ d: 'watched.test', t: 'TSOCK', c: 'CBUTTON' }),
          action_ts: '1',
        },
      ],
    },
  });
  await socket.ackOf('button-1');
  await slack.waitFor(() => slack.responses.some((r) => r.id === 'sm-button'));
  expect(slack.responses.find((r) => r.id === 'sm-button')?.body.text).toBe(
    '<@USOCK> set this channel to watch watched.test.',
  );
  expect(await runtime.subscriptions.get('TSOCK', 'CBUTTON', 'watched.test')).toBeDefined();
});

test('Socket Mode: an event (events_api envelope) is acknowledged and handled', async () => {
  socket.sendText({
    envelope_id: 'event-1',
    type: 'events_api',
    accepts_response_payload: false,
    retry_attempt: 0,
    payload: {
      type: 'event_callback',
      team_id: 'TSOCK',
      api_app_id: 'A1',
      event_id: 'Ev1',
      event_time: 1700000000,
      authorizations: [{ team_id: 'TSOCK', user_id: 'UBOT', is_bot: true }],
      event: { type: 'app_home_opened', user: 'UHOME', channel: 'DHOME', tab: 'home', event_ts: '1.1' },
    },
  });
  await socket.ackOf('event-1');
  await slack.waitFor(() => slack.callsTo('views.publish').some((c) => c.body.user_id === 'UHOME'));
});

test('Socket Mode: when Slack asks for a refresh (disconnect, refresh_requested) the app reconnects at once', async () => {
  const before = socket.connections;
  const opens = slack.callsTo('apps.connections.open').length;
  socket.askToReconnect('refresh_requested');
  await socket.waitForConnections(before + 1);
  await until(() => app.socket()?.connected === true);
  expect(socket.closedByClient).toBeGreaterThanOrEqual(1);
  expect(slack.callsTo('apps.connections.open')).toHaveLength(opens + 1);
  expect(log()).toContain('Slack socket: Slack asked to reconnect (refresh_requested)');
  expect(log()).toContain('Slack socket: reconnecting now, as Slack asked');
  expect(log()).not.toMatch(/Slack socket down \(/);
  expect(JSON.stringify((await command('list')).payload)).toContain('watches no domains');
});

test('Socket Mode: a dropped TCP connection is logged as down with its wait, and reconnected', async () => {
  const before = socket.connections;
  socket.drop();
  await socket.waitForConnections(before + 1);
  await until(() => app.socket()?.connected === true);
  expect(log()).toContain('Slack socket down (the connection dropped), retrying in 0.1 s');
  expect(log()).toContain('Slack socket connected again');
  expect(JSON.stringify((await command('list')).payload)).toContain('watches no domains');
});

test('Socket Mode: a revoked app token is retried with growing waits while the app serves; a new token connects', async () => {
  slack.handlers.set('apps.connections.open', () => ({ json: { ok: false, error: 'invalid_auth' } }));
  const opens = slack.callsTo('apps.connections.open').length;
  const refused =
    'Slack socket down (Slack refused the app-level token (invalid_auth): rotate SLACK_APP_TOKEN)';
  socket.drop();
  await until(() => log().includes(`${refused}, retrying in 0.4 s`));
  // The drop, then one attempt per wait: 0.1 s, 0.2 s, 0.4 s.
  expect(log()).toContain(`${refused}, retrying in 0.2 s`);
  expect(slack.callsTo('apps.connections.open').length - opens).toBeGreaterThanOrEqual(2);
  expect(app.socket()).toMatchObject({ connected: false, error: expect.stringContaining('invalid_auth') });
  expect((await healthz()).status).toBe(200);
  // Slack calls it with the token in its Authorization header; the log never shows it.
  expect(slack.callsTo('apps.connections.open').at(-1)?.token).toBe(APP_TOKEN);
  expect(log()).not.toContain('socketsecret');

  const before = socket.connections;
  slack.handlers.set('apps.connections.open', () => ({ json: { ok: true, url: socket.url } }));
  await socket.waitForConnections(before + 1);
  await until(() => app.socket()?.connected === true);
  expect(JSON.stringify((await command('list')).payload)).toContain('watches no domains');
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

test('Socket Mode: stop() closes the WebSocket with a close frame and does not reconnect', async () => {
  const closed = socket.closedByClient;
  const opened = socket.connections;
  await app.stop();
  expect(socket.closedByClient).toBe(closed + 1);
  await new Promise((r) => setTimeout(r, 300));
  expect(socket.connections).toBe(opened);
  expect(app.socket()).toMatchObject({ connected: false, error: 'stopped' });
});
