import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { slackPoster } from '../../src/slack/poster.js';
import { CLI_OWNER, HostingStore } from '../../src/store/hosting.js';
import { LOG_DESTINATION, WATCH_LIST_TEAM } from '../../src/store/subscriptions.js';
import { testConfig } from '../support/config.js';
import { type ApiCall, FakeSlack } from '../support/fake-slack.js';
import { Lab } from '../support/lab.js';

/**
 * The monitor's side of hosted MTA-STS on the lab's DNS, with the alerts posted to the fake Slack: certificate events
 * (issued once, failures spaced, renewals silent), an MX change in testing applied at once, the name lost, and only the
 * owning workspace's channels told; rival pending requests, the losers told once that theirs was dropped.
 */

const HOSTING_NAME = 'bot.hosting.test';
const D = 'certs.test';
const HOUR = 3_600_000;
let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let clock = new Date('2026-12-01T10:00:00.000Z');
const logs: string[] = [];

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  const bot = lab.newAddress();
  lab.set(HOSTING_NAME, { A: [bot] });
  lab.set(`*.${HOSTING_NAME}`, { A: [bot] });
  lab.set(D, { MX: [{ preference: 10, exchange: `mx1.${D}` }] });
  runtime = await openRuntime(
    testConfig({
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-hostmon-')), 'm.sqlite'),
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_TIMEOUT_MS: '1000',
      MTASTS_HOSTING_NAME: HOSTING_NAME,
      MTASTS_REMINDER_HOURS: '6',
    }),
    null,
    { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(`error ${m}`) },
    {
      engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
      poster: slackPoster('xoxb-test', slack.apiUrl),
      now: () => clock,
      monitor: { jitterMs: 0, delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 0 } },
    },
  );
});
afterAll(async () => {
  await runtime.monitor.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

const posts = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel);
const saying = (channel: string, words: string) =>
  posts(channel).filter((c) => JSON.stringify(c.body).includes(words));
const hosted = () => new HostingStore(runtime.db).get(D);

async function pass(): Promise<void> {
  const run = runtime.monitor.runPass();
  if (!run) throw new Error('a pass is already running');
  await run;
}

describe('hosted domains in the monitor', () => {
  test('enrolled from C1; the owner also watches it in C3, another workspace in C2', async () => {
    const service = runtime.hosting;
    if (!service) throw new Error('hosting is on in this test');
    const added = await service.add(D, 'T1', 'C1');
    expect(added.ok).toBe(true);
    await runtime.subscriptions.watch('T1', 'C3', D, 'U1', 10, clock);
    await runtime.subscriptions.watch('T2', 'C2', D, 'U2', 10, clock);
    lab.set(`mta-sts.${D}`, {
      CNAME: `${(await new HostingStore(runtime.db).get(D))?.token}.${HOSTING_NAME}`,
    });
    await pass();
    expect((await hosted())?.status).toBe('active');
    expect(saying('C1', 'hosted MTA-STS is live')).toHaveLength(1);
    expect(saying('C3', 'hosted MTA-STS is live')).toHaveLength(1);
    expect(saying('C2', 'hosted MTA-STS')).toHaveLength(0);
    expect(await runtime.subscriptions.get('T1', 'C1', D)).toBeDefined();
  });

  test('a certificate issued is told once to the owning channels; a renewal is silent', async () => {
    const notAfter = '2027-03-01T10:00:00.000Z';
    await runtime.certificateEvents({
      name: `mta-sts.${D}`,
      kind: 'issued',
      at: clock.toISOString(),
      notAfter,
    });
    await slack.waitFor(
      () =>
        saying('C1', 'certificate issued').length === 1 && saying('C3', 'certificate issued').length === 1,
    );
    expect(JSON.stringify(saying('C1', 'certificate issued')[0]?.body)).toContain('2027-03-01T10:00:00Z');
    const hostingNews = () => saying('C1', '/mtasts host ').length;
    const told = hostingNews();
    await runtime.certificateEvents({
      name: `mta-sts.${D}`,
      kind: 'renewed',
      at: clock.toISOString(),
      notAfter,
    });
    await pass();
    expect(saying('C1', 'certificate issued')).toHaveLength(1);
    expect(hostingNews()).toBe(told);
    expect(saying('C2', 'certificate issued')).toHaveLength(0);
    expect((await hosted())?.certificate?.state).toBe('renewed');
  });

  test('failures: told with the error and the retry, at most once per reminder interval', async () => {
    const failed = (retryAt: string) =>
      runtime.certificateEvents({
        name: `MTA-STS.${D}.`,
        kind: 'failed',
        at: clock.toISOString(),
        error: 'urn:ietf:params:acme:error:connection <!channel>',
        retryAt,
      });
    await failed('2026-12-01T11:00:00.000Z');
    await slack.waitFor(() => saying('C1', 'could not be obtained').length === 1);
    const text = JSON.stringify(saying('C1', 'could not be obtained')[0]?.body);
    expect(text).toContain('2026-12-01T11:00:00Z');
    expect(text).toContain('&lt;!channel&gt;');
    expect(text).not.toContain('<!channel>');
    clock = new Date(clock.getTime() + HOUR);
    await failed('2026-12-01T13:00:00.000Z');
    await pass();
    expect(saying('C1', 'could not be obtained')).toHaveLength(1);
    clock = new Date(clock.getTime() + 7 * HOUR);
    await failed('2026-12-01T20:00:00.000Z');
    await slack.waitFor(() => saying('C1', 'could not be obtained').length === 2);
    expect(saying('C2', 'could not be obtained')).toHaveLength(0);
    // A name nobody hosts: recorded nowhere, told to nobody.
    await runtime.certificateEvents({
      name: 'mta-sts.unknown.test',
      kind: 'issued',
      at: clock.toISOString(),
    });
    await pass();
    expect(
      slack.callsTo('chat.postMessage').filter((c) => JSON.stringify(c.body).includes('unknown.test')),
    ).toHaveLength(0);
    expect(logs.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  test('an MX change in testing is applied at once, with the new id to publish; no second alert for it', async () => {
    const before = await hosted();
    lab.set(D, { MX: [{ preference: 10, exchange: `mx2.${D}` }] });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    const after = await hosted();
    expect(after?.mx).toEqual([`mx2.${D}`]);
    expect(after?.stsId).not.toBe(before?.stsId);
    const applied = saying('C1', 'the hosted policy follows');
    expect(applied).toHaveLength(1);
    expect(JSON.stringify(applied[0]?.body)).toContain(`v=STSv1; id=${after?.stsId}`);
    expect(
      saying('C1', `publish the new id`).filter((c) => JSON.stringify(c.body).includes(after?.stsId ?? '?')),
    ).toHaveLength(0);
    await pass();
    expect(saying('C1', 'the hosted policy follows')).toHaveLength(1);
    expect(saying('C1', 'a policy update is proposed')).toHaveLength(0);
    expect(saying('C2', 'hosted policy')).toHaveLength(0);
  });

  test('the name pointed elsewhere: told once; back: told once', async () => {
    lab.set(`mta-sts.${D}`, { A: [lab.newAddress()] });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    await pass();
    expect(saying('C1', 'no longer points at the bot')).toHaveLength(1);
    expect((await hosted())?.nameLostAt).not.toBeNull();
    lab.set(`mta-sts.${D}`, {
      CNAME: `${(await new HostingStore(runtime.db).get(D))?.token}.${HOSTING_NAME}`,
    });
    await pass();
    await pass();
    expect(saying('C1', 'points at the bot again')).toHaveLength(1);
    expect(saying('C2', 'points at the bot')).toHaveLength(0);
    expect(logs.filter((l) => l.startsWith('error monitor: host'))).toEqual([]);
  });
  test('unwatched everywhere, the hosted domain is still followed: DNS read directly, the owning channel told', async () => {
    await runtime.subscriptions.unwatch('T1', 'C1', D);
    await runtime.subscriptions.unwatch('T1', 'C3', D);
    await runtime.subscriptions.unwatch('T2', 'C2', D);
    const id = (await hosted())?.stsId ?? '?';
    const reminders = (channel: string) =>
      saying(channel, 'publish the new id').filter((c) => JSON.stringify(c.body).includes(id));
    const before = reminders('C1').length;
    clock = new Date(clock.getTime() + 7 * HOUR);
    await pass();
    expect(reminders('C1')).toHaveLength(before + 1);
    expect(reminders('C3')).toHaveLength(0);
    expect(reminders('C2')).toHaveLength(0);
    lab.set(`_mta-sts.${D}`, { TXT: [`v=STSv1; id=${id}`] });
    await pass();
    expect(
      saying('C1', `DNS now carries id`).filter((c) => JSON.stringify(c.body).includes(id)),
    ).toHaveLength(1);
    lab.set(D, { MX: [{ preference: 10, exchange: `mx3.${D}` }] });
    clock = new Date(clock.getTime() + HOUR);
    await pass();
    expect((await hosted())?.mx).toEqual([`mx3.${D}`]);
    expect(saying('C1', 'the hosted policy follows')).toHaveLength(2);
    expect((await runtime.checks.last(D))?.evidence.mx.hosts.map((h) => h.host)).not.toEqual([`mx3.${D}`]); // not checked
    lab.set(D, { servfail: true });
    lab.set(`_mta-sts.${D}`, { servfail: true });
    const told = saying('C1', 'publish the new id').length;
    clock = new Date(clock.getTime() + 7 * HOUR);
    await pass(); // a failed lookup tells nothing: no proposal, and no reminder although the interval has passed
    expect((await hosted())?.mx).toEqual([`mx3.${D}`]);
    expect(saying('C1', 'publish the new id')).toHaveLength(told);
    expect(logs.filter((l) => l.startsWith('error monitor: '))).toEqual([]);
  });

  test('a domain the command line hosts joins the watch list when it goes live, its alerts to the log', async () => {
    const service = runtime.hosting;
    if (!service) throw new Error('hosting is on in this test');
    const C = 'cli-hosted.test';
    lab.set(C, { MX: [{ preference: 10, exchange: `mx1.${C}` }] });
    expect((await service.add(C, CLI_OWNER, null)).ok).toBe(true);
    lab.set(`mta-sts.${C}`, {
      CNAME: `${(await new HostingStore(runtime.db).get(C))?.token}.${HOSTING_NAME}`,
    });
    await pass();
    expect((await runtime.subscriptions.forDomain(C)).map((s) => [s.teamId, s.channelId])).toEqual([
      [WATCH_LIST_TEAM, LOG_DESTINATION],
    ]);
    expect(saying(LOG_DESTINATION, 'hosted MTA-STS is live')).toHaveLength(1);
  });

  test('rival pending requests: the one whose target DNS shows goes live; the others are told once they were dropped, naming nothing of it', async () => {
    const service = runtime.hosting;
    if (!service) throw new Error('hosting is on in this test');
    const R = 'rival.test';
    lab.set(R, { MX: [{ preference: 10, exchange: `mx1.${R}` }] });
    const first = await service.add(R, 'T4', 'C4');
    const second = await service.add(R, 'T5', 'C5');
    const third = await service.add(R, CLI_OWNER, null);
    if (!first.ok || !second.ok || !third.ok) throw new Error('three pending requests');
    expect(new Set([first, second, third].map((r) => r.hosted.token)).size).toBe(3);
    await pass();
    const about = (channel: string, words: string) =>
      saying(channel, words).filter((c) => JSON.stringify(c.body).includes(R));
    expect(about('C4', R)).toHaveLength(0); // nothing in DNS yet: nothing to tell
    lab.set(`mta-sts.${R}`, { CNAME: `${second.hosted.token}.${HOSTING_NAME}` });
    await pass();
    const won = await new HostingStore(runtime.db).get(R);
    expect(won).toMatchObject({ owner: 'T5', channelId: 'C5', status: 'active' });
    expect(about('C5', 'hosted MTA-STS is live')).toHaveLength(1);
    expect(about('C5', 'dropped')).toHaveLength(0);
    const words = `Another enrollment proved control of \`mta-sts.${R}\` first (its CNAME target is in DNS); your pending request was dropped. If the domain is yours, check who changed the CNAME.`;
    for (const loser of ['C4', LOG_DESTINATION]) {
      const told = about(loser, 'your pending request was dropped');
      expect(told).toHaveLength(1);
      expect(JSON.stringify(told[0]?.body)).toContain(JSON.stringify(words).slice(1, -1));
      for (const theirs of [second.hosted.token, won?.stsId ?? '?', 'T5', 'C5', `mx1.${R}`])
        expect(JSON.stringify(told[0]?.body)).not.toContain(theirs);
      expect(about(loser, 'is live')).toHaveLength(0);
    }
    expect(await service.list('T4')).toEqual([]);
    clock = new Date(clock.getTime() + 7 * HOUR);
    await pass();
    expect(about('C4', 'dropped')).toHaveLength(1);
    expect(about(LOG_DESTINATION, 'dropped')).toHaveLength(1);
    expect(about('C5', 'is live')).toHaveLength(1);
    expect(logs.filter((l) => l.startsWith('error monitor: '))).toEqual([]);
  });

  test("the winner's own Check DNS now before any pass: the next pass still tells the loser, once, in the loser's channels only", async () => {
    const service = runtime.hosting;
    if (!service) throw new Error('hosting is on in this test');
    const E = 'early.test';
    lab.set(E, { MX: [{ preference: 10, exchange: `mx1.${E}` }] });
    const first = await service.add(E, 'T6', 'C6');
    await runtime.subscriptions.watch('T6', 'C8', E, 'U6', 10, clock); // the loser's workspace also watches it in C8
    const rival = await service.add(E, 'T7', 'C7');
    if (!first.ok || !rival.ok) throw new Error('two pending requests');
    lab.set(`mta-sts.${E}`, { CNAME: `${rival.hosted.token}.${HOSTING_NAME}` });
    const verified = await service.verify(E, 'T7');
    expect(verified).toMatchObject({ ok: true, hosted: { owner: 'T7', status: 'active' } });
    const about = (channel: string, words: string) =>
      saying(channel, words).filter((c) => JSON.stringify(c.body).includes(E));
    expect(about('C6', 'dropped')).toHaveLength(0); // told by the pass, not by the look
    await pass();
    for (const loser of ['C6', 'C8']) {
      const told = about(loser, 'your pending request was dropped');
      expect(told).toHaveLength(1);
      for (const theirs of [rival.hosted.token, 'T7', 'C7'])
        expect(JSON.stringify(told[0]?.body)).not.toContain(theirs);
      expect(about(loser, 'is live')).toHaveLength(0);
    }
    expect(about('C7', 'dropped')).toHaveLength(0);
    expect(about('C7', 'hosted MTA-STS is live')).toHaveLength(1);
    clock = new Date(clock.getTime() + 7 * HOUR);
    await pass();
    expect(about('C6', 'dropped')).toHaveLength(1);
    expect(about('C8', 'dropped')).toHaveLength(1);
    expect(await service.unannouncedEvents()).toEqual([]);
    expect(logs.filter((l) => l.startsWith('error monitor: '))).toEqual([]);
  });
});
