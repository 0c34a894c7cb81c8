import { mkdtempSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SlackApp } from '../../src/slack/app.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';
import { drip, pushBody, type RawConnection } from '../support/raw-http.js';
import { type SlackRig, startSlackRig } from '../support/slack-rig.js';

const SECRET = 'hostile-signing-secret';
const dir = mkdtempSync(join(tmpdir(), 'mtasts-hostile-'));
let lab: Lab;
let slack: FakeSlack;

/** Short limits, set through the settings a deployment would set, so that the attacks end within the test. */
const LIMITS = {
  MTASTS_HTTP_HEADERS_TIMEOUT_MS: '2000',
  MTASTS_HTTP_REQUEST_TIMEOUT_MS: '3000',
  MTASTS_HTTP_KEEPALIVE_TIMEOUT_MS: '1000',
  MTASTS_HTTP_MAX_CONNECTIONS: '400',
  MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '100',
};

function startApp(env: Record<string, string>, name: string): Promise<SlackRig> {
  return startSlackRig(lab, slack, { secret: SECRET, databasePath: join(dir, `${name}.sqlite`), env });
}

let running: SlackRig;
let responses = 0;
const nextResponseUrl = () => slack.responseUrl(`h${++responses}`);
const events = () => `${running.url}/slack/events`;
const command = (text: string, where: { team?: string; channel?: string; user?: string } = {}) =>
  sendSigned(events(), SECRET, slashCommand(text, { ...where, responseUrl: nextResponseUrl() }));
const healthz = async (url = running.url) => (await fetch(`${url}/healthz`)).status;
/** A signed body sent as is (JSON, or a form). */
const signedRaw = (rawBody: string, contentType = 'application/json') =>
  sendSigned(events(), SECRET, {}, { rawBody, contentType });
const form = (payload: unknown) => `payload=${encodeURIComponent(JSON.stringify(payload))}`;

/** Resolves once a raw connection is up (or already over). */
const connected = (c: RawConnection) =>
  new Promise((resolve) => {
    c.socket.once('connect', resolve);
    c.socket.once('close', resolve);
  });

/** Resolves when `predicate` holds, checking every 10 ms; fails after 10 s. */
async function until(predicate: () => Promise<boolean>): Promise<void> {
  for (let i = 0; !(await predicate()); i++) {
    if (i > 1000) throw new Error('until: condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The number of connections the app's listener holds now. */
const openConnections = (app: SlackApp) =>
  new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  await lab.domain('good.test');
  running = await startApp(LIMITS, 'main');
});
afterAll(async () => {
  await running.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

describe('slow and many connections', () => {
  test('slow headers from two clients: held to 100 each, cut at the headers timeout; /healthz and a command answer meanwhile', async () => {
    const head = 'GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ';
    const attack = ['127.0.0.2', '127.0.0.3'].flatMap((from) =>
      Array.from({ length: 150 }, () =>
        drip(running.port, from, head, { drip: 'x', everyMs: 200, total: 10_000 }),
      ),
    );
    await Promise.all(attack.map(connected));
    await until(async () => (await openConnections(running.app)) >= 200);
    expect(await healthz()).toBe(200);
    const list = await command('list', { team: 'TSLOW' });
    expect(list.status).toBe(200);
    expect(list.json().text).toContain('watches no domains');
    // The attack was still holding its connections when both were answered.
    expect(await openConnections(running.app)).toBeGreaterThanOrEqual(200);
    const endings = await Promise.all(attack.map((c) => c.ended));
    // Every slow connection was ended by the server (never by the client), before any request completed.
    for (const e of endings) {
      expect(e.sent).toBeLessThan(10_000);
      expect([408, null]).toContain(e.status);
    }
    // At most 100 per address were held; the rest were closed at once, without an answer.
    expect(endings.filter((e) => e.status === null).length).toBeGreaterThanOrEqual(50);
    expect(endings.filter((e) => e.status === 408).length).toBeGreaterThanOrEqual(100);
    expect(await healthz()).toBe(200);
  });

  test('slow bodies to /tlsrpt are cut at the request timeout; /healthz answers meanwhile', async () => {
    const head =
      'POST /tlsrpt HTTP/1.1\r\nHost: reporter\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: 100000\r\n\r\n';
    const uploads = Array.from({ length: 20 }, (_, i) =>
      drip(running.port, `127.0.1.${i + 1}`, head, { drip: '{"a":1}   ', everyMs: 200, total: 100_000 }),
    );
    await Promise.all(uploads.map(connected));
    expect(await healthz()).toBe(200);
    const endings = await Promise.all(uploads.map((c) => c.ended));
    for (const e of endings) {
      expect(e.sent).toBeLessThan(100_000);
      expect([408, null]).toContain(e.status);
    }
    expect(endings.some((e) => e.status === 408)).toBe(true);
  });

  test('the cap on all connections holds, and frees itself when the held ones time out', async () => {
    const small = await startApp({ ...LIMITS, MTASTS_HTTP_MAX_CONNECTIONS: '40' }, 'small');
    try {
      const head = 'GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ';
      const attack = Array.from({ length: 60 }, () =>
        drip(small.port, '127.0.0.4', head, { drip: 'x', everyMs: 200, total: 10_000 }),
      );
      await Promise.all(attack.map(connected));
      const endings = await Promise.all(attack.map((c) => c.ended));
      expect(endings.filter((e) => e.status === null).length).toBeGreaterThanOrEqual(20);
      expect(endings.filter((e) => e.status === 408).length).toBeLessThanOrEqual(40);
      // Once the held connections have timed out, the listener answers again.
      expect(await healthz(small.url)).toBe(200);
    } finally {
      await small.close();
    }
  });

  test('a header block over the cap is refused (431)', async () => {
    const res = await fetch(`${running.url}/healthz`, { headers: { 'X-Big': 'a'.repeat(20_000) } });
    expect(res.status).toBe(431);
  });
});

describe('/slack/events reads no more than it must before the signature', () => {
  const watchBytes = (app: SlackApp) => {
    const sockets: Socket[] = [];
    app.server.on('connection', (s: Socket) => sockets.push(s));
    return () => sockets.reduce((max, s) => Math.max(max, s.bytesRead), 0);
  };

  test('a 4 MB unsigned body is refused with 413 without being read', async () => {
    const read = watchBytes(running.app);
    const head =
      'POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n';
    const ending = await pushBody(running.port, head, 4 * 1024 * 1024);
    expect(ending.status).toBe(413);
    expect(read()).toBeLessThan(1024 * 1024);
  });

  test('a 4 MB chunked body that claims a signature is cut at the 1 MiB cap (413)', async () => {
    const read = watchBytes(running.app);
    const now = Math.floor(Date.now() / 1000);
    const head = `POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slack-Request-Timestamp: ${now}\r\nX-Slack-Signature: v0=${'0'.repeat(64)}\r\nTransfer-Encoding: chunked\r\n\r\n400000\r\n`;
    const ending = await pushBody(running.port, head, 4 * 1024 * 1024);
    expect(ending.status).toBe(413);
    expect(read()).toBeLessThan(2 * 1024 * 1024);
  });

  test("an unsigned request is refused (401), and Slack's unsigned ssl_check is answered", async () => {
    const res = await fetch(events(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'command=%2Fmtasts&text=watch+evil.test',
    });
    expect(res.status).toBe(401);
    const ssl = await fetch(events(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'ssl_check=1&token=x',
    });
    expect(ssl.status).toBe(200);
  });

  test('a timestamp more than 5 minutes in the future is refused; one within the window is taken', async () => {
    const fields = slashCommand('watch good.test', {
      team: 'TFUT',
      channel: 'CFUT',
      responseUrl: nextResponseUrl(),
    });
    const future = await sendSigned(events(), SECRET, fields, {
      timestamp: Math.floor(Date.now() / 1000) + 600,
    });
    expect(future.status).toBe(401);
    expect(await running.runtime.subscriptions.get('TFUT', 'CFUT', 'good.test')).toBeUndefined();
    const list = await sendSigned(
      events(),
      SECRET,
      slashCommand('list', { team: 'TFUT', channel: 'CFUT', responseUrl: nextResponseUrl() }),
      { timestamp: Math.floor(Date.now() / 1000) + 120 },
    );
    expect(list.status).toBe(200);
  });

  test('a replayed signed request is refused: watch, unwatch, and the same watch again changes nothing', async () => {
    const where = { team: 'TRP', channel: 'CRP' };
    const responseUrl = nextResponseUrl();
    const id = responseUrl.split('/').pop();
    const fields = slashCommand('watch good.test', { ...where, responseUrl });
    const timestamp = Math.floor(Date.now() / 1000);
    const first = await sendSigned(events(), SECRET, fields, { timestamp });
    expect(first.json().response_type).toBe('in_channel');
    await slack.waitFor(() => slack.responses.some((r) => r.id === id));
    expect((await command('unwatch good.test', where)).json().text).toContain('stopped watching');
    const replay = await sendSigned(events(), SECRET, fields, { timestamp });
    expect(replay.status).toBe(401);
    expect(replay.body).toContain('already received');
    expect(await running.runtime.subscriptions.get('TRP', 'CRP', 'good.test')).toBeUndefined();
  });
});

describe('signed bodies of the wrong shape never crash the process', () => {
  test.each([
    ['null', 'application/json'],
    ['[]', 'application/json'],
    ['"text"', 'application/json'],
    ['{"event":null}', 'application/json'],
    ['{"type":"event_callback","event":{"type":"app_home_opened","channel":null}}', 'application/json'],
    [
      '{"type":"event_callback","authorizations":[null],"event":{"type":"app_home_opened"}}',
      'application/json',
    ],
    ['{"type":"block_actions","actions":null,"user":{"id":"U1"}}', 'application/json'],
    ['not json', 'application/json'],
    ['payload=null', 'application/x-www-form-urlencoded'],
    ['payload=%5B%5D', 'application/x-www-form-urlencoded'],
    ['payload=1&payload=2', 'application/x-www-form-urlencoded'],
    [form({ type: 'view_submission', view: null, user: { id: 'U1' } }), 'application/x-www-form-urlencoded'],
    [
      form({ type: 'block_actions', actions: [{ action_id: 'mtasts_recheck' }] }),
      'application/x-www-form-urlencoded',
    ],
    [
      'command=%2Fmtasts&team_id=T1&team_id=T2&channel_id=C1&user_id=U1&text=list',
      'application/x-www-form-urlencoded',
    ],
  ])('%s is refused (400)', async (body, contentType) => {
    const res = await signedRaw(body, contentType);
    expect(res.status).toBe(400);
    expect(await healthz()).toBe(200);
  });

  const setupView = (values: unknown, extra: Record<string, unknown> = {}) => ({
    type: 'view_submission',
    team: { id: 'TS' },
    user: { id: 'U9', team_id: 'TS' },
    view: {
      id: 'V1',
      callback_id: 'mtasts_setup',
      private_metadata: JSON.stringify({ d: 'good.test', t: 'TS', c: 'CS' }),
      state: { values },
      ...extra,
    },
  });

  test.each([
    ['values null', setupView(null)],
    ['values an array', setupView([])],
    ['a field null', setupView({ mode: null })],
    ['a field an array', setupView({ mode: { mtasts_setup_input: [] } })],
    ['an option an array', setupView({ mode: { mtasts_setup_input: { selected_option: [] } } })],
    ['a value a number', setupView({ max_age: { mtasts_setup_input: { value: 86400 } } })],
    ['metadata null', setupView({}, { private_metadata: null })],
    ['user id an array', { ...setupView({}), user: { id: ['U9'] } }],
  ])('a setup form submitted with %s is answered under its field, not thrown on', async (_, payload) => {
    const res = await signedRaw(form(payload), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({
      response_action: 'errors',
      errors: { mode: expect.stringContaining('could not be read') },
    });
  });

  test('a keystroke in the setup form with a broken state is ignored (acknowledged, no update)', async () => {
    const before = slack.callsTo('views.update').length;
    const payload = {
      type: 'block_actions',
      team: { id: 'TS' },
      user: { id: 'U9', team_id: 'TS' },
      container: { type: 'view', view_id: 'V7' },
      view: { id: 'V7', callback_id: 'mtasts_setup', private_metadata: '{}', state: { values: [null] } },
      actions: [
        { type: 'plain_text_input', block_id: 'max_age', action_id: 'mtasts_setup_input', value: '1' },
      ],
    };
    const res = await signedRaw(form(payload), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    expect(slack.callsTo('views.update').length).toBe(before);
  });

  test('a button whose value is not a string is told so through response_url', async () => {
    const responseUrl = nextResponseUrl();
    const id = responseUrl.split('/').pop();
    const payload = {
      type: 'block_actions',
      team: { id: 'TB' },
      user: { id: 'U1', team_id: 'TB' },
      channel: { id: 'CB' },
      response_url: responseUrl,
      trigger_id: '1.2.3',
      actions: [
        { type: 'button', action_id: 'mtasts_recheck', block_id: 'mtasts_report_actions', value: null },
      ],
    };
    const res = await signedRaw(form(payload), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    await slack.waitFor(() => slack.responses.some((r) => r.id === id));
    expect(slack.responses.find((r) => r.id === id)?.body.text).toContain('could not be read');
  });

  test('a command with a repeated text field is answered, not thrown on', async () => {
    const fields = new URLSearchParams(slashCommand('list', { responseUrl: nextResponseUrl() }));
    fields.append('text', 'check good.test');
    const res = await signedRaw(fields.toString(), 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringContaining('could not be read'),
    });
  });

  test('events with the wrong shapes are ignored: App Home for a user object, tokens_revoked without tokens', async () => {
    const before = slack.callsTo('views.publish').length;
    await running.runtime.subscriptions.watch('TEV', 'CEV', 'good.test', 'U1', 10, new Date());
    const event = (inner: Record<string, unknown>) =>
      JSON.stringify({
        type: 'event_callback',
        team_id: 'TEV',
        api_app_id: 'A1',
        event_id: `Ev${Math.random()}`,
        event: inner,
        authorizations: [{ team_id: 'TEV', user_id: 'UBOT', is_bot: true }],
      });
    for (const inner of [
      { type: 'app_home_opened', user: { id: 'U1' }, tab: 'home' },
      { type: 'app_home_opened', user: 'U1', tab: ['home'] },
      { type: 'tokens_revoked', tokens: null },
      { type: 'tokens_revoked', tokens: { bot: 'UBOT' } },
    ]) {
      expect((await signedRaw(event(inner))).status).toBe(200);
    }
    expect(slack.callsTo('views.publish').length).toBe(before);
    expect((await running.runtime.subscriptions.get('TEV', 'CEV', 'good.test'))?.pausedAt).toBeNull();
    // And the app still serves commands.
    expect(JSON.stringify((await command('list', { team: 'TEV', channel: 'CEV' })).json())).toContain(
      'good.test',
    );
  });
});
