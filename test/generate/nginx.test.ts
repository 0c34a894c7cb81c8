import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import type { Report } from '../../src/core/check.js';
import { httpsGet } from '../../src/core/net/https-get.js';
import type { RecordsPlan } from '../../src/generate/records.js';
import { Lab } from '../support/lab.js';
import { NGINX, NginxRunner, warnIfMissing } from './nginx-runner.js';

warnIfMissing('the nginx test (test/generate/nginx.test.ts)');

let lab: Lab;
let nginx: NginxRunner | null = null;
beforeAll(async () => {
  lab = await Lab.start();
});
afterAll(async () => {
  await nginx?.stop();
  await lab.stop();
});

test.skipIf(!NGINX)(
  'the generated nginx configuration, run by a real nginx, serves a policy that passes mtasts check',
  async () => {
    const domain = 'nginx.test';
    lab.set(domain, { SOA: true, MX: [{ preference: 10, exchange: `mx1.${domain}` }] });
    await lab.mxHost(`mx1.${domain}`);
    const io = lab.cliIo();
    expect(await main(['records', domain, '--rua', `mailto:tlsrpt@${domain}`, '--json'], io.value)).toBe(0);
    const { plan } = JSON.parse(io.out()) as { plan: RecordsPlan };
    expect(plan.steps).toHaveLength(1);
    const step = plan.steps[0] as RecordsPlan['steps'][0];
    for (const r of step.records) lab.set(r.name, { TXT: [r.value] });

    const address = lab.newAddress();
    lab.set(`mta-sts.${domain}`, { A: [address] });
    nginx = new NginxRunner(address, lab.policyPort, lab.cert([`mta-sts.${domain}`]));
    expect(step.snippets.nginx).toContain('return 200 "version: STSv1\\nmode: testing\\n');
    await nginx.serve(step.snippets.nginx, `mta-sts.${domain}`);

    const check = lab.cliIo();
    const code = await main(['check', domain, '--json'], check.value);
    const report = JSON.parse(check.out()) as Report;
    expect(report.evidence.policy.fetch?.http).toMatchObject({ status: 200, contentType: 'text/plain' });
    expect(report.evidence.policy.text).toBe(step.policyText);
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
