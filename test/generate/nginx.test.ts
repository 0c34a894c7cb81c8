import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import type { Report } from '../../src/core/check.js';
import { httpsGet } from '../../src/core/net/https-get.js';
import type { RecordsPlan } from '../../src/generate/records.js';
import { Lab } from '../support/lab.js';

// .ci/run installs Debian's nginx, so that nothing is skipped there. On a machine without it this one test is
// skipped, and the run says so on its error output.
const NGINX_PATHS = ['/usr/sbin/nginx', '/usr/bin/nginx'];
const NGINX = NGINX_PATHS.find((p) => existsSync(p));
if (!NGINX) {
  console.warn(
    `SKIPPED: the nginx test (test/generate/nginx.test.ts) needs nginx, not found at ${NGINX_PATHS.join(' or ')}; install it (apt-get install nginx) or run .ci/run, which does.`,
  );
}

let lab: Lab;
let nginx: ChildProcess | null = null;
beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(async () => {
  nginx?.kill('SIGTERM');
  await lab.stop();
});

async function waitForPort(host: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${host}:${port}`);
}

test.skipIf(!NGINX)(
  'the generated nginx configuration, run by a real nginx, serves a policy that passes mtasts check',
  async () => {
    const domain = 'nginx.test';
    lab.set(domain, { SOA: true, MX: [{ preference: 10, exchange: `mx1.${domain}` }] });
    await lab.mxHost(`mx1.${domain}`);
    const out: string[] = [];
    const io = lab.cliIo();
    io.value.stdout = (t) => out.push(t);
    expect(await main(['records', domain, '--rua', `mailto:tlsrpt@${domain}`, '--json'], io.value)).toBe(0);
    const { plan, snippets } = JSON.parse(out.join('')) as { plan: RecordsPlan; snippets: { nginx: string } };
    for (const r of plan.records) lab.set(r.name, { TXT: [r.value] });

    // The snippet as a user would paste it; only the address, port and certificate folder are this machine's.
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-nginx-'));
    const cert = lab.cert([`mta-sts.${domain}`]);
    writeFileSync(join(dir, 'fullchain.pem'), cert.cert);
    writeFileSync(join(dir, 'privkey.pem'), cert.key);
    const address = lab.newAddress();
    lab.set(`mta-sts.${domain}`, { A: [address] });
    const server = snippets.nginx
      .replace('listen 443 ssl;', `listen ${address}:${lab.policyPort} ssl;`)
      .replace(/^\s*listen \[::\]:443 ssl;\n/m, '')
      .replaceAll(`/etc/letsencrypt/live/mta-sts.${domain}`, dir);
    expect(server).toContain('return 200 "version: STSv1\\nmode: testing\\n');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${server}
}
`,
    );
    nginx = spawn(NGINX as string, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await waitForPort(address, lab.policyPort);

    const check = lab.cliIo();
    const code = await main(['check', domain, '--json'], check.value);
    const report = JSON.parse(check.out()) as Report;
    expect(report.evidence.policy.fetch?.http).toMatchObject({ status: 200, contentType: 'text/plain' });
    expect(report.evidence.policy.text).toBe(plan.policyText);
    expect(report.findings.map((f) => f.code)).toEqual(['POLICY_MODE_TESTING']);
    expect(code).toBe(0);
    // Anything else on the policy host is 404, never a redirect.
    const other = await httpsGet({
      host: `mta-sts.${domain}`,
      addresses: [address],
      port: lab.policyPort,
      path: '/',
      maxBytes: 65536,
      accept: 'text/html',
      ca: [lab.ca.rootPem],
      timeoutMs: 3000,
      now: new Date(),
    });
    expect(other.http?.status).toBe(404);
  },
);
