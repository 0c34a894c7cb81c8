import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from '../support/config.js';
import { type ApiCall, FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';
import { startSlackRig } from '../support/slack-rig.js';

/**
 * What a person reads in Slack, in the states where it matters most, through the real Bolt app and the real monitor
 * against loopback peers and the fake Slack API: watching where the bot cannot post, a subscription paused by it,
 * a policy host down (what cached senders do, until when), an MX move with an uncovered host (one alert), a 30-day
 * certificate notice that does not look like an outage, conflicting TLS-RPT records, a name that does not exist.
 */

const SECRET = 'truthful-signing-secret';
const HOUR = 3600_000;
const DAY = 24 * HOUR;
let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let url = '';
/** The app's clock (the monitor, the checks and the stores read it); tests only move it forward. */
let clock = new Date();

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  const rig = await startSlackRig(lab, slack, {
    secret: SECRET,
    databasePath: join(mkdtempSync(join(tmpdir(), 'mtasts-truthful-')), 't.sqlite'),
    overrides: {
      now: () => clock,
      monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
    },
  });
  ({ runtime, app } = rig);
  url = `${rig.url}/slack/events`;
});
afterAll(async () => {
  await app.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

let n = 0;
/** A slash command signed as Slack signs it; `responses()` is what came back through its response_url. */
function command(text: string, team: string, channel: string) {
  const id = `t${++n}`;
  const sent = sendSigned(
    url,
    SECRET,
    slashCommand(text, { team, channel, responseUrl: slack.responseUrl(id) }),
  );
  return {
    ack: async () => (await sent).json() as { response_type?: string; text?: string; blocks?: unknown[] },
    responses: () => slack.responses.filter((r) => r.id === id),
  };
}

/** Watches from a channel the bot is in and waits for the first report, so that no check is left running. */
async function watch(domain: string, team: string, channel: string): Promise<void> {
  const c = command(`watch ${domain}`, team, channel);
  expect((await c.ack()).response_type).toBe('in_channel');
  await slack.waitFor(() => c.responses().length === 1);
}

async function pass(): Promise<void> {
  const running = runtime.monitor.runPass();
  if (!running) throw new Error('a pass is already running');
  await running;
}

const posts = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel && c.ts !== undefined);
const textOf = (c: ApiCall | undefined): string =>
  `${String(c?.body.text)}\n${JSON.stringify(c?.body.blocks)}`;
/** How Slack is asked to show a time: in each reader's zone and words, with a UTC fallback. */
const slackDate = (ms: number) => `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|`;

let events = 0;
/** Opens App Home for `user`, who is in `channels`; returns the published view as text. */
async function appHome(team: string, user: string, channels: string[]): Promise<string> {
  slack.handlers.set('users.conversations', () => ({
    json: { ok: true, channels: channels.map((id) => ({ id })), response_metadata: { next_cursor: '' } },
  }));
  const before = slack.callsTo('views.publish').length;
  const event = {
    token: 'legacy',
    team_id: team,
    api_app_id: 'A1',
    type: 'event_callback',
    event_id: `EvT${++events}`,
    event_time: Math.floor(Date.now() / 1000),
    event: { type: 'app_home_opened', user, channel: 'DH', tab: 'home', event_ts: `${events}.2` },
    authorizations: [{ team_id: team, user_id: 'UBOT', is_bot: true }],
  };
  const res = await sendSigned(
    url,
    SECRET,
    {},
    { rawBody: JSON.stringify(event), contentType: 'application/json' },
  );
  expect(res.status).toBe(200);
  await slack.waitFor(() => slack.callsTo('views.publish').length > before);
  slack.handlers.delete('users.conversations');
  return String(slack.callsTo('views.publish').at(-1)?.body.view);
}

describe('watch checks that the bot can post in the channel', () => {
  test('a channel the bot is not in: told how to invite it, nothing watched; once invited, it watches', async () => {
    await lab.domain('invite.test');
    slack.notMemberOf.add('COUT');
    const refused = await command('watch invite.test', 'TW', 'COUT').ack();
    expect(refused.response_type).toBe('ephemeral');
    expect(refused.text).toBe(
      ':no_entry: I am not a member of this channel, so I could not post alerts about invite.test here; nothing was set up. Invite me with `/invite @mtasts`, then run `/mtasts watch invite.test` again. (A direct message between people cannot hold the bot: watch from a channel.)',
    );
    expect(await runtime.subscriptions.get('TW', 'COUT', 'invite.test')).toBeUndefined();
    expect(slack.callsTo('conversations.info').at(-1)?.body.channel).toBe('COUT');
    // The user invites the bot, and runs the same command again.
    slack.notMemberOf.delete('COUT');
    await watch('invite.test', 'TW', 'COUT');
    expect((await runtime.subscriptions.get('TW', 'COUT', 'invite.test'))?.pausedAt).toBeNull();
  });

  test('a private channel the bot cannot see is refused the same way', async () => {
    slack.hiddenChannels.add('GPRIV');
    const refused = await command('watch invite.test', 'TW', 'GPRIV').ack();
    expect(refused.text).toContain('Invite me with `/invite @mtasts`');
    expect(await runtime.subscriptions.get('TW', 'GPRIV', 'invite.test')).toBeUndefined();
    slack.hiddenChannels.delete('GPRIV');
  });

  test('a subscription paused by not_in_channel: list and App Home say why and how to resume; watch resumes it', async () => {
    await lab.domain('kicked.test');
    await watch('kicked.test', 'TK', 'CKICK');
    await pass(); // the silent baseline
    // Someone removes the bot from the channel; then the domain breaks, and its alert cannot be posted.
    slack.notMemberOf.add('CKICK');
    lab.set('_mta-sts.kicked.test', { TXT: ['v=STSv1; id=not-valid!'] });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    const paused = await runtime.subscriptions.get('TK', 'CKICK', 'kicked.test');
    expect(paused?.pausedReason).toBe('alerts cannot be posted: not_in_channel');
    expect(paused?.pausedAt).toBe(clock.toISOString());

    const list = JSON.stringify((await command('list', 'TK', 'CKICK').ack()).blocks);
    expect(list).toContain(`:double_vertical_bar: *Paused* since ${slackDate(clock.getTime())}`);
    expect(list).toContain(
      'the bot is not a member of this channel, so its alerts could not be posted. To resume: `/invite @mtasts` here, then `/mtasts watch kicked.test` again.',
    );

    const home = await appHome('TK', 'UK', ['CKICK']);
    expect(home).toContain(
      'the bot is not a member of <#CKICK>, so its alerts could not be posted. To resume: `/invite @mtasts` in <#CKICK>, then `/mtasts watch kicked.test` there.',
    );
    // The row says what is failing, not only that something is.
    expect(home).toContain('Failing: MTA-STS record is malformed (_mta-sts.kicked.test)');

    slack.notMemberOf.delete('CKICK');
    const resumed = command('watch kicked.test', 'TK', 'CKICK');
    expect((await resumed.ack()).text).toBe(
      '<@U1> resumed the alerts about kicked.test in this channel (they were paused: alerts cannot be posted: not_in_channel).',
    );
    await slack.waitFor(() => resumed.responses().length === 1);
    expect((await runtime.subscriptions.get('TK', 'CKICK', 'kicked.test'))?.pausedAt).toBeNull();
  });
});

describe('alerts and reports say what senders do now', () => {
  test('policy host down: cached senders keep enforcing until seen + max_age, in the alert and its reminder', async () => {
    await lab.domain('down.test');
    await watch('down.test', 'TD', 'CDOWN');
    const seen = clock.getTime();
    await pass(); // baseline: the policy (enforce, max_age 1209600) is in force, seen now
    lab.set('mta-sts.down.test', { A: [lab.newAddress()] }); // nothing listens there any more
    for (let i = 0; i < 2; i++) {
      clock = new Date(clock.getTime() + HOUR);
      await pass(); // a fetch failure alerts at its second pass in a row
    }
    const [alert] = posts('CDOWN');
    expect(posts('CDOWN')).toHaveLength(1);
    const until = seen + 1209600_000;
    const impact = `*Impact now:* Senders that cached the policy (mode enforce, max_age 1209600 (14 days), last seen ${slackDate(seen)}`;
    const text = textOf(alert);
    expect(text).toContain(impact);
    expect(text).toContain(`keep enforcing it until about ${slackDate(until)}`);
    expect(text).toContain('senders without a cached copy find no policy and deliver without verified TLS.');
    expect(text).not.toContain('no MTA-STS policy is in force');
    expect(text).toContain(':rotating_light: Error · *down.test: Policy could not be fetched*');
    expect(String(alert?.body.text)).toBe(
      'Error: down.test: Policy could not be fetched (mta-sts.down.test)',
    );

    clock = new Date(clock.getTime() + DAY);
    await pass(); // a day later: the reminder, in the alert's thread, with the same dates
    const reminder = posts('CDOWN')[1];
    expect(reminder?.body.thread_ts).toBe(alert?.ts);
    expect(textOf(reminder)).toContain(impact);
    expect(textOf(reminder)).toContain(`until about ${slackDate(until)}`);

    // App Home says what is failing, and the stored report carries the impact too.
    expect(await appHome('TD', 'UD', ['CDOWN'])).toContain(
      'Failing: Policy could not be fetched (mta-sts.down.test)',
    );
    expect((await runtime.checks.last('down.test'))?.lastPolicy?.seenAt).toBe(new Date(seen).toISOString());
  });

  test('an MX move whose new host the policy does not cover is one alert; the fix recovers it in its thread', async () => {
    await lab.domain('move.test');
    await watch('move.test', 'TM', 'CMOVE');
    await pass();
    await lab.mxHost('mx3.move.test');
    lab.edit('move.test', {
      MX: [
        { preference: 10, exchange: 'mx1.move.test' },
        { preference: 20, exchange: 'mx2.move.test' },
        { preference: 30, exchange: 'mx3.move.test' },
      ],
    });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    expect(posts('CMOVE')).toHaveLength(1);
    const [alert] = posts('CMOVE');
    const text = textOf(alert);
    expect(text).toContain(
      ':rotating_light: Error · *move.test: MX hosts changed; MX host not covered by the policy*',
    );
    expect(text).toContain('MX hosts added mx3.move.test; now mx1.move.test, mx2.move.test, mx3.move.test.');
    expect(text).toContain('MX host not covered by the policy (mx3.move.test): mx3.move.test matches none');
    expect(text).toContain(
      '*Impact now:* mode is *enforce*: senders that apply MTA-STS do not deliver to mx3.move.test and use mx1.move.test and mx2.move.test instead.',
    );
    expect(text).toContain('*Fix:* Add \\"mx: mx3.move.test\\"');

    const host = lab.https.find((s) => s.requests.some((r) => r.host === 'mta-sts.move.test'));
    if (!host) throw new Error('no policy host served mta-sts.move.test');
    host.handler = (_req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/plain' })
        .end(
          'version: STSv1\nmode: enforce\nmx: mx1.move.test\nmx: mx2.move.test\nmx: mx3.move.test\nmax_age: 1209600\n',
        );
    lab.set('_mta-sts.move.test', { TXT: ['v=STSv1; id=20261130T000000'] });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    const recovered = posts('CMOVE')[1];
    expect(String(recovered?.body.text)).toBe(
      'move.test: recovered: MX host not covered by the policy (mx3.move.test)',
    );
    expect(recovered?.body.thread_ts).toBe(alert?.ts);
  });

  test('a 30-day certificate notice does not look like an outage', async () => {
    await lab.domain('notice.test', {
      mx: { 'mx1.notice.test': { cert: lab.cert(['mx1.notice.test'], { notAfterDays: 40 }) } },
    });
    await watch('notice.test', 'TN', 'CNOTICE');
    await pass(); // 40 days left: nothing
    clock = new Date(clock.getTime() + 15 * DAY); // 25 left: the 30-day threshold
    await pass();
    const [notice] = posts('CNOTICE');
    expect(posts('CNOTICE')).toHaveLength(1);
    const text = textOf(notice);
    expect(text).toContain(':calendar: Notice · *notice.test: MX certificate expires within 30 days*');
    expect(String(notice?.body.text)).toMatch(/^Notice: notice\.test: MX certificate expires within 30 days/);
    expect(text).not.toContain(':rotating_light:');
    expect(text).not.toContain('Impact now');
  });
});

describe('reports', () => {
  test('conflicting TLS-RPT records are shown as such, not as "none"', async () => {
    await lab.domain('tworpt.test');
    lab.set('_smtp._tls.tworpt.test', {
      TXT: ['v=TLSRPTv1; rua=mailto:a@tworpt.test', 'v=TLSRPTv1; rua=mailto:b@tworpt.test'],
    });
    const c = command('check tworpt.test', 'TR', 'CR');
    await c.ack();
    await slack.waitFor(() => c.responses().length === 1);
    const body = JSON.stringify(c.responses()[0]?.body);
    expect(body).toContain(
      '*TLS-RPT* 2 conflicting records, so senders send no reports: `v=TLSRPTv1; rua=mailto:a@tworpt.test`, `v=TLSRPTv1; rua=mailto:b@tworpt.test`',
    );
    expect(body).not.toContain('*TLS-RPT* none');
    expect(body).toContain(
      '*Impact now:* mode is *enforce*: senders that apply MTA-STS deliver to every MX host',
    );
  });

  test('a name that does not exist: one error, and what that means for mail', async () => {
    const c = command('check reel-k.test', 'TR', 'CR');
    await c.ack();
    await slack.waitFor(() => c.responses().length === 1);
    const body = c.responses()[0]?.body as { blocks: { text?: { text: string } }[]; text: string };
    expect(body.blocks[0]?.text?.text).toBe(':x: reel-k.test: 1 error');
    const all = JSON.stringify(body);
    expect(all).toContain('*Impact now:* reel-k.test does not exist in DNS: mail to it bounces');
    expect(all).toContain('`DOMAIN_NOT_FOUND`');
    expect(all).not.toContain('MX_MISSING');
    expect(all).not.toContain('STS_RECORD_MISSING');
  });

  test("a watched domain checked by hand while its policy host is down: the monitor's memory gives the date", async () => {
    await lab.domain('byhand.test');
    await watch('byhand.test', 'TH', 'CHAND');
    const seen = clock.getTime();
    await pass(); // the policy (enforce, max_age 1209600) in force, seen now
    lab.set('mta-sts.byhand.test', { A: [lab.newAddress()] });
    clock = new Date(clock.getTime() + HOUR);
    const c = command('check byhand.test', 'TH', 'CHAND');
    await c.ack();
    await slack.waitFor(() => c.responses().length === 1);
    const all = JSON.stringify(c.responses()[0]?.body);
    expect(all).toContain(`last seen ${slackDate(seen)}`);
    expect(all).toContain(`keep enforcing it until about ${slackDate(seen + 1209600_000)}`);
    expect(all).not.toContain('this check keeps no history');
  });

  test("an unwatched domain's broken policy: the impact says cached copies last until their max_age", async () => {
    await lab.domain('oneoff.test');
    lab.set('mta-sts.oneoff.test', { A: [lab.newAddress()] });
    const c = command('check oneoff.test', 'TR', 'CR');
    await c.ack();
    await slack.waitFor(() => c.responses().length === 1);
    const all = JSON.stringify(c.responses()[0]?.body);
    expect(all).toContain(
      '*Impact now:* Any sender that cached a policy earlier keeps applying it until its max_age runs out (this check keeps no history, so when is not known)',
    );
    expect(all).toContain(`checked ${slackDate(clock.getTime())}`);
  });
});

/**
 * A resolver on loopback that forwards each question to the lab's DNS server, or answers REFUSED while `refusing`:
 * the checker's own resolver failing, and coming back.
 */
async function forwardingResolver(upstreamPort: number) {
  const socket = createSocket('udp4');
  const upstream = createSocket('udp4');
  const waiting = new Map<number, { port: number; address: string }>();
  const state = { refusing: false };
  socket.on('message', (msg, from) => {
    if (!state.refusing) {
      const id = msg.readUInt16BE(0);
      waiting.set(id, { port: from.port, address: from.address });
      upstream.send(msg, upstreamPort, '127.0.0.1');
      return;
    }
    const query = dnsPacket.decode(msg);
    const reply = {
      type: 'response' as const,
      id: query.id ?? 0,
      flags: 5,
      questions: query.questions ?? [],
    };
    socket.send(dnsPacket.encode(reply), from.port, from.address);
  });
  upstream.on('message', (msg) => {
    const to = waiting.get(msg.readUInt16BE(0));
    if (to) socket.send(msg, to.port, to.address);
  });
  await Promise.all([
    new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve)),
    new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve)),
  ]);
  return {
    state,
    address: `127.0.0.1:${socket.address().port}`,
    stop: () => Promise.all([socket, upstream].map((s) => new Promise<void>((r) => s.close(() => r())))),
  };
}

describe("the checker's resolver failing", () => {
  test('is one alert of its own: nothing open recovers meanwhile, and no MX change is made up', async () => {
    const resolver = await forwardingResolver(lab.dns.port);
    let at = new Date();
    const blind = await openRuntime(
      testConfig({
        SLACK_API_URL: slack.apiUrl,
        DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-blind-')), 'b.sqlite'),
        MTASTS_DNS_SERVERS: resolver.address,
      }),
      null,
      { info: () => {}, warn: () => {}, error: () => {} },
      {
        engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
        now: () => at,
        monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
      },
    );
    const run = async () => {
      at = new Date(at.getTime() + HOUR);
      await blind.monitor.runPass();
    };
    try {
      await lab.domain('blind.test');
      await blind.subscriptions.watch('TB', 'CBLIND', 'blind.test', 'U1', 100, at);
      await run(); // baseline
      delete lab.dns.zone['_smtp._tls.blind.test'];
      await run(); // TLSRPT_MISSING opens
      resolver.state.refusing = true;
      await run();
      await run(); // the resolver's failure alerts at its second pass in a row
      resolver.state.refusing = false;
      await run();
      const texts = posts('CBLIND').map((c) => String(c.body.text));
      expect(texts).toEqual([
        'Warning: blind.test: No TLS-RPT record (_smtp._tls.blind.test)',
        'Error: blind.test: The DNS resolver of this check failed (DNS resolver)',
        'blind.test: recovered: The DNS resolver of this check failed (DNS resolver)',
      ]);
      expect(textOf(posts('CBLIND')[1])).toContain(
        '*Impact now:* Not known: the resolver of this check failed, so it could not see blind.test as senders do.',
      );
      // The TLS-RPT record is still missing, and still followed: no word about it until it is back.
      expect((await blind.monitorStore.loadState('blind.test')).conditions.map((c) => c.key)).toContain(
        'finding:TLSRPT_MISSING:_smtp._tls.blind.test',
      );
    } finally {
      await blind.close();
      await resolver.stop();
    }
  });
});
