import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { DEFAULT_DELIVERY } from '../../src/monitor/deliver.js';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { alertMessage } from '../../src/slack/blocks/alert.js';
import { type Block, LIMITS } from '../../src/slack/blocks/common.js';
import { homeView } from '../../src/slack/blocks/home.js';
import { type MailboxView, mailboxBlocks } from '../../src/slack/blocks/mailbox.js';
import { sql } from '../../src/store/db.js';
import { ImapStore } from '../../src/store/imap.js';
import { type ImapReaderDeps, ImapWatcher, type PassResult, readOnce } from '../../src/tlsrpt/imap.js';
import { ingestEmail } from '../../src/tlsrpt/intake.js';
import { testConfig } from '../support/config.js';
import { type DovecotUser, TestDovecot } from '../support/dovecot.js';
import { type ApiCall, FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';
import { TestCa } from '../support/test-ca.js';

/**
 * The TLS-RPT mailbox's status and its day-long failure alert, through the real pieces: a real dovecot on loopback
 * refusing the login (a wrong password, or a refusal whose reason is hostile text), the reader on a clock the test
 * moves, the app's SQLite outbox and Slack poster posting to a fake Slack Web API, and signed requests to the running
 * app for `/mtasts reports` and App Home.
 */

const HOUR = 3_600_000;
const SECRET = 'imap-alert-signing-secret';
/** A refusal reason dovecot sends as it is (passwd-file "nologin reason=…", which cannot hold spaces). */
const HOSTILE = '<!channel>*pwned*`x`<https://evil.example|click>';

const ca = new TestCa();
const USERS: DovecotUser[] = [
  { name: 'ops', password: 'pw-ops-1' },
  { name: 'watcher', password: 'pw-watcher-1' },
  { name: 'quiet', password: 'pw-quiet-1' },
  { name: 'seen', password: 'pw-seen-1' },
  { name: 'evil', password: 'pw-evil-1', extra: `nologin reason=${HOSTILE}` },
  { name: 'teams', password: 'pw-teams-1' },
];

let dovecot: TestDovecot | null = null;
try {
  dovecot = await TestDovecot.start(ca, USERS);
} catch (err) {
  console.warn(
    `\n*** test/tlsrpt/imap-alert.test.ts: THE IMAP ALERT TESTS ARE SKIPPED: ${(err as Error).message}\n*** (.ci/run installs dovecot-imapd)\n`,
  );
}
const dv = () => dovecot as TestDovecot;

let slack: FakeSlack;
beforeAll(async () => {
  slack = await FakeSlack.start();
});
afterAll(async () => {
  await slack.stop();
  await dovecot?.stop();
});

/** The clock the app and the reader read: a day passes when the test says so. */
class Clock {
  private t = Date.parse('2026-11-29T08:00:00.000Z');
  readonly now = () => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
}

const open: Rig[] = [];
afterEach(async () => {
  for (const rig of open.splice(0)) await rig.close();
});

/** The app's runtime over one mailbox of the test dovecot, logging into `logs`; its reader's passes on `clock`. */
class Rig {
  readonly logs: string[] = [];
  runtime!: Runtime;
  readonly clock = new Clock();
  queued = 0;
  private app: SlackApp | null = null;
  url = '';

  constructor(
    readonly user: string,
    private readonly env: Record<string, string>,
    readonly dbPath = join(mkdtempSync(join(tmpdir(), 'mtasts-imap-alert-')), 'bot.sqlite'),
  ) {}

  /** The rig with its runtime open. */
  static async open(...args: ConstructorParameters<typeof Rig>): Promise<Rig> {
    const rig = new Rig(...args);
    await rig.init();
    return rig;
  }

  private async init(): Promise<void> {
    const { user, env, dbPath } = this;
    const line = (level: string) => (m: string) => this.logs.push(`${level} ${m}`);
    this.runtime = await openRuntime(
      testConfig({
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_API_URL: slack.apiUrl,
        DATABASE_PATH: dbPath,
        MTASTS_DNS_SERVERS: '127.0.0.1:9',
        MTASTS_TLSRPT_IMAP_URL: dv().url(user),
        MTASTS_TLSRPT_IMAP_PASSWORD: USERS.find((u) => u.name === user)?.password ?? '',
        ...env,
      }),
      null,
      { info: line('info'), warn: line('warn'), error: line('error') },
      {
        now: this.clock.now,
        monitor: { delivery: { ...DEFAULT_DELIVERY, channelPacingMs: 5, random: () => 0.5 } },
      },
    );
    open.push(this);
  }

  get settings() {
    const s = this.runtime.config.tlsrptImap;
    if (!s) throw new Error('no mailbox configured');
    return s;
  }

  deps(): ImapReaderDeps {
    const line = (level: string) => (m: string) => this.logs.push(`${level} ${m}`);
    return {
      settings: this.settings,
      db: this.runtime.db,
      ingest: (raw) => ingestEmail(raw, { ...this.runtime.intake, onStored: () => {} }),
      now: this.clock.now,
      logger: { info: line('info'), warn: line('warn'), error: line('error') },
      tls: { ca: [ca.rootPem] },
      onQueued: () => {
        this.queued++;
      },
    };
  }

  /** One pass, as `mtasts ingest-imap --once` makes it, at the clock's time. */
  pass(): Promise<PassResult> {
    return readOnce(this.deps());
  }

  status() {
    return new ImapStore(this.runtime.db).status(this.settings.account);
  }

  /** The outbox, as (event key, team, channel, thread) rows. */
  async outbox() {
    return (
      await this.runtime.db.all<{
        event_key: string;
        team_id: string;
        channel_id: string;
        thread_event_key: string | null;
      }>(sql`SELECT event_key, team_id, channel_id, thread_event_key FROM outbox ORDER BY id`)
    ).map((r) => [r.event_key, r.team_id, r.channel_id, r.thread_event_key]);
  }

  async start(): Promise<void> {
    this.app = buildSlackApp(this.runtime);
    this.url = `http://127.0.0.1:${await this.app.start()}`;
  }

  /** A signed `/mtasts …` through the running app; its ack. */
  async command(text: string, where: { team: string; channel: string }): Promise<Record<string, unknown>> {
    const fields = slashCommand(text, {
      ...where,
      responseUrl: slack.responseUrl(`imap-alert-${++commands}`),
    });
    const res = await sendSigned(`${this.url}/slack/events`, SECRET, fields);
    expect(res.status).toBe(200);
    return res.json();
  }

  /** Opens App Home as `user` of `team`; the view the app published. */
  async home(team: string, user: string): Promise<{ type: string; blocks: unknown[] }> {
    const before = slack.callsTo('views.publish').length;
    const event = {
      token: 'legacy',
      team_id: team,
      api_app_id: 'A1',
      type: 'event_callback',
      event_id: `Ev-${team}-${user}-${before}`,
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'app_home_opened', user, channel: 'DH', tab: 'home', event_ts: '1.2' },
      authorizations: [{ team_id: team, user_id: 'UBOT', is_bot: true }],
    };
    const res = await sendSigned(
      `${this.url}/slack/events`,
      SECRET,
      {},
      { rawBody: JSON.stringify(event), contentType: 'application/json' },
    );
    expect(res.status).toBe(200);
    await slack.waitFor(() => slack.callsTo('views.publish').length > before);
    const call = slack.callsTo('views.publish')[before];
    expect(call?.body.user_id).toBe(user);
    return JSON.parse(String(call?.body.view)) as { type: string; blocks: unknown[] };
  }

  async close(): Promise<void> {
    await this.app?.stop();
    await this.runtime.monitor.stop();
    await this.runtime.close();
  }
}

/** Each command's response_url differs, so that no two signed requests are the same (a replay is refused). */
let commands = 0;
const postsTo = (channel: string): ApiCall[] =>
  slack.callsTo('chat.postMessage').filter((c) => c.body.channel === channel);
const failed = (r: PassResult) => expect(r.kind).toBe('failed');
/** Every text of a message or view, flattened, to look for what a user would read. */
const textOf = (x: unknown) => JSON.stringify(x);

describe.skipIf(!dovecot)('a mailbox failing for a day is an alert to the operator channel', () => {
  test('exactly one alert to MTASTS_OPERATOR_CHANNEL, none to a customer channel; the recovery in its thread', async () => {
    const wrong = 'not-the-password-5';
    const rig = await Rig.open('ops', {
      MTASTS_OPERATOR_CHANNEL: 'COPS',
      MTASTS_TLSRPT_IMAP_PASSWORD: wrong,
    });
    const t0 = rig.clock.now().toISOString();
    // A customer's channel watches a domain: it gets alerts about that domain, never about the app's mailbox.
    await rig.runtime.subscriptions.watch('T1', 'CCUSTOMER', 'example.com', 'U1', 100, rig.clock.now());

    failed(await rig.pass());
    rig.clock.advance(23 * HOUR + 59 * 60_000);
    failed(await rig.pass());
    expect(await rig.outbox()).toEqual([]);
    expect(await rig.status()).toMatchObject({ failingSince: t0 });

    rig.clock.advance(60_000); // 24 hours since the first failed pass
    const day = await rig.pass();
    failed(day);
    const error = day.kind === 'failed' ? day.error : '';
    expect(error).toMatch(/refused the login of ops/);
    expect(await rig.outbox()).toEqual([[`imap-failing ${t0}`, '', 'COPS', null]]);
    expect(rig.queued).toBe(1);
    expect(rig.logs.filter((l) => l.includes('has failed every pass'))).toEqual([
      `error tlsrpt imap: ${rig.settings.account}: the mailbox has failed every pass since ${t0} (24 hours; last: ${error}): alerted in the operator channel COPS`,
    ]);

    // Later passes of the same failure, in this process or another one on the same database (the CLI), add nothing.
    rig.clock.advance(HOUR);
    failed(await rig.pass());
    const cli = await Rig.open(
      'ops',
      { MTASTS_OPERATOR_CHANNEL: 'COPS', MTASTS_TLSRPT_IMAP_PASSWORD: wrong },
      rig.dbPath,
    );
    cli.clock.advance(25 * HOUR + 60_000);
    failed(await cli.pass());
    expect(await rig.outbox()).toHaveLength(1);
    expect(rig.queued + cli.queued).toBe(1);

    await rig.runtime.monitor.deliver();
    expect(postsTo('CCUSTOMER')).toEqual([]);
    const [alert] = postsTo('COPS');
    expect(postsTo('COPS')).toHaveLength(1);
    expect(alert?.token).toBe('xoxb-test');
    expect(alert?.body.text).toBe(`TLS-RPT mailbox failing since ${t0}: ${rig.settings.account}`);
    const shown = textOf(alert?.body.blocks);
    expect(shown).toContain('The TLS-RPT mailbox has failed for 24 hours');
    expect(shown).toContain('refused the login of ops');
    expect(shown).not.toContain(wrong);
    expect(shown).not.toContain('mtasts_alert'); // no Mute / Re-check: it is not about a domain

    // The administrator sets the password the app has: the next pass reads the mailbox, and says so in the thread.
    await dv().setPassword('ops', wrong);
    rig.clock.advance(HOUR);
    expect((await rig.pass()).kind).toBe('read');
    expect((await rig.outbox())[1]).toEqual([`imap-recovered ${t0}`, '', 'COPS', `imap-failing ${t0}`]);
    expect(rig.queued).toBe(2);
    await rig.runtime.monitor.deliver();
    const posts = postsTo('COPS');
    expect(posts).toHaveLength(2);
    expect(posts[1]?.body.thread_ts).toBe(alert?.ts);
    expect(posts[1]?.body.text).toBe(`TLS-RPT mailbox read again: ${rig.settings.account}`);
    expect(textOf(posts[1]?.body.blocks)).toContain('after failing for 26 hours');
    expect(await rig.status()).toMatchObject({ failingSince: null, lastError: null });

    // A failure shorter than a day is neither alerted nor recovered.
    await dv().setPassword('ops', 'changed-again-3');
    rig.clock.advance(HOUR);
    failed(await rig.pass());
    rig.clock.advance(23 * HOUR);
    failed(await rig.pass());
    await dv().setPassword('ops', wrong);
    rig.clock.advance(HOUR);
    expect((await rig.pass()).kind).toBe('read');
    expect(await rig.outbox()).toHaveLength(2);
    await rig.runtime.monitor.deliver();
    expect(postsTo('COPS')).toHaveLength(2);
    expect(postsTo('CCUSTOMER')).toEqual([]);
  });

  test("the app's reader alerts from its own pass and the outbox is delivered at once", async () => {
    const rig = await Rig.open('watcher', {
      MTASTS_OPERATOR_CHANNEL: 'T1:CWATCH',
      MTASTS_TLSRPT_IMAP_PASSWORD: 'nope-77',
    });
    failed(await rig.pass());
    rig.clock.advance(24 * HOUR);
    // As main.ts wires it: a queued alert starts a delivery.
    const watcher = new ImapWatcher({ ...rig.deps(), onQueued: () => void rig.runtime.monitor.deliver() });
    watcher.start();
    try {
      await slack.waitFor(() => postsTo('CWATCH').length === 1, 20_000);
    } finally {
      await watcher.stop();
    }
    expect(await rig.outbox()).toEqual([[expect.stringMatching(/^imap-failing /), 'T1', 'CWATCH', null]]);
    expect(textOf(postsTo('CWATCH')[0]?.body.blocks)).toContain('has failed for 24 hours');
  });

  test('without MTASTS_OPERATOR_CHANNEL: one log line saying since when and how to set it, nothing posted', async () => {
    const rig = await Rig.open('quiet', { MTASTS_TLSRPT_IMAP_PASSWORD: 'nope-88' });
    await rig.runtime.subscriptions.watch('T1', 'CQUIET', 'example.com', 'U1', 100, rig.clock.now());
    const t0 = rig.clock.now().toISOString();
    for (let h = 0; h <= 26; h++) {
      failed(await rig.pass());
      rig.clock.advance(HOUR);
    }
    const lines = rig.logs.filter((l) => l.includes('has failed every pass'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^error tlsrpt imap: imaps://quiet@localhost:\\d+: the mailbox has failed every pass since ${t0.replace(/\./g, '\\.')} \\(24 hours; last: .*refused the login of quiet.*\\)\\. No alert is posted: set MTASTS_OPERATOR_CHANNEL to the id of the channel for it \\(T0123ABCD:C0123ABCD with OAuth\\)$`,
      ),
    );
    expect(await rig.outbox()).toEqual([]);
    expect(rig.queued).toBe(0);
    await dv().setPassword('quiet', 'nope-88');
    expect((await rig.pass()).kind).toBe('read');
    expect(await rig.outbox()).toEqual([]);
    await rig.runtime.monitor.deliver();
    expect(postsTo('CQUIET')).toEqual([]);
  });
});

describe.skipIf(!dovecot)("the mailbox's status in Slack, for the operator only", () => {
  test('single workspace: /mtasts reports and App Home show when it was last read and the error', async () => {
    const rig = await Rig.open('seen', {
      MTASTS_TLSRPT_IMAP_PASSWORD: 'bad-pass-1',
      MTASTS_OPERATOR_CHANNEL: 'CSEEN',
    });
    await rig.start();
    await rig.runtime.subscriptions.watch('T1', 'C1', 'example.com', 'U1', 100, rig.clock.now());
    const account = rig.settings.account;

    // Before any pass.
    let answer = textOf(await rig.command('reports example.com', { team: 'T1', channel: 'C1' }));
    expect(answer).toContain('No TLS reports for');
    expect(answer).toContain(`*TLS-RPT mailbox* \`${account}\`, folder \`INBOX\``);
    expect(answer).toContain('Not read yet');

    // Failing.
    const t0 = rig.clock.now().toISOString().replace('.000Z', 'Z');
    failed(await rig.pass());
    rig.clock.advance(5 * HOUR);
    failed(await rig.pass());
    rig.clock.advance(30 * 60_000);
    answer = textOf(await rig.command('reports example.com', { team: 'T1', channel: 'C1' }));
    expect(answer).toContain(`:x: *Failing* since ${t0} (6 hours); never read yet.`);
    expect(answer).toMatch(/Last error \(2026-11-29T13:00:00Z\): `localhost:\d+ refused the login of seen/);
    expect(answer).not.toContain('bad-pass-1');
    // A channel that does not watch the domain is told to watch it first; the operator still sees the mailbox.
    answer = textOf(await rig.command('reports example.com', { team: 'T1', channel: 'C2' }));
    expect(answer).toContain('Watch example.com in this channel first');
    expect(answer).toContain(':x: *Failing* since');

    let home = textOf(await rig.home('T1', 'U1'));
    expect(home).toContain(`*TLS-RPT mailbox* \`${account}\``);
    expect(home).toContain(`:x: *Failing* since ${t0}`);
    expect(home).toContain('refused the login of seen');
    expect(home).not.toContain('bad-pass-1');

    // Read again.
    await dv().setPassword('seen', 'bad-pass-1');
    rig.clock.advance(HOUR);
    expect((await rig.pass()).kind).toBe('read');
    const readAt = rig.clock.now().toISOString().replace('.000Z', 'Z');
    home = textOf(await rig.home('T1', 'U1'));
    expect(home).toContain(`:white_check_mark: OK, last read ${readAt}.`);
    expect(home).not.toContain('Failing');
    answer = textOf(await rig.command('reports example.com', { team: 'T1', channel: 'C1' }));
    expect(answer).toContain(`OK, last read ${readAt}.`);
  });

  test('a hostile refusal from the server is shown inert: in the alert, /mtasts reports and App Home', async () => {
    const rig = await Rig.open('evil', { MTASTS_OPERATOR_CHANNEL: 'CEVIL' });
    await rig.start();
    await rig.runtime.subscriptions.watch('T1', 'C1', 'example.com', 'U1', 100, rig.clock.now());
    const first = await rig.pass(); // the right password: dovecot refuses the login with its hostile reason
    expect(first.kind === 'failed' && first.error).toContain(HOSTILE);
    rig.clock.advance(24 * HOUR);
    failed(await rig.pass());
    await rig.runtime.monitor.deliver();
    const alert = postsTo('CEVIL')[0];
    const shown = [
      textOf(alert?.body),
      textOf(await rig.command('reports example.com', { team: 'T1', channel: 'C1' })),
      textOf(await rig.home('T1', 'U1')),
    ];
    for (const text of shown) {
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<https://evil.example');
      expect(text).not.toContain('*pwned*`');
      // In a code span (where Slack reads neither mentions, links nor *bold*), escaped, its backtick made harmless.
      expect(text).toContain("(&lt;!channel&gt;*pwned*'x'&lt;https://evil.example|click&gt;)");
    }
  });

  test('several workspaces (OAuth): only the workspace of MTASTS_OPERATOR_CHANNEL sees it, and the alert goes there', async () => {
    const rig = await Rig.open('teams', {
      SLACK_BOT_TOKEN: '',
      SLACK_CLIENT_ID: 'cid.123',
      SLACK_CLIENT_SECRET: 'client-secret',
      SLACK_STATE_SECRET: 'a-long-random-state-secret',
      MTASTS_OPERATOR_CHANNEL: 'TOPS:COPSTEAM',
      MTASTS_TLSRPT_IMAP_PASSWORD: 'bad-pass-2',
      MTASTS_TLSRPT_IMAP_ALERT_HOURS: '2',
    });
    for (const [team, token] of [
      ['TOPS', 'xoxb-ops-workspace'],
      ['TCUST', 'xoxb-customer-workspace'],
    ] as const) {
      await rig.runtime.installations.storeInstallation({
        team: { id: team },
        enterprise: undefined,
        user: { id: 'U1', token: undefined, scopes: undefined },
        bot: { token, userId: 'UBOT', id: 'B1', scopes: ['commands', 'chat:write'] },
        isEnterpriseInstall: false,
      } as never);
      await rig.runtime.subscriptions.watch(team, 'C1', 'example.com', 'U1', 100, rig.clock.now());
    }
    await rig.start();
    failed(await rig.pass());
    rig.clock.advance(2 * HOUR); // MTASTS_TLSRPT_IMAP_ALERT_HOURS
    failed(await rig.pass());

    const ops = textOf(await rig.command('reports example.com', { team: 'TOPS', channel: 'C1' }));
    expect(ops).toContain(':x: *Failing* since');
    expect(ops).toContain('refused the login of teams');
    expect(textOf(await rig.home('TOPS', 'U1'))).toContain('refused the login of teams');

    for (const other of [
      await rig.command('reports example.com', { team: 'TCUST', channel: 'C1' }),
      await rig.home('TCUST', 'U1'),
    ]) {
      const text = textOf(other);
      expect(text).not.toContain('TLS-RPT mailbox');
      expect(text).not.toContain('teams@');
      expect(text).not.toContain('refused the login');
    }
    expect(textOf(await rig.command('reports example.com', { team: 'TCUST', channel: 'C1' }))).toContain(
      'No TLS reports for',
    );

    await rig.runtime.monitor.deliver();
    const posts = postsTo('COPSTEAM');
    expect(posts).toHaveLength(1);
    expect(posts[0]?.token).toBe('xoxb-ops-workspace');
    expect(textOf(posts[0]?.body.blocks)).toContain('has failed for 2 hours');
    expect(postsTo('C1')).toEqual([]);
  });
});

describe('MTASTS_OPERATOR_CHANNEL and MTASTS_TLSRPT_IMAP_ALERT_HOURS', () => {
  const config = (env: Record<string, string>) =>
    testConfig({
      DATABASE_PATH: ':memory:',
      MTASTS_TLSRPT_IMAP_URL: 'imaps://reports@imap.example.com/INBOX',
      MTASTS_TLSRPT_IMAP_PASSWORD: 'p',
      ...env,
    });
  const oauth = {
    SLACK_CLIENT_ID: 'c',
    SLACK_CLIENT_SECRET: 's',
    SLACK_STATE_SECRET: 'state',
  };

  test('a channel id, after its workspace and a colon if given; 24 hours unless set', () => {
    expect(config({})).toMatchObject({
      operatorChannel: null,
      tlsrptImap: { alertAfterMs: 24 * HOUR, operator: null },
    });
    expect(config({ MTASTS_OPERATOR_CHANNEL: ' C0123ABCD ' }).operatorChannel).toEqual({
      team: null,
      channel: 'C0123ABCD',
    });
    expect(
      config({ MTASTS_OPERATOR_CHANNEL: 'T0123:G0456', MTASTS_TLSRPT_IMAP_ALERT_HOURS: '6' }),
    ).toMatchObject({
      operatorChannel: { team: 'T0123', channel: 'G0456' },
      tlsrptImap: { alertAfterMs: 6 * HOUR, operator: { team: 'T0123', channel: 'G0456' } },
    });
    expect(config({ ...oauth, MTASTS_OPERATOR_CHANNEL: 'T0123:C0456' }).operatorChannel).toEqual({
      team: 'T0123',
      channel: 'C0456',
    });
  });

  test.each([
    [{ MTASTS_OPERATOR_CHANNEL: '#ops' }, /^MTASTS_OPERATOR_CHANNEL must be a channel id such as C0123ABCD/],
    [{ MTASTS_OPERATOR_CHANNEL: 'c0123abcd' }, /^MTASTS_OPERATOR_CHANNEL must be a channel id/],
    [{ MTASTS_OPERATOR_CHANNEL: 'T1:C2:C3' }, /^MTASTS_OPERATOR_CHANNEL must be a channel id/],
    [{ MTASTS_OPERATOR_CHANNEL: 'U0123ABCD' }, /^MTASTS_OPERATOR_CHANNEL must be a channel id/],
    [
      { ...oauth, MTASTS_OPERATOR_CHANNEL: 'C0456' },
      /^MTASTS_OPERATOR_CHANNEL must name its workspace with OAuth \(several workspaces\): T0123ABCD:C0456$/,
    ],
    [
      { MTASTS_TLSRPT_IMAP_ALERT_HOURS: '0' },
      /^MTASTS_TLSRPT_IMAP_ALERT_HOURS must be a whole number from 1 to 720/,
    ],
    [{ MTASTS_TLSRPT_IMAP_ALERT_HOURS: '1.5' }, /^MTASTS_TLSRPT_IMAP_ALERT_HOURS must be a whole number/],
  ])('%j is one line naming the setting', (env, message) => {
    expect(() => config(env)).toThrow(ConfigError);
    expect(() => config(env)).toThrow(message);
  });
});

describe('the renderers: within Block Kit limits, server text inert', () => {
  const withinLimits = (blocks: Block[], max: number) => {
    expect(blocks.length).toBeLessThanOrEqual(max);
    for (const b of blocks) {
      if (b.type === 'section') expect(b.text.text.length).toBeLessThanOrEqual(LIMITS.sectionText);
      if (b.type === 'context') for (const e of b.elements) expect(e.text.length).toBeLessThanOrEqual(2000);
    }
  };
  const mailbox = (error: string | null): MailboxView => ({
    account: 'imaps://tls-reports%40example.com@imap.example.com:993',
    folder: 'INBOX',
    alertAfterMs: 24 * HOUR,
    now: new Date('2026-11-30T09:00:00Z'),
    status: {
      account: 'imaps://tls-reports%40example.com@imap.example.com:993',
      lastReadAt: null,
      lastError: error,
      lastErrorAt: error === null ? null : '2026-11-30T08:55:00.000Z',
      failingSince: error === null ? null : '2026-11-29T08:00:00.000Z',
    },
  });

  test('any error text (long, control characters, mentions, links, backticks, &) renders inert and within limits', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 5000 }),
          fc.constantFrom(HOSTILE, '&'.repeat(4000), `${'`<!here>'.repeat(900)}\n\u2028*x*`),
        ),
        (error) => {
          const messages = [
            alertMessage({
              kind: 'imap-failing',
              account: 'imaps://u@h:993',
              folder: 'INBOX',
              since: '2026-11-29T08:00:00.000Z',
              at: '2026-11-30T08:00:00.000Z',
              error,
            }),
            alertMessage({
              kind: 'imap-recovered',
              account: 'imaps://u@h:993',
              folder: 'INBOX',
              since: '2026-11-29T08:00:00.000Z',
              at: '2026-11-30T10:00:00.000Z',
              error,
            }),
          ];
          for (const m of messages) {
            withinLimits(m.blocks, LIMITS.blocksPerMessage);
            expect(m.text.length).toBeLessThanOrEqual(LIMITS.fallbackText);
          }
          const status = mailboxBlocks(mailbox(error));
          withinLimits(status, LIMITS.blocksPerMessage);
          for (const text of [...messages.map((m) => JSON.stringify(m)), JSON.stringify(status)]) {
            expect(text).not.toMatch(/[<>]/);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('App Home keeps within 100 blocks with the mailbox above 500 domains', () => {
    const rows = Array.from({ length: 500 }, (_, i) => ({
      domain: `d${i}.example`,
      channels: ['C1'],
      lastStatus: 'fail' as const,
      lastCheckedAt: null,
    }));
    const home = homeView(rows, 'T1', null, mailbox('refused'));
    withinLimits(home.blocks, LIMITS.blocksPerView);
    const text = JSON.stringify(home);
    expect(text.indexOf('TLS-RPT mailbox')).toBeLessThan(text.indexOf('d0.example'));
    expect(text).toContain('more domains');
    expect(text).toContain('Failing* since 2026-11-29T08:00:00Z (25 hours)');
  });
});
