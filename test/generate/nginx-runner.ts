import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// .ci/run installs Debian's nginx, so that nothing is skipped there. On a machine without it the tests that need it
// are skipped, and the run says so on its error output.
const NGINX_PATHS = ['/usr/sbin/nginx', '/usr/bin/nginx'];
export const NGINX = NGINX_PATHS.find((p) => existsSync(p)) ?? null;

export function warnIfMissing(file: string): void {
  if (NGINX) return;
  console.warn(
    `SKIPPED: ${file} needs nginx, not found at ${NGINX_PATHS.join(' or ')}; install it (apt-get install nginx) or run .ci/run, which does.`,
  );
}

/**
 * A real nginx running one generated `server` block as a user would paste it: only the listen address and port and
 * the certificate folder are this machine's.
 */
export class NginxRunner {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'mtasts-nginx-'));

  constructor(
    private readonly address: string,
    private readonly port: number,
    private readonly cert: { cert: string; key: string },
  ) {
    writeFileSync(join(this.dir, 'fullchain.pem'), cert.cert);
    writeFileSync(join(this.dir, 'privkey.pem'), cert.key);
  }

  /** The snippet with this machine's address, port and certificate folder, as nginx will run it. */
  localized(snippet: string, policyHost: string): string {
    return snippet
      .replace('listen 443 ssl;', `listen ${this.address}:${this.port} ssl;`)
      .replace(/^\s*listen \[::\]:443 ssl;\n/m, '')
      .replaceAll(`/etc/letsencrypt/live/${policyHost}`, this.dir);
  }

  /** Runs the snippet (stopping the one before), and waits until nginx listens. */
  async serve(snippet: string, policyHost: string): Promise<void> {
    await this.stop();
    const d = this.dir;
    writeFileSync(
      join(d, 'nginx.conf'),
      `daemon off;
master_process off;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
${this.localized(snippet, policyHost)}
}
`,
    );
    this.child = spawn(NGINX as string, ['-p', d, '-c', join(d, 'nginx.conf')], { stdio: 'ignore' });
    await waitForPort(this.address, this.port, true);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    await waitForPort(this.address, this.port, false);
  }
}

async function waitForPort(host: string, port: number, open: boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const listening = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (listening === open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not ${open ? 'listen' : 'stop listening'} on ${host}:${port}`);
}
