import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import type { TestCa } from './test-ca.js';

/**
 * A real IMAP server for tests: Debian's dovecot (package dovecot-imapd), started with a configuration of its own in a
 * temporary folder, listening on 127.0.0.1 only, on a free port, with IMAPS under a certificate from the test CA for
 * "localhost". Users and passwords come from a passwd-file the test can rewrite (dovecot reads it again when it
 * changes). XOAUTH2 and OAUTHBEARER are on: dovecot checks the access token as the user's password.
 */

export const DOVECOT = ['/usr/sbin/dovecot', '/usr/bin/dovecot'].find((p) => existsSync(p)) ?? null;
const DOVEADM = ['/usr/bin/doveadm', '/usr/sbin/doveadm'].find((p) => existsSync(p)) ?? null;

export interface DovecotUser {
  name: string;
  password: string;
  /** userdb extra fields, e.g. "userdb_imap_capability=IMAP4rev1" (a server with no IDLE, MOVE or UIDPLUS). */
  extra?: string;
  /** Read, write flags and append only: no creating folders, no expunging, so no moving either (an ACL). */
  limited?: boolean;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Who dovecot's processes run as: its own system users under root, this user otherwise. */
function accounts(): { internal: string; login: string; uid: number; gid: number } {
  const me = userInfo();
  if (me.uid !== 0) return { internal: me.username, login: me.username, uid: me.uid, gid: me.gid };
  return { internal: 'dovecot', login: 'dovenull', uid: 65534, gid: 65534 };
}

export class TestDovecot {
  readonly host = 'localhost';
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly ca: TestCa,
    private users: DovecotUser[],
  ) {}

  /** Starts dovecot, or throws an error saying why it cannot run here. */
  static async start(ca: TestCa, users: DovecotUser[]): Promise<TestDovecot> {
    if (!DOVECOT) throw new Error('dovecot is not installed (Debian package dovecot-imapd)');
    let lastError = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'mtasts-dovecot-'));
      const port = await freePort();
      const child = TestDovecot.launch(dir, port, ca, users);
      const server = new TestDovecot(dir, port, child, ca, users);
      lastError = await server.ready();
      if (lastError === '') return server;
      await server.stop();
    }
    throw new Error(`dovecot did not start: ${lastError}`);
  }

  private static launch(dir: string, port: number, ca: TestCa, users: DovecotUser[]): ChildProcess {
    const who = accounts();
    chmodSync(dir, 0o755);
    const mail = join(dir, 'mail');
    mkdirSync(mail);
    chownSync(mail, who.uid, who.gid);
    const cert = ca.issue({ names: ['localhost'] });
    writeFileSync(join(dir, 'cert.pem'), cert.cert);
    writeFileSync(join(dir, 'key.pem'), cert.key, { mode: 0o600 });
    writeFileSync(
      join(dir, 'acl'),
      `${users
        .filter((u) => u.limited)
        .map((u) => `* user=${u.name} lrwsi\n`)
        .join('')}`,
    );
    writePasswd(dir, users, who);
    writeFileSync(join(dir, 'dovecot.conf'), config(dir, port, who));
    return spawn(DOVECOT as string, ['-F', '-c', join(dir, 'dovecot.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }

  /** Waits until the port answers; '' when it does, else what went wrong. */
  private async ready(): Promise<string> {
    let stderr = '';
    this.child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let exited = false;
    this.child.once('exit', () => {
      exited = true;
    });
    for (let i = 0; i < 200 && !exited; i++) {
      if (await portOpen(this.port)) return '';
      await new Promise((r) => setTimeout(r, 50));
    }
    const log = existsSync(join(this.dir, 'dovecot.log'))
      ? readFileSync(join(this.dir, 'dovecot.log'), 'utf8')
      : '';
    return `${stderr}${log}`.trim().split('\n').slice(-5).join(' | ') || 'no answer on its port';
  }

  /** The URL a deployment would set in MTASTS_TLSRPT_IMAP_URL. */
  url(user: string, folder = 'INBOX'): string {
    return `imaps://${encodeURIComponent(user)}@${this.host}:${this.port}/${folder}`;
  }

  /**
   * A new password (or access token) for a user. dovecot reads the passwd-file again when its mtime or size changed,
   * looking at most once a second: the file gets an mtime of its own, and this returns once the second has turned, so
   * that the next login sees the change.
   */
  async setPassword(user: string, password: string): Promise<void> {
    this.users = this.users.map((u) => (u.name === user ? { ...u, password } : u));
    writePasswd(this.dir, this.users, accounts());
    const written = Math.floor(Date.now() / 1000);
    this.stamp = Math.max(this.stamp + 1, written + 1);
    utimesSync(join(this.dir, 'passwd'), this.stamp, this.stamp);
    while (Math.floor(Date.now() / 1000) <= written) await new Promise((r) => setTimeout(r, 20));
  }
  private stamp = 0;

  /** Ends every session of a user, as a server restart would. */
  async kick(user: string): Promise<void> {
    if (!DOVEADM) throw new Error('doveadm is missing');
    await promisify(execFile)(DOVEADM, ['-c', join(this.dir, 'dovecot.conf'), 'kick', user]);
  }

  /**
   * Delivers messages into a user's inbox as a local delivery agent does, by writing maildir files (much faster than
   * APPEND for a test that needs thousands).
   */
  deliverFiles(user: string, mails: Buffer[]): void {
    const who = accounts();
    const maildir = join(this.dir, 'mail', user);
    for (const sub of ['', 'cur', 'new', 'tmp']) {
      mkdirSync(join(maildir, sub), { recursive: true });
      chownSync(join(maildir, sub), who.uid, who.gid);
    }
    const dir = join(maildir, 'new');
    mails.forEach((mail, i) => {
      const file = join(dir, `${Date.now()}.M${i}P${process.pid}.mtasts-test,S=${mail.length}`);
      writeFileSync(file, mail, { mode: 0o600 });
      chownSync(file, who.uid, who.gid);
    });
  }

  /** A connection of the test's own, logged in, to deliver messages and look at folders. */
  async client(user: string): Promise<ImapFlow> {
    const u = this.users.find((x) => x.name === user);
    const client = new ImapFlow({
      host: this.host,
      port: this.port,
      secure: true,
      auth: { user, pass: u?.password ?? '' },
      logger: false,
      tls: { ca: [this.ca.rootPem] },
    });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function writePasswd(dir: string, users: DovecotUser[], who: ReturnType<typeof accounts>): void {
  const lines = users.map(
    (u) =>
      `${u.name}:{PLAIN}${u.password}:${who.uid}:${who.gid}::${join(dir, 'mail', u.name)}::${u.extra ?? ''}\n`,
  );
  writeFileSync(join(dir, 'passwd'), lines.join(''), { mode: 0o644 });
}

function config(dir: string, port: number, who: ReturnType<typeof accounts>): string {
  return `base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = ${dir.split('/').pop()}
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
first_valid_uid = 1
default_internal_user = ${who.internal}
default_login_user = ${who.login}
mail_location = maildir:${dir}/mail/%u
mailbox_idle_check_interval = 1 secs
mail_fsync = never
mail_max_userip_connections = 100
mail_plugins = acl
plugin {
  acl = vfile:${dir}/acl
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u ${dir}/passwd
}
# No growing delay after failed logins from one address (the tests fail logins on purpose, all from 127.0.0.1).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }
}
`;
}
