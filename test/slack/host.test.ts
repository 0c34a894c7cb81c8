import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { HostingStore } from '../../src/store/hosting.js';
import { type ApiCall, FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { TestHttpsServer } from '../support/https-server.js';
import { Lab } from '../support/lab.js';
import { type SlackRig, startSlackRig } from '../support/slack-rig.js';

/**
 * Hosted MTA-STS from Slack, end to end: the real app and runtime on the lab's DNS, the fake Slack API, the monitor's
 * passes run by the test with a clock it moves. The bot's policy listener is stood in for by an HTTPS server on the
 * hosting name's address that serves what the hosting service says (the serving half has tests of its own).
 */

const SECRET = 'host-test-secret';
const DAY = 86_400_000;
const HOSTING_NAME = 'bot.hosting.test';
const D = 'hosted.test';
let lab: Lab;
let slack: FakeSlack;
let rig: SlackRig;
let clock = new Date('2026-12-01T10:00:00.000Z');
const dir = mkdtempSync(join(tmpdir(), 'mtasts-host-'));

/** Who users.info says each user is: U1 a full member, UG a multi-channel guest, UU a single-channel guest. */
const PEOPLE: Record<string, Record<string, boolean>> = {
  U1: { is_restricted: false, is_ultra_restricted: false },
  UG: { is_restricted: true, is_ultra_restricted: false },
  UU: { is_restricted: true, is_ultra_restricted: true },
};

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  slack.handlers.set('users.info', (call) => {
    const id = String(call.body.user);
    const flags = PEOPLE[id];
    if (!flags) return { json: { ok: false, error: 'user_not_found' } };
    return {
      json: { ok: true, user: { id, team_id: 'T1', name: id, deleted: false, is_bot: false, ...flags } },
    };
  });
  const botAddress = lab.newAddress();
  lab.set(HOSTING_NAME, { A: [botAddress] });
  lab.set(`*.${HOSTING_NAME}`, { A: [botAddress] });
  // The bot's policy listener, as senders reach it through the CNAME: the policy the hosting service serves, by name.
  const listener = await TestHttpsServer.start(
    lab.cert([`mta-sts.${D}`]),
    (req, res) => {
      const name = (req.headers.host ?? '').split(':')[0] ?? '';
      void (rig.runtime.hosting?.policyFor(name) ?? Promise.resolve(undefined)).then((text) => {
        if (req.url !== '/.well-known/mta-sts.txt' || text === undefined) res.writeHead(404).end('not found');
        else res.writeHead(200, { 'Content-Type': 'text/plain' }).end(text);
      });
    },
    botAddress,
    lab.policyPort,
  );
  lab.https.push(listener);
  lab.set(D, { MX: [{ preference: 10, exchange: `mx1.${D}` }] });
  lab.set(`_smtp._tls.${D}`, { TXT: [`v=TLSRPTv1; rua=mailto:tls@${D}`] });
  await lab.mxHost(`mx1.${D}`);
  await lab.mxHost(`mx2.${D}`);
  rig = await startSlackRig(lab, slack, {
    secret: SECRET,
    databasePath: join(dir, 'host.sqlite'),
    // The file asks for more than the default 20 looks and changes a minute in one workspace.
    env: { MTASTS_HOSTING_NAME: HOSTING_NAME, MTASTS_CHECKS_PER_TEAM_PER_MINUTE: '1000' },
    overrides: {
      now: () => clock,
      monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
    },
  });
});
afterAll(async () => {
  await rig?.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

let responses = 0;
function command(text: string, where: { team?: string; channel?: string; user?: string } = {}) {
  const responseUrl = slack.responseUrl(`host${++responses}`);
  const id = responseUrl.split('/').pop() ?? '';
  const sent = sendSigned(`${rig.url}/slack/events`, SECRET, slashCommand(text, { ...where, responseUrl }));
  return { sent, responses: () => slack.responses.filter((r) => r.id === id) };
}

/** A click on a button, as Slack posts it: `value` as the button carried it (or as a forger wrote it). */
function click(
  actionId: string,
  value: string,
  where: { team: string; channel: string; user?: string },
  blockId = 'mtasts_host_actions',
) {
  const responseUrl = slack.responseUrl(`hostclick${++responses}`);
  const id = responseUrl.split('/').pop() ?? '';
  const payload = {
    type: 'block_actions',
    api_app_id: 'A1',
    token: 'legacy',
    team: { id: where.team, domain: 'test' },
    user: { id: where.user ?? 'U1', team_id: where.team },
    channel: { id: where.channel, name: 'mail-ops' },
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: where.channel },
    message: { ts: '1700000000.000100', blocks: [] },
    response_url: responseUrl,
    trigger_id: '123.456.abc',
    actions: [{ type: 'button', block_id: blockId, action_id: actionId, value, action_ts: '1' }],
  };
  const sent = sendSigned(`${rig.url}/slack/events`, SECRET, { payload: JSON.stringify(payload) });
  return { sent, responses: () => slack.responses.filter((r) => r.id === id) };
}

const value = (domain: string, team: string, channel: string) =>
  JSON.stringify({ d: domain, t: team, c: channel });
const textOf = (body: unknown) => JSON.stringify(body);
/** The mrkdwn of a message's sections, as Slack shows it. */
const mrkdwn = (body: Record<string, unknown>) =>
  ((body.blocks ?? []) as { text?: { text?: string } }[]).map((b) => b.text?.text ?? '').join('\n');
const posts = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel);
const postsSaying = (channel: string, words: string) =>
  posts(channel).filter((c) => textOf(c.body).includes(words));
const hosted = () => new HostingStore(rig.runtime.db).get(D);

async function pass(): Promise<void> {
  const run = rig.runtime.monitor.runPass();
  if (!run) throw new Error('a pass is already running');
  await run;
}

/** The one answer through response_url, once it has come. */
async function answerOf(c: { sent: Promise<unknown>; responses: () => { body: Record<string, unknown> }[] }) {
  await c.sent;
  await slack.waitFor(() => c.responses().length >= 1);
  return c.responses()[0]?.body ?? {};
}

describe('/mtasts host, its buttons and the monitor', () => {
  test('host example.com answers with the records to publish, only to the user, and its buttons', async () => {
    const c = command(`host ${D}`, { team: 'T1', channel: 'C1' });
    const ack = (await c.sent).json();
    expect(ack).toMatchObject({ response_type: 'ephemeral', text: expect.stringContaining('Preparing') });
    const body = await answerOf(c);
    const text = textOf(body);
    expect(body.response_type).toBe('ephemeral');
    const h = await hosted();
    expect(h?.status).toBe('pending');
    expect(text).toContain(`mta-sts.${D}. 3600 IN CNAME ${h?.token}.${HOSTING_NAME}.`);
    expect(mrkdwn(body)).toContain(`_mta-sts.${D}. 3600 IN TXT "v=STSv1; id=${h?.stsId}"`);
    expect(text).toContain('mtasts_host_check');
    expect(text).toContain('mtasts_host_stop');
    expect(text).not.toContain('mtasts_host_enforce'); // not ready: no such button
    expect(text).toContain('Not available'); // Domain Connect asked, and the lab's DNS has no provider for it
    // What the channel waits for: this enrollment's own target in DNS, not just any name pointing at the bot.
    expect(mrkdwn(body)).toContain(
      `this channel is told when DNS shows \`mta-sts.${D}\` pointing at this enrollment's own CNAME target (below)`,
    );
    expect(mrkdwn(body)).not.toContain('the CNAME points at the bot');
  });

  test('the list of the workspace, and nothing for another one', async () => {
    const mine = (await command('host', { team: 'T1', channel: 'C1' }).sent).json();
    expect(textOf(mine)).toContain(D);
    const theirs = (await command('host', { team: 'T2', channel: 'C2' }).sent).json();
    expect(textOf(theirs)).toContain('hosts no MTA-STS policy');
  });

  test('a second workspace gets its own pending request (its own CNAME target), and nothing of the first changes', async () => {
    const before = await hosted();
    const body = await answerOf(command(`host ${D}`, { team: 'T2', channel: 'C2' }));
    expect(body.text).not.toMatch(/already hosted for someone else/);
    const target = new RegExp(`mta-sts\\.${D.replace(/\./g, '\\.')}\\. 3600 IN CNAME ([a-z2-7]{20})\\.`).exec(
      textOf(body),
    );
    expect(target?.[1]).toBeDefined();
    expect(target?.[1]).not.toBe(before?.token);
    expect(await hosted()).toEqual(before);
  });

  test("enrollment completes when DNS answers the CNAME: the channel is told once, and watches the domain; the rival's channel is told its request was dropped", async () => {
    await pass();
    expect(postsSaying('C1', 'is live')).toHaveLength(0);
    expect((await hosted())?.status).toBe('pending');
    lab.set(`mta-sts.${D}`, {
      CNAME: `${(await new HostingStore(rig.runtime.db).get(D))?.token}.${HOSTING_NAME}`,
    });
    await pass();
    expect((await hosted())?.status).toBe('active');
    expect(postsSaying('C1', 'hosted MTA-STS is live')).toHaveLength(1);
    expect(await rig.runtime.subscriptions.get('T1', 'C1', D)).toBeDefined();
    // The second workspace's pending request lost: told once that it was dropped, and nothing else of the domain.
    expect(posts('C2')).toHaveLength(1);
    expect(mrkdwn(postsSaying('C2', 'your pending request was dropped')[0]?.body ?? {})).toContain(
      `Another enrollment proved control of \`mta-sts.${D}\` first (its CNAME target is in DNS); your pending request was dropped. If the domain is yours, check who changed the CNAME.`,
    );
    expect(textOf(posts('C2'))).not.toContain((await hosted())?.token ?? '?');
    expect(textOf(posts('C2'))).not.toContain('mtasts_host');
    // The same pass checked it: the served policy is fetched through the CNAME, and the id is not in DNS yet.
    expect((await rig.runtime.checks.last(D))?.evidence.policy.valid).toBe(true);
    expect(postsSaying('C1', 'publish the new id')).toHaveLength(1);
    clock = new Date(clock.getTime() + 3600_000);
    await pass();
    expect(postsSaying('C1', 'is live')).toHaveLength(1);
    expect(postsSaying('C1', 'publish the new id')).toHaveLength(1); // not again within the reminder interval
    expect(posts('C2')).toHaveLength(1);
  });

  test('DNS carries the id: said once, and the reminders stop', async () => {
    const h = await hosted();
    lab.set(`_mta-sts.${D}`, { TXT: [`v=STSv1; id=${h?.stsId}`] });
    clock = new Date(clock.getTime() + 25 * 3600_000);
    await pass();
    expect(postsSaying('C1', `DNS now carries id`)).toHaveLength(1);
    expect(postsSaying('C1', 'publish the new id')).toHaveLength(1);
    clock = new Date(clock.getTime() + 25 * 3600_000);
    await pass();
    expect(postsSaying('C1', `DNS now carries id`)).toHaveLength(1);
    expect(postsSaying('C1', 'publish the new id')).toHaveLength(1);
  });

  test('Move to enforce is refused before the rollout rule says ready, and accepted after', async () => {
    const before = await hosted();
    const early = await answerOf(
      click('mtasts_host_enforce', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1' }),
    );
    expect(early.text).toMatch(/^:no_entry: not ready to enforce/);
    expect((await hosted())?.stsId).toBe(before?.stsId);
    const shown = await answerOf(command(`host ${D}`, { team: 'T1', channel: 'C1' }));
    expect(textOf(shown)).not.toContain('mtasts_host_enforce');
    clock = new Date(clock.getTime() + 15 * DAY);
    await pass(); // the monitor's clean days are what the rule reads
    const ready = await answerOf(command(`host ${D} show`, { team: 'T1', channel: 'C1' }));
    expect(textOf(ready)).toContain('mtasts_host_enforce');
    const done = await answerOf(
      click('mtasts_host_enforce', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1' }),
    );
    const after = await hosted();
    expect(after?.mode).toBe('enforce');
    expect(after?.stsId).not.toBe(before?.stsId);
    expect(done.response_type).toBe('in_channel');
    expect(textOf(done)).toContain(`id=${after?.stsId}`);
    lab.set(`_mta-sts.${D}`, { TXT: [`v=STSv1; id=${after?.stsId}`] });
  });

  test('an MX change: one proposal; applied step by step; the new id reminded until DNS carries it', async () => {
    lab.set(D, { MX: [{ preference: 10, exchange: `mx2.${D}` }] });
    clock = new Date(clock.getTime() + 3600_000);
    await pass();
    await pass();
    const proposals = postsSaying('C1', 'a policy update is proposed');
    expect(proposals).toHaveLength(1);
    expect(textOf(proposals[0]?.body)).toContain('mtasts_host_apply');
    const before = await hosted();
    const applied = await answerOf(
      click(
        'mtasts_host_apply',
        value(D, 'T1', 'C1'),
        { team: 'T1', channel: 'C1' },
        'mtasts_host_alert_actions',
      ),
    );
    const after = await hosted();
    expect(applied.response_type).toBe('in_channel');
    expect(after?.mx).toEqual([`mx1.${D}`, `mx2.${D}`]); // step 1: the new host added, the old one kept
    expect(after?.stsId).not.toBe(before?.stsId);
    const reminders = () =>
      postsSaying('C1', `publish the new id`).filter((c) => textOf(c.body).includes(after?.stsId ?? '?'));
    await pass();
    expect(reminders()).toHaveLength(0); // the click showed the TXT: the reminders count from it
    clock = new Date(clock.getTime() + 25 * 3600_000);
    await pass();
    expect(reminders()).toHaveLength(1);
    clock = new Date(clock.getTime() + 25 * 3600_000);
    await pass();
    expect(reminders()).toHaveLength(2);
    lab.set(`_mta-sts.${D}`, { TXT: [`v=STSv1; id=${after?.stsId}`] });
    clock = new Date(clock.getTime() + 25 * 3600_000);
    // A user's look sees DNS carry it first; the channel is still told, once.
    expect(textOf(await answerOf(command(`host ${D} show`, { team: 'T1', channel: 'C1' })))).toContain(
      'DNS carries id',
    );
    await pass();
    await pass();
    expect(reminders()).toHaveLength(2);
    expect(
      postsSaying('C1', `DNS now carries id`).filter((c) => textOf(c.body).includes(after?.stsId ?? '?')),
    ).toHaveLength(1);
    // Step 2 is refused until the old max_age has run out.
    const early = await answerOf(
      click('mtasts_host_apply', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1' }),
    );
    expect(early.text).toMatch(/^:no_entry: step 2 .* is not due/);
    expect((await hosted())?.mx).toEqual([`mx1.${D}`, `mx2.${D}`]);
    expect(postsSaying('C1', 'a policy update is proposed')).toHaveLength(1);
  });

  test('step 2 due once the old max_age has run out: told once, then applied', async () => {
    clock = new Date(clock.getTime() + 8 * DAY);
    await pass();
    await pass();
    const proposals = postsSaying('C1', 'a policy update is proposed');
    expect(proposals).toHaveLength(2);
    expect(textOf(proposals[1]?.body)).toContain('mtasts_host_apply');
    const done = await answerOf(
      click('mtasts_host_apply', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1' }),
    );
    expect(done.response_type).toBe('in_channel');
    const after = await hosted();
    expect(after?.mx).toEqual([`mx2.${D}`]);
    expect(after?.proposal).toBeNull();
    lab.set(`_mta-sts.${D}`, { TXT: [`v=STSv1; id=${after?.stsId}`] });
    await pass();
    expect(postsSaying('C1', 'a policy update is proposed')).toHaveLength(2);
  });

  test.each([
    [
      'another workspace named in the value',
      value(D, 'T2', 'C2'),
      ':no_entry: This button belongs to another',
    ],
    ['another channel named in the value', value(D, 'T1', 'C9'), ':no_entry: This button belongs to another'],
    ['garbage instead of JSON', '{"d": hosted.test', ':no_entry: This button belongs to another'],
    ['a JSON array', '[1,2,3]', ':no_entry: This button belongs to another'],
    ['a domain that is no domain', value('-x-..', 'T1', 'C1'), ':no_entry: This button belongs to another'],
    [
      'a domain this workspace does not host',
      value('elsewhere.test', 'T1', 'C1'),
      'is not hosted by this workspace',
    ],
  ])(
    'a forged Stop hosting (%s) is refused with a clear message, and nothing changes',
    async (_, forged, words) => {
      const before = await hosted();
      const body = await answerOf(click('mtasts_host_stop', forged, { team: 'T1', channel: 'C1' }));
      expect(String(body.text)).toContain(words);
      expect(body.replace_original).toBe(false);
      expect(await hosted()).toEqual(before);
    },
  );

  test("another workspace's click on this domain's buttons, in its own channel, is refused", async () => {
    const before = await hosted();
    for (const id of ['mtasts_host_stop', 'mtasts_host_apply', 'mtasts_host_enforce', 'mtasts_host_check']) {
      const body = await answerOf(click(id, value(D, 'T2', 'C2'), { team: 'T2', channel: 'C2' }));
      expect(body.text).toBe(`:no_entry: ${D} is not hosted by this workspace.`);
    }
    expect(await hosted()).toEqual(before);
    const typed = await answerOf(command(`host ${D} remove`, { team: 'T2', channel: 'C2' }));
    expect(typed.text).toBe(`:no_entry: ${D} is not hosted by this workspace.`);
    expect(await hosted()).toEqual(before);
  });

  test('changes only from the enrolling channel: refused in another channel of the workspace, without asking Slack; show and Check DNS now work there', async () => {
    const before = await hosted();
    const asked = slack.callsTo('users.info').length;
    const here = `:no_entry: ${D} is changed only from <#C1>, the channel it was enrolled from`;
    for (const text of ['mode none', 'max-age 86400', `mx mx9.${D}`, 'apply', 'remove']) {
      const body = await answerOf(command(`host ${D} ${text}`, { team: 'T1', channel: 'C3' }));
      expect(body).toMatchObject({ response_type: 'ephemeral', text: expect.stringContaining(here) });
    }
    for (const id of ['mtasts_host_stop', 'mtasts_host_apply', 'mtasts_host_enforce']) {
      const body = await answerOf(click(id, value(D, 'T1', 'C3'), { team: 'T1', channel: 'C3' }));
      expect(String(body.text)).toContain(here);
      expect(body.replace_original).toBe(false);
    }
    expect(await hosted()).toEqual(before);
    expect(slack.callsTo('users.info')).toHaveLength(asked);
    const shown = await answerOf(command(`host ${D} show`, { team: 'T1', channel: 'C3' }));
    expect(textOf(shown)).toContain('mtasts_host_check');
    expect(textOf(shown)).not.toContain('mtasts_host_stop');
    expect(textOf(shown)).toContain('made only from <#C1>');
    const looked = await answerOf(
      click('mtasts_host_check', value(D, 'T1', 'C3'), { team: 'T1', channel: 'C3' }),
    );
    expect(looked.text).toContain('Hosted MTA-STS for');
    expect(looked.replace_original).toBe(true);
    expect(await hosted()).toMatchObject({
      stsId: before?.stsId,
      mode: before?.mode,
      status: before?.status,
    });
  });

  test('guests are refused changes in the enrolling channel too, as users.info says with the bot token; they may look', async () => {
    const before = await hosted();
    const asked = slack.callsTo('users.info').length;
    const guest = ':no_entry: Guests cannot change a hosted domain; nothing was changed.';
    const typed = await answerOf(command(`host ${D} mode none`, { team: 'T1', channel: 'C1', user: 'UG' }));
    expect(typed.text).toContain(guest);
    const clicked = await answerOf(
      click('mtasts_host_stop', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1', user: 'UU' }),
    );
    expect(clicked.text).toContain(guest);
    expect(await hosted()).toEqual(before);
    const calls = slack.callsTo('users.info').slice(asked);
    expect(calls.map((c) => [c.body.user, c.token])).toEqual([
      ['UG', 'xoxb-test'],
      ['UU', 'xoxb-test'],
    ]);
    const shown = await answerOf(command(`host ${D}`, { team: 'T1', channel: 'C1', user: 'UG' }));
    expect(textOf(shown)).toContain('mtasts_host_stop'); // the buttons are the channel's; the click is checked
  });

  test.each([
    [
      'missing_scope',
      { json: { ok: false, error: 'missing_scope', needed: 'users:read' } },
      'users.info: missing_scope), and guests may not change a hosted domain, so nothing was changed. This installation lacks the `users:read` scope',
    ],
    ['user_not_found', { json: { ok: false, error: 'user_not_found' } }, '(users.info: user_not_found)'],
    [
      'an answer without the guest flags',
      { json: { ok: true, user: { id: 'U1', name: 'admin' } } },
      '(users.info: no guest flag)',
    ],
    [
      'an answer about someone else',
      { json: { ok: true, user: { id: 'U2', is_restricted: false } } },
      '(users.info: no such active user)',
    ],
    ['no answer', 'hold' as const, '(users.info: no answer in time)'],
  ])('users.info failing (%s) refuses the change with a clear message', async (_, reply, words) => {
    const before = await hosted();
    if (reply === 'hold') slack.holdNext('users.info');
    else slack.answerNext('users.info', 1, reply);
    const body = await answerOf(command(`host ${D} max-age 86400`, { team: 'T1', channel: 'C1' }));
    expect(body.text).toMatch(
      /^:no_entry: Slack did not confirm that you are a full member of this workspace/,
    );
    expect(body.text).toContain(words);
    expect(await hosted()).toEqual(before);
  });

  test('Stop hosting serves mode none first, with a new id, and says until when', async () => {
    const before = await hosted();
    const body = await answerOf(
      click('mtasts_host_stop', value(D, 'T1', 'C1'), { team: 'T1', channel: 'C1' }),
    );
    const after = await hosted();
    expect(after?.status).toBe('leaving');
    expect(after?.stsId).not.toBe(before?.stsId);
    expect(await rig.runtime.hosting?.policyFor(`mta-sts.${D}`)).toContain('mode: none');
    expect(body.response_type).toBe('in_channel');
    expect(textOf(body)).toContain('mode: none');
    expect(textOf(body)).toContain(`id=${after?.stsId}`);
    expect(textOf(body)).not.toContain('mtasts_host_stop'); // already on the way out
    // The CNAME must go, and only once DNS has carried the mode none id for the old max_age.
    expect(after?.leavingUntil).toBeTruthy();
    expect(mrkdwn(body)).toContain(
      `is served with id \`${after?.stsId}\` (publish it) until DNS has carried that id for the old max_age (${after?.leavingUntil} at the earliest); then hosting ends and the CNAME \`mta-sts.${D}\` must go. Not before: removing it sooner would break senders that cached the policy.`,
    );
    expect(textOf(body)).not.toContain('may go');
  });

  test('command arguments: a bad action or mode is answered with the usage', async () => {
    for (const text of [
      `host ${D} frobnicate`,
      `host ${D} mode strict`,
      `host ${D} max-age soon`,
      'host -x-',
    ]) {
      const r = (await command(text, { team: 'T1', channel: 'C1' }).sent).json();
      expect(r.response_type).toBe('ephemeral');
      expect(String(r.text)).toMatch(/^:warning: .*`\/mtasts host example.com/);
    }
  });
});

describe('the setup form: Let the bot host it', () => {
  const F = 'form.test';
  const submit = (serve: string, mode: string, team = 'T1') => {
    const field = (v: Record<string, unknown>) => ({ mtasts_setup_input: v });
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
        private_metadata: value(F, team, 'C1'),
        state: {
          values: {
            serve: field({ type: 'static_select', selected_option: { value: serve } }),
            mode: field({ type: 'static_select', selected_option: { value: mode } }),
            max_age: field({ type: 'plain_text_input', value: '86400' }),
            mx: field({ type: 'plain_text_input', value: `mail.${F}` }),
            rua: field({ type: 'plain_text_input', value: '' }),
          },
        },
      },
    };
    return sendSigned(`${rig.url}/slack/events`, SECRET, { payload: JSON.stringify(payload) });
  };

  test('the form offers it when hosting is on', async () => {
    lab.set(F, { MX: [{ preference: 10, exchange: `mail.${F}` }] });
    const before = slack.callsTo('views.open').length;
    await command(`setup ${F}`, { team: 'T1', channel: 'C1' }).sent;
    await slack.waitFor(() => slack.callsTo('views.open').length > before);
    const view = textOf(slack.callsTo('views.open').at(-1)?.body);
    expect(view).toContain('Let the bot host it');
    expect(view).toContain('\\"block_id\\":\\"serve\\"');
  });

  test('enforce at the start is refused under the mode field; testing enrolls with the form values', async () => {
    const early = await submit('bot', 'enforce');
    expect(early.json()).toMatchObject({
      response_action: 'errors',
      errors: { mode: expect.stringContaining('testing') },
    });
    expect(await new HostingStore(rig.runtime.db).get(F)).toBeUndefined();
    const before = slack.callsTo('chat.postEphemeral').length;
    expect((await submit('bot', 'testing')).status).toBe(200);
    await slack.waitFor(() => slack.callsTo('chat.postEphemeral').length > before);
    const h = await new HostingStore(rig.runtime.db).get(F);
    expect(h).toMatchObject({
      owner: 'T1',
      channelId: 'C1',
      status: 'pending',
      mode: 'testing',
      maxAge: 86400,
    });
    expect(h?.mx).toEqual([`mail.${F}`]);
    const answer = slack.callsTo('chat.postEphemeral').at(-1)?.body;
    expect(answer).toMatchObject({ channel: 'C1', user: 'U9' });
    expect(textOf(answer)).toContain(`mta-sts.${F}. 3600 IN CNAME ${h?.token}.${HOSTING_NAME}.`);
  });

  test('another workspace choosing it for the same pending domain gets its own CNAME target, not the first', async () => {
    const before = slack.callsTo('chat.postEphemeral').length;
    await submit('bot', 'testing', 'T2');
    await slack.waitFor(() => slack.callsTo('chat.postEphemeral').length > before);
    const answer = slack.callsTo('chat.postEphemeral').at(-1)?.body;
    const first = (await new HostingStore(rig.runtime.db).get(F))?.token;
    expect(textOf(answer)).toMatch(
      new RegExp(`IN CNAME [a-z2-7]{20}\\.${HOSTING_NAME.replace(/\./g, '\\.')}\\.`),
    );
    expect(textOf(answer)).not.toContain(`${first}.${HOSTING_NAME}`);
    expect((await new HostingStore(rig.runtime.db).get(F))?.owner).toBe('T1');
  });
});

describe('hosting off', () => {
  test('/mtasts host says so and what to set; nothing is enrolled', async () => {
    const off = await startSlackRig(lab, slack, { secret: SECRET, databasePath: join(dir, 'off.sqlite') });
    try {
      const r = await sendSigned(
        `${off.url}/slack/events`,
        SECRET,
        slashCommand('host off.test', { team: 'T1', channel: 'C1', responseUrl: slack.responseUrl('off') }),
      );
      expect(r.json()).toMatchObject({
        response_type: 'ephemeral',
        text: expect.stringContaining('MTASTS_HOSTING_NAME'),
      });
      expect(off.runtime.hosting).toBeNull();
      expect(await new HostingStore(off.runtime.db).get('off.test')).toBeUndefined();
    } finally {
      await off.close();
    }
  });
});
