import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { ImapFlow } from 'imapflow';
import { afterAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import { ConfigError, type loadAppConfig } from '../../src/config.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { ImapStore } from '../../src/store/imap.js';
import {
  chunksBySize,
  type ImapReaderDeps,
  ImapWatcher,
  type PassResult,
  READ_KEYWORD,
  readOnce,
  TokenFile,
} from '../../src/tlsrpt/imap.js';
import { ingestEmail } from '../../src/tlsrpt/intake.js';
import { testConfig } from '../support/config.js';
import { type DovecotUser, TestDovecot } from '../support/dovecot.js';
import { TestCa } from '../support/test-ca.js';

const FIXTURES = new URL('../../../shared/fixtures/tlsrpt/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));
const SRC = (file: string) => new URL(`../../src/${file}`, import.meta.url).href;

/** A report as a reporter mails it (RFC 8460 §5.3): multipart/report with the report gzipped (or as JSON). */
function reportMail(json: Buffer, id: string, gzip = true): Buffer {
  const body = (gzip ? gzipSync(json) : json).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: noreply-smtp-tls-reporting@reporter.example',
      'To: tls-reports@example.com',
      `Subject: Report Domain: example.com Submitter: reporter.example Report-ID: <${id}>`,
      'Date: Thu, 01 Jan 2026 06:00:00 +0000',
      `Message-ID: <${id}@reporter.example>`,
      'MIME-Version: 1.0',
      'TLS-Report-Domain: example.com',
      'TLS-Report-Submitter: reporter.example',
      'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b-tlsrpt"',
      '',
      '--b-tlsrpt',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'This is an aggregate TLS report from reporter.example.',
      '--b-tlsrpt',
      `Content-Type: application/tlsrpt+${gzip ? 'gzip' : 'json'}`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="reporter.example!example.com!${id}.json${gzip ? '.gz' : ''}"`,
      '',
      body,
      '--b-tlsrpt--',
      '',
    ].join('\r\n'),
  );
}

/** A small valid report of its own, for tests that need many distinct ones. */
function reportNumbered(n: number): Buffer {
  const report = {
    'organization-name': 'Numbered Reporter',
    'date-range': { 'start-datetime': '2026-01-01T00:00:00Z', 'end-datetime': '2026-01-01T23:59:59Z' },
    'contact-info': 'tlsrpt@reporter.example',
    'report-id': `numbered-${n}`,
    policies: [
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': ['version: STSv1', 'mode: testing', 'mx: mx.example.com', 'max_age: 86400'],
          'policy-domain': 'example.com',
          'mx-host': ['mx.example.com'],
        },
        summary: { 'total-successful-session-count': 10, 'total-failure-session-count': 0 },
      },
    ],
  };
  return reportMail(Buffer.from(JSON.stringify(report)), `numbered-${n}`);
}

/** The shared fixtures as they land in a mailbox: the four report e-mails, and the three JSON reports mailed. */
function fixtureMails(): Buffer[] {
  const names = readdirSync(FIXTURES);
  const emails = names.filter((f) => f.endsWith('.eml')).map(fixture);
  const json = names.filter((f) => f.endsWith('.json') && !f.includes('DECODED'));
  expect([emails.length, json.length]).toEqual([4, 3]);
  return [...emails, ...json.map((f, i) => reportMail(fixture(f), `fixture-${i}`, i !== 1))];
}

const NOT_A_REPORT = Buffer.from(
  'From: someone@example.org\r\nTo: tls-reports@example.com\r\nSubject: hello\r\nMessage-ID: <hello@example.org>\r\n\r\nAre you there?\r\n',
);

const ca = new TestCa();
const USERS: DovecotUser[] = [
  { name: 'fixtures', password: 'pw-fixtures-1' },
  { name: 'crash', password: 'pw-crash-1' },
  { name: 'uidv', password: 'pw-uidv-1' },
  { name: 'idle', password: 'pw-idle-1' },
  { name: 'minimal', password: 'pw-minimal-1', extra: 'userdb_imap_capability=IMAP4rev1' },
  { name: 'bulk', password: 'pw-bulk-1' },
  { name: 'login', password: 'the-right-password-7' },
  { name: 'limited', password: 'pw-limited-1', limited: true },
  { name: 'oauth', password: 'token-one-AAAA' },
  { name: 'defer', password: 'pw-defer-1' },
  { name: 'cli', password: 'pw-cli-1' },
];
const passwordOf = (user: string) => USERS.find((u) => u.name === user)?.password ?? '';

let dovecot: TestDovecot | null = null;
try {
  dovecot = await TestDovecot.start(ca, USERS);
} catch (err) {
  console.warn(
    `\n*** test/tlsrpt/imap.test.ts: THE IMAP TESTS ARE SKIPPED: ${(err as Error).message}\n*** (.ci/run installs dovecot-imapd)\n`,
  );
}
afterAll(() => dovecot?.stop());
const dv = () => dovecot as TestDovecot;

/** Waits for a condition the code under test brings about in its own time; fails after a generous bound. */
async function until(what: string, predicate: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Messages in each folder of a mailbox, by the server's own path ("." separates levels in this dovecot). */
async function folders(client: ImapFlow): Promise<Record<string, number>> {
  const list = await client.list({ statusQuery: { messages: true } });
  return Object.fromEntries(list.map((f) => [f.path, f.status?.messages ?? -1]));
}

/** The app's database and intake, with one mailbox configured. */
class Rig {
  runtime!: Runtime;
  readonly logs: string[] = [];
  readonly client: Promise<ImapFlow>;
  constructor(
    readonly user: string,
    private readonly env: Record<string, string> = {},
    readonly dir = mkdtempSync(join(tmpdir(), 'mtasts-imap-')),
  ) {
    this.client = dv().client(user);
  }
  /** The rig with its runtime open. */
  static async open(...args: ConstructorParameters<typeof Rig>): Promise<Rig> {
    const rig = new Rig(...args);
    rig.runtime = await openRuntime(
      testConfig({
        DATABASE_PATH: join(rig.dir, 'bot.sqlite'),
        MTASTS_TLSRPT_KEEP_UNWATCHED: '1',
        MTASTS_TLSRPT_IMAP_URL: dv().url(rig.user),
        MTASTS_TLSRPT_IMAP_PASSWORD: passwordOf(rig.user),
        ...rig.env,
      }),
      null,
      { info() {}, warn() {}, error() {} },
    );
    return rig;
  }
  get settings() {
    return this.runtime.config.tlsrptImap as NonNullable<ReturnType<typeof loadAppConfig>['tlsrptImap']>;
  }
  deps(overrides: Partial<ImapReaderDeps> = {}): ImapReaderDeps {
    const line = (level: string) => (m: string) => this.logs.push(`${level} ${m}`);
    return {
      settings: this.settings,
      db: this.runtime.db,
      ingest: (raw) => ingestEmail(raw, { ...this.runtime.intake, onStored: () => {} }),
      now: () => new Date(),
      logger: { info: line('info'), warn: line('warn'), error: line('error') },
      tls: { ca: [ca.rootPem] },
      ...overrides,
    };
  }
  once(overrides: Partial<ImapReaderDeps> = {}): Promise<PassResult> {
    return readOnce(this.deps(overrides));
  }
  async deliver(...mails: Buffer[]): Promise<void> {
    const box = await this.client;
    for (const m of mails) await box.append('INBOX', m);
  }
  counts() {
    return this.runtime.tlsrpt.counts();
  }
  status() {
    return new ImapStore(this.runtime.db).status(this.settings.account);
  }
  async close(): Promise<void> {
    await (await this.client).logout().catch(() => {}); // a session the server ended is gone already
    await this.runtime.close();
  }
}

describe.skipIf(!dovecot)('TLS-RPT reports from a mailbox over IMAP (a real dovecot on loopback)', () => {
  test('every shared fixture mailed to the inbox is stored once and moved; a message without a report is set aside', async () => {
    const rig = await Rig.open('fixtures');
    const mails = fixtureMails();
    await rig.deliver(...mails, NOT_A_REPORT);
    expect(await rig.once()).toEqual({
      kind: 'read',
      summary: { found: 8, stored: 7, unchanged: 0, setAside: 1, left: 0, moved: 8, flagged: 0, batches: 1 },
    });
    expect(await rig.counts()).toEqual({ reports: 7, policies: 7, failures: 8 });
    const box = await rig.client;
    expect(await folders(box)).toMatchObject({ INBOX: 0, 'TLS-RPT.processed': 7, 'TLS-RPT.not-a-report': 1 });
    expect(rig.logs.join('\n')).toMatch(
      /message uid 8 \("hello" from someone@example\.org\) holds no TLS-RPT report \(.+\): set aside in "TLS-RPT\/not-a-report"/,
    );
    expect(await rig.status()).toMatchObject({
      lastError: null,
      failingSince: null,
      lastReadAt: expect.any(String),
    });

    // Nothing new: nothing read. The same reports mailed again: read, counted, not stored twice, moved.
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 0 } });
    await rig.deliver(...mails);
    expect(await rig.once()).toMatchObject({
      kind: 'read',
      summary: { found: 7, stored: 0, unchanged: 7, moved: 7 },
    });
    expect(await rig.counts()).toEqual({ reports: 7, policies: 7, failures: 8 });
    expect(await folders(box)).toMatchObject({ INBOX: 0, 'TLS-RPT.processed': 14 });
    await rig.close();
  });

  test('a crash between storing and moving: after the restart every report is stored once and every message moved', async () => {
    const rig = await Rig.open('crash');
    const mails = fixtureMails();
    await rig.deliver(...mails);
    const caFile = join(rig.dir, 'ca.pem');
    writeFileSync(caFile, ca.rootPem);
    // The app in a process of its own, killed (SIGKILL) right after the third report is committed to the database.
    const script = `
      const [{ loadAppConfig }, { openRuntime }, { ingestEmail }, { readOnce }] = await Promise.all([
        import(${JSON.stringify(SRC('config.ts'))}), import(${JSON.stringify(SRC('runtime.ts'))}),
        import(${JSON.stringify(SRC('tlsrpt/intake.ts'))}), import(${JSON.stringify(SRC('tlsrpt/imap.ts'))}),
      ]);
      const config = loadAppConfig(process.env, 'ingest');
      const runtime = await openRuntime(config, null, { info() {}, warn() {}, error() {} });
      let stored = 0;
      await readOnce({
        settings: config.tlsrptImap, db: runtime.db, now: () => new Date(),
        logger: { info() {}, warn() {}, error: (m) => console.error(m) },
        ingest: async (raw) => {
          const result = await ingestEmail(raw, { ...runtime.intake, onStored() {} });
          if (result.status === 201 && ++stored === 3) process.kill(process.pid, 'SIGKILL');
          return result;
        },
      });
      console.error('the pass ended without the crash');`;
    const child = await run(['--input-type=module', '-e', script], {
      DATABASE_PATH: join(rig.dir, 'bot.sqlite'),
      MTASTS_TLSRPT_KEEP_UNWATCHED: '1',
      MTASTS_TLSRPT_IMAP_URL: dv().url('crash'),
      MTASTS_TLSRPT_IMAP_PASSWORD: passwordOf('crash'),
      NODE_EXTRA_CA_CERTS: caFile,
    });
    expect(child).toMatchObject({ signal: 'SIGKILL', stderr: '' });
    expect((await rig.counts()).reports).toBe(3);
    const box = await rig.client;
    expect(await folders(box)).toMatchObject({ INBOX: 7, 'TLS-RPT.processed': 0 });

    expect(await rig.once()).toMatchObject({
      kind: 'read',
      summary: { found: 7, stored: 4, unchanged: 3, moved: 7, left: 0 },
    });
    expect(await rig.counts()).toEqual({ reports: 7, policies: 7, failures: 8 });
    expect(await folders(box)).toMatchObject({ INBOX: 0, 'TLS-RPT.processed': 7 });
    await rig.close();
  });

  test('a folder renumbered by the server (new UIDVALIDITY) is read again from its start', async () => {
    const rig = await Rig.open('uidv', { MTASTS_TLSRPT_IMAP_URL: dv().url('uidv', 'Reports') });
    const box = await rig.client;
    await box.mailboxCreate('Reports');
    for (const n of [1, 2]) await box.append('Reports', reportNumbered(n));
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 2, stored: 2 } });
    const store = new ImapStore(rig.runtime.db);
    const before = await store.folder(rig.settings.account, 'Reports');
    expect(before).toMatchObject({ lastUid: 2 });

    // The folder is made anew: its messages start again at UID 1, under a new UIDVALIDITY.
    await box.mailboxDelete('Reports');
    await box.mailboxCreate('Reports');
    for (const n of [3, 4, 5]) await box.append('Reports', reportNumbered(n));
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 3, stored: 3, moved: 3 } });
    const after = await store.folder(rig.settings.account, 'Reports');
    expect(after?.uidValidity).not.toBe(before?.uidValidity);
    expect(after?.lastUid).toBe(3);
    expect(rig.logs.join('\n')).toContain('the UIDVALIDITY of "Reports" changed');
    expect((await rig.counts()).reports).toBe(5);
    await rig.close();
  });

  test('a message delivered while the reader idles (IDLE) is stored and moved', async () => {
    // A poll once a year: only IDLE can bring the message in during this test.
    const rig = await Rig.open('idle', { MTASTS_TLSRPT_IMAP_POLL: '0 0 1 1 *' });
    const watcher = new ImapWatcher(rig.deps());
    watcher.start();
    try {
      await until('the first pass, then IDLE', () => watcher.idling);
      expect((await rig.status())?.lastReadAt).toEqual(expect.any(String));
      await rig.deliver(fixtureMails()[0] as Buffer);
      await until('the report to be stored', async () => (await rig.counts()).reports === 1);
      const box = await rig.client;
      await until('the message to be moved', async () => (await folders(box))['TLS-RPT.processed'] === 1);
      expect((await folders(box)).INBOX).toBe(0);
      await until('IDLE again', () => watcher.idling);
    } finally {
      await watcher.stop();
    }
    expect(watcher.idling).toBe(false);
    expect(rig.logs.filter((l) => !l.startsWith('info'))).toEqual([]);
    await rig.close();
  });

  test('a server without IDLE, MOVE or UIDPLUS is read at each poll, and messages are moved all the same', async () => {
    const rig = await Rig.open('minimal', { MTASTS_TLSRPT_IMAP_POLL: '* * * * * *' });
    const watcher = new ImapWatcher(rig.deps());
    watcher.start();
    try {
      await until('the first pass', async () => (await rig.status())?.lastReadAt != null);
      await rig.deliver(reportNumbered(10), reportNumbered(11));
      await until('both reports to be stored', async () => (await rig.counts()).reports === 2);
      const box = await rig.client;
      await until('both messages to be moved', async () => (await folders(box))['TLS-RPT.processed'] === 2);
      expect((await folders(box)).INBOX).toBe(0);
      expect(watcher.idling).toBe(false);
    } finally {
      await watcher.stop();
    }
    expect(rig.logs.filter((l) => !l.startsWith('info'))).toEqual([]);
    await rig.close();
  });

  test('a thousand messages waiting at the first start are read in batches, each stored once', {
    timeout: 120_000,
  }, async () => {
    const rig = await Rig.open('bulk', { MTASTS_TLSRPT_IMAP_BATCH: '50' });
    const box = await rig.client;
    dv().deliverFiles(
      'bulk',
      Array.from({ length: 1000 }, (_, n) => reportNumbered(1000 + n)),
    );
    expect(await rig.once()).toEqual({
      kind: 'read',
      summary: {
        found: 1000,
        stored: 1000,
        unchanged: 0,
        setAside: 0,
        left: 0,
        moved: 1000,
        flagged: 0,
        batches: 20,
      },
    });
    expect((await rig.counts()).reports).toBe(1000);
    expect(await folders(box)).toMatchObject({ INBOX: 0, 'TLS-RPT.processed': 1000 });
    await rig.close();
  });

  test('a wrong password is one clear line, recorded, never shown, and the reader keeps going', async () => {
    const wrong = 'not-the-password-9';
    const rig = await Rig.open('login', {
      MTASTS_TLSRPT_IMAP_PASSWORD: wrong,
      MTASTS_TLSRPT_IMAP_POLL: '* * * * * *',
    });
    const result = await rig.once();
    expect(result.kind).toBe('failed');
    const error = result.kind === 'failed' ? result.error : '';
    expect(error).toMatch(
      /^localhost:\d+ refused the login of login \(.*Authentication failed.*\): check MTASTS_TLSRPT_IMAP_PASSWORD/,
    );
    expect(await rig.status()).toMatchObject({
      lastError: error,
      failingSince: expect.any(String),
      lastReadAt: null,
    });

    // The app's reader keeps going through it: the failure is logged once, and over when the login works again.
    const watcher = new ImapWatcher(rig.deps());
    watcher.start();
    try {
      await until(
        'a failed pass of the reader',
        async () => (await rig.status())?.lastErrorAt !== (await rig.status())?.failingSince,
      );
      await dv().setPassword('login', wrong); // the administrator sets the password the app has
      await until('a good pass', async () => (await rig.status())?.lastError === null);
    } finally {
      await watcher.stop();
    }
    expect(await rig.status()).toMatchObject({ failingSince: null, lastReadAt: expect.any(String) });
    expect(rig.logs).toEqual([
      `error tlsrpt imap: ${rig.settings.account}: ${error}`,
      `info tlsrpt imap: ${rig.settings.account}: the mailbox is read again`,
    ]);
    const everything = [
      ...rig.logs,
      JSON.stringify(rig.runtime.config),
      inspect(rig.runtime.config, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
    ].join('\n');
    expect(everything).not.toContain(wrong);
    expect(
      String(rig.runtime.config.tlsrptImap?.auth && Object.values(rig.runtime.config.tlsrptImap.auth)[0]),
    ).toBe('[secret]');
    await rig.close();
  });

  test('a missing folder, and a certificate from an unknown CA, are named as such', async () => {
    const rig = await Rig.open('fixtures', { MTASTS_TLSRPT_IMAP_URL: dv().url('fixtures', 'Nope') });
    expect(await rig.once()).toEqual({
      kind: 'failed',
      error: expect.stringMatching(/^the folder "Nope" does not exist on localhost:\d+ \(for fixtures\)$/),
      summary: null,
    });
    // Without the test CA (NODE_EXTRA_CA_CERTS in a deployment), the server's certificate is not trusted.
    const untrusted = await rig.once({ tls: {} });
    expect(untrusted).toMatchObject({ kind: 'failed', summary: null });
    expect(untrusted.kind === 'failed' && untrusted.error).toMatch(
      /^the TLS certificate of localhost:\d+ is not trusted \([A-Z_]+\): a private or lab CA goes in NODE_EXTRA_CA_CERTS$/,
    );
    await rig.close();
  });

  test('where moving is not allowed, messages are flagged and not read again', async () => {
    const rig = await Rig.open('limited');
    await rig.deliver(reportNumbered(20), reportNumbered(21));
    expect(await rig.once()).toMatchObject({
      kind: 'read',
      summary: { found: 2, stored: 2, moved: 0, flagged: 2 },
    });
    const box = await rig.client;
    await box.mailboxOpen('INBOX');
    const flags = await box.fetchAll('1:*', { uid: true, flags: true });
    expect(flags.map((m) => [...(m.flags ?? [])].sort())).toEqual([
      ['$MtastsRead', '\\Seen'],
      ['$MtastsRead', '\\Seen'],
    ]);
    expect(READ_KEYWORD).toBe('$MtastsRead');
    expect(rig.logs.join('\n')).toContain(
      'moving 2 message(s) to "TLS-RPT/processed" was refused; flagged $MtastsRead',
    );
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 0 } });
    // Even with the folder's place forgotten, the flag keeps them from being read again.
    await new ImapStore(rig.runtime.db).setFolder(rig.settings.account, 'INBOX', {
      uidValidity: String(box.mailbox ? box.mailbox.uidValidity : ''),
      lastUid: 0,
    });
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 0 } });
    expect((await rig.counts()).reports).toBe(2);
    await rig.close();
  });

  test('OAuth2: the access token file is read again when it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-imap-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'token-one-AAAA\n');
    const rig = await Rig.open(
      'oauth',
      {
        MTASTS_TLSRPT_IMAP_PASSWORD: '',
        MTASTS_TLSRPT_IMAP_TOKEN_FILE: tokenFile,
        MTASTS_TLSRPT_IMAP_POLL: '* * * * * *',
      },
      dir,
    );
    const watcher = new ImapWatcher(rig.deps());
    watcher.start();
    try {
      await until('the first pass', async () => (await rig.status())?.lastReadAt != null);
      // The provider issues a new token and stops taking the old one; the session ends, as it does when a token expires.
      await dv().setPassword('oauth', 'token-two-BBBB');
      writeFileSync(join(dir, 'token.new'), 'token-two-BBBB\n');
      renameSync(join(dir, 'token.new'), tokenFile);
      await dv().kick('oauth');
      const box = await dv().client('oauth');
      await box.append('INBOX', reportNumbered(30));
      await box.logout();
      await until('the report to be stored', async () => (await rig.counts()).reports === 1);
    } finally {
      await watcher.stop();
    }
    expect(rig.logs.join('\n')).not.toContain('refused the login');
    // A token the server does not take: named by its file, never shown.
    writeFileSync(tokenFile, 'token-stale-CCCC');
    const stale = await rig.once();
    expect(stale.kind === 'failed' && stale.error).toMatch(
      /refused the login of oauth .*MTASTS_TLSRPT_IMAP_TOKEN_FILE \(.*\/token\)/,
    );
    expect(JSON.stringify([stale, rig.logs, await rig.status()])).not.toMatch(/token-(one|two|stale)/);
    await rig.close();
  });

  test('a message the intake cannot take now stays in the folder and is read at the next pass', async () => {
    const rig = await Rig.open('defer');
    await rig.deliver(reportNumbered(40), reportNumbered(41), reportNumbered(42));
    const real = rig.deps().ingest;
    let calls = 0;
    const busy = await rig.once({
      ingest: async (raw) =>
        ++calls === 2 ? { status: 507, message: 'the disk is nearly full' } : real(raw),
    });
    expect(busy).toMatchObject({
      kind: 'failed',
      error: 'message uid 2 stays in "INBOX" for the next pass: the disk is nearly full',
      summary: { found: 3, stored: 1, left: 2, moved: 1 },
    });
    expect((await rig.status())?.lastError).toBe(
      'message uid 2 stays in "INBOX" for the next pass: the disk is nearly full',
    );
    const thrown = await rig.once({
      ingest: async () => {
        throw new Error('database is locked');
      },
    });
    expect(thrown).toMatchObject({
      kind: 'failed',
      error: 'message uid 2 stays in "INBOX" for the next pass: storing it failed: database is locked',
      summary: { found: 2, stored: 0, left: 2, moved: 0 },
    });
    expect(await rig.once()).toMatchObject({ kind: 'read', summary: { found: 2, stored: 2, moved: 2 } });
    expect((await rig.counts()).reports).toBe(3);
    expect(await rig.status()).toMatchObject({ lastError: null, failingSince: null });
    await rig.close();
  });

  test('npx mtasts ingest-imap --once: a lab CA through NODE_EXTRA_CA_CERTS, exit 0 when read, 1 with one line when not', async () => {
    const rig = await Rig.open('cli');
    await rig.deliver(reportNumbered(50));
    const caFile = join(rig.dir, 'ca.pem');
    writeFileSync(caFile, ca.rootPem);
    const env = {
      DATABASE_PATH: join(rig.dir, 'bot.sqlite'),
      MTASTS_TLSRPT_KEEP_UNWATCHED: '1',
      MTASTS_TLSRPT_IMAP_URL: dv().url('cli'),
      MTASTS_TLSRPT_IMAP_PASSWORD: passwordOf('cli'),
      NODE_EXTRA_CA_CERTS: caFile,
    };
    const cli = [
      '--input-type=module',
      '-e',
      `import { main } from ${JSON.stringify(SRC('cli.ts'))}; process.exitCode = await main(process.argv.slice(1));`,
      'ingest-imap',
      '--once',
    ];
    const good = await run(cli, env);
    expect(good).toMatchObject({ code: 0, stderr: '' });
    expect(good.stdout).toMatch(
      /^ingest-imap: imaps:\/\/cli@localhost:\d+\/INBOX: 1 new message\(s\): 1 stored, 0 already stored or not watched, 0 without a report, 0 left for the next pass; 1 moved, 0 flagged\n$/,
    );
    expect((await rig.counts()).reports).toBe(1);

    const bad = await run(cli, { ...env, MTASTS_TLSRPT_IMAP_PASSWORD: 'wrong-password-3' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /^mtasts: localhost:\d+ refused the login of cli \(.+\): check MTASTS_TLSRPT_IMAP_PASSWORD .+\n$/,
    );
    expect(bad.stderr + bad.stdout).not.toContain('wrong-password-3');
    await rig.close();
  });
});

/** Runs node (with tsx, for the TypeScript sources) in a process of its own. */
function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('settings and pieces that need no server', () => {
  const imapEnv = (env: Record<string, string>) =>
    testConfig({ DATABASE_PATH: ':memory:', ...env }).tlsrptImap;

  test('MTASTS_TLSRPT_IMAP_URL: user, host, port, TLS and folder', () => {
    expect(
      imapEnv({
        MTASTS_TLSRPT_IMAP_URL: 'imaps://tls-reports%40example.com@imap.gmail.com/INBOX',
        MTASTS_TLSRPT_IMAP_PASSWORD: 'app password',
      }),
    ).toMatchObject({
      account: 'imaps://tls-reports%40example.com@imap.gmail.com:993',
      host: 'imap.gmail.com',
      port: 993,
      implicitTls: true,
      user: 'tls-reports@example.com',
      folder: 'INBOX',
      doneFolder: 'TLS-RPT/processed',
      rejectFolder: 'TLS-RPT/not-a-report',
      poll: '*/5 * * * *',
      batchSize: 50,
      maxMessageBytes: 20971520,
    });
    expect(
      imapEnv({
        MTASTS_TLSRPT_IMAP_URL: 'imap://reports@mail.example.org:1143/Reports/TLS%20RPT',
        MTASTS_TLSRPT_IMAP_TOKEN_FILE: '/run/secrets/token',
      }),
    ).toMatchObject({
      implicitTls: false,
      port: 1143,
      folder: 'Reports/TLS RPT',
      auth: { tokenFile: '/run/secrets/token' },
    });
    expect(
      imapEnv({ MTASTS_TLSRPT_IMAP_URL: 'imaps://u@[::1]:9993', MTASTS_TLSRPT_IMAP_PASSWORD: 'p' }),
    ).toMatchObject({
      host: '::1',
      port: 9993,
      folder: 'INBOX',
      account: 'imaps://u@[::1]:9993',
    });
    expect(imapEnv({})).toBeNull();
  });

  test.each([
    [{ MTASTS_TLSRPT_IMAP_URL: 'imaps://u:hunter2@imap.example.com/INBOX' }, /must not hold the password/],
    [
      { MTASTS_TLSRPT_IMAP_URL: 'https://u@imap.example.com/', MTASTS_TLSRPT_IMAP_PASSWORD: 'p' },
      /must start with imaps:\/\//,
    ],
    [
      { MTASTS_TLSRPT_IMAP_URL: 'imaps://imap.example.com/', MTASTS_TLSRPT_IMAP_PASSWORD: 'p' },
      /has no user name/,
    ],
    [{ MTASTS_TLSRPT_IMAP_URL: 'not a url', MTASTS_TLSRPT_IMAP_PASSWORD: 'p' }, /is not a URL/],
    [
      { MTASTS_TLSRPT_IMAP_URL: 'imaps://u@h/INBOX' },
      /needs MTASTS_TLSRPT_IMAP_PASSWORD .* or MTASTS_TLSRPT_IMAP_TOKEN_FILE/,
    ],
    [
      {
        MTASTS_TLSRPT_IMAP_URL: 'imaps://u@h/INBOX',
        MTASTS_TLSRPT_IMAP_PASSWORD: 'p',
        MTASTS_TLSRPT_IMAP_TOKEN_FILE: '/t',
      },
      /are both set/,
    ],
    [{ MTASTS_TLSRPT_IMAP_PASSWORD: 'hunter2' }, /MTASTS_TLSRPT_IMAP_URL is not set/],
    [
      {
        MTASTS_TLSRPT_IMAP_URL: 'imaps://u@h/Reports',
        MTASTS_TLSRPT_IMAP_PASSWORD: 'p',
        MTASTS_TLSRPT_IMAP_DONE_FOLDER: 'reports',
      },
      /MTASTS_TLSRPT_IMAP_DONE_FOLDER is the folder reports are read from/,
    ],
    [
      {
        MTASTS_TLSRPT_IMAP_URL: 'imaps://u@h/',
        MTASTS_TLSRPT_IMAP_PASSWORD: 'p',
        MTASTS_TLSRPT_IMAP_POLL: 'often',
      },
      /MTASTS_TLSRPT_IMAP_POLL is not a cron expression/,
    ],
    [
      {
        MTASTS_TLSRPT_IMAP_URL: 'imaps://u@h/',
        MTASTS_TLSRPT_IMAP_PASSWORD: 'p',
        MTASTS_TLSRPT_IMAP_BATCH: '0',
      },
      /MTASTS_TLSRPT_IMAP_BATCH must be a whole number from 1/,
    ],
  ])('refused: %o', (env, message) => {
    let error: unknown;
    try {
      imapEnv(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('hunter2');
  });

  test('the access token file: read, read again when replaced or rewritten, refused when empty or missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-token-'));
    const file = join(dir, 'token');
    const tokens = new TokenFile(file);
    await expect(tokens.read()).rejects.toThrow(
      `cannot read the access token from MTASTS_TLSRPT_IMAP_TOKEN_FILE (${file}): ENOENT`,
    );
    writeFileSync(file, 'ya29.first\n');
    expect((await tokens.read()).reveal()).toBe('ya29.first');
    expect(String(await tokens.read())).toBe('[secret]');
    writeFileSync(join(dir, 'next'), 'ya29.second');
    renameSync(join(dir, 'next'), file);
    expect((await tokens.read()).reveal()).toBe('ya29.second');
    writeFileSync(file, 'ya29.third-and-longer');
    expect((await tokens.read()).reveal()).toBe('ya29.third-and-longer');
    writeFileSync(file, '  \n');
    await expect(tokens.read()).rejects.toThrow('the file is empty');
    writeFileSync(file, 'x'.repeat(70000));
    await expect(tokens.read()).rejects.toThrow('larger than 64 KiB');
  });

  test('sources are fetched a few at a time: never more than the message limit in one go', () => {
    const meta = [10, 20, 30, 200, 40, 50, 60].map((size, i) => ({ uid: i + 1, seq: i + 1, size }));
    const chunks = chunksBySize(meta, 60);
    expect(chunks.map((c) => c.map((m) => m.uid))).toEqual([[1, 2, 3, 4], [5], [6], [7]]);
    for (const c of chunks) {
      expect(c.reduce((sum, m) => sum + ((m.size ?? 0) > 60 ? 0 : (m.size ?? 0)), 0)).toBeLessThanOrEqual(60);
    }
  });

  test('ingest-imap without --once, or without a mailbox, is a usage error', async () => {
    const err: string[] = [];
    const io = { env: { DATABASE_PATH: ':memory:' }, stdout: () => {}, stderr: (t: string) => err.push(t) };
    expect(await main(['ingest-imap'], io)).toBe(2);
    expect(await main(['ingest-imap', '--once'], io)).toBe(2);
    expect(err).toEqual([
      'mtasts: run "mtasts ingest-imap --once" (the app itself reads the mailbox as reports arrive)\n',
      'mtasts: MTASTS_TLSRPT_IMAP_URL is not set: name the mailbox, e.g. imaps://user@imap.example.com/INBOX\n',
    ]);
  });
});
