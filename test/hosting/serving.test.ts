import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAppConfig } from '../../src/config.js';
import { type Serving, startServing } from '../../src/hosting/serving.js';
import type { CertificateEvent } from '../../src/hosting/types.js';
import { AppMetrics } from '../../src/metrics.js';
import { TestDnsServer } from '../support/dns-server.js';
import { Pebble, pebbleMissing } from '../support/pebble.js';
import { fetchPolicy, handshake, policyText, TestPolicies, tempDatabase } from './fixtures.js';

const missing = pebbleMissing();
if (missing) console.warn(`SKIPPED: ${missing}`);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The serving half started from the app's settings, as the runtime starts it, against pebble. */
describe.skipIf(missing !== null)('startServing', () => {
  const NAME = 'mta-sts.started.example';
  const file = tempDatabase();
  const db = file.open();
  const policies = new TestPolicies();
  const events: CertificateEvent[] = [];
  let dns: TestDnsServer;
  let pebble: Pebble;
  let serving: Serving;
  let issued: Promise<void>;
  const metrics = new AppMetrics({
    databaseUp: async () => true,
    outbox: async () => ({ pending: 0, oldestCreatedAt: null }),
    passWorkers: async () => [],
    self: 'test',
    slackUp: () => null,
    now: () => new Date(),
  });

  beforeAll(async () => {
    dns = await TestDnsServer.start({ [NAME]: { A: ['127.0.0.1'] } });
    policies.policies.set(NAME, policyText('mx.started.example'));
    const [port, httpPort] = [await freePort(), await freePort()];
    pebble = await Pebble.start({ dnsServer: dns.address, tlsPort: port, httpPort });
    const settings = loadAppConfig(
      {
        MTASTS_HOSTING_LISTEN: `127.0.0.1:${port}`,
        MTASTS_HOSTING_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
        MTASTS_ACME_DIRECTORY: pebble.directoryUrl,
        MTASTS_ACME_INTERVAL_SECONDS: '3600',
      },
      'ingest',
    ).serving;
    let done: () => void = () => {};
    issued = new Promise((resolve) => {
      done = resolve;
    });
    serving = await startServing(settings, {
      db,
      policies,
      onEvent: (e) => {
        events.push(e);
        done();
      },
      log: () => {},
      httpsAgent: pebble.agent,
      metrics,
    });
  });
  afterAll(async () => {
    await serving?.stop(100);
    await pebble?.stop();
    await dns?.stop();
    await db.close();
    file.remove();
  });

  it('listens where told, orders at start, serves the policy, and stops listening at stop', async () => {
    await issued;
    expect(events, pebble.log).toEqual([expect.objectContaining({ name: NAME, kind: 'issued' })]);
    const got = await fetchPolicy(serving.port, NAME, [pebble.rootPem]);
    expect([got.status, got.body]).toEqual([200, policyText('mx.started.example')]);
    expect(serving.httpPort).not.toBeNull();
    expect((await handshake(serving.port, 'mta-sts.unknown.example', [pebble.rootPem])).ok).toBe(false);
    const text = await metrics.text();
    expect(text).toMatch(/mtasts_hosting_policy_requests_total\{status="200"\} 1/);
    expect(text).toMatch(/mtasts_hosting_connections_refused_total\{reason="unknown-name"\} 1/);
    expect(text).toMatch(/mtasts_hosting_certificates_total\{kind="issued"\} 1/);
    await serving.stop(100);
    const after = await handshake(serving.port, NAME, [pebble.rootPem]);
    expect(after).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
  });
});
