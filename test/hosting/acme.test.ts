import { X509Certificate } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pebble, pebbleMissing } from '../support/pebble.js';
import { TestCa } from '../support/test-ca.js';
import { AcmeRig } from './acme-rig.js';
import { fetchPolicy, policyText } from './fixtures.js';

const missing = pebbleMissing();
if (missing) console.warn(`SKIPPED: ${missing}`);

describe.skipIf(missing !== null)('certificates from pebble over tls-alpn-01', () => {
  let rig: AcmeRig;
  beforeAll(async () => {
    rig = await AcmeRig.start();
  });
  afterAll(() => rig?.stop());

  it("orders a certificate for an enrolled name, which then serves the policy over a chain to pebble's root", async () => {
    rig.host('mta-sts.example.com', policyText('mx.example.com'));
    const result = await rig.manager().reconcile();
    expect(result, rig.pebble.log).toEqual({ issued: ['mta-sts.example.com'], failed: [], deferred: [] });
    expect(rig.events).toEqual([
      expect.objectContaining({ name: 'mta-sts.example.com', kind: 'issued', notAfter: expect.any(String) }),
    ]);
    const got = await fetchPolicy(rig.port, 'mta-sts.example.com', [rig.pebble.rootPem]);
    expect([got.status, got.body]).toEqual([200, policyText('mx.example.com')]);
    const stored = await rig.store.certificate('mta-sts.example.com');
    expect(got.fingerprint).toBe(stored?.fingerprint);
    const leaf = new X509Certificate(stored?.certPem ?? '');
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(leaf.subjectAltName).toBe('DNS:mta-sts.example.com');
  });

  it('does nothing on the next pass: the certificate is valid for longer than the renewal window', async () => {
    rig.events.length = 0;
    expect(await rig.manager().reconcile()).toEqual({ issued: [], failed: [], deferred: [] });
    expect(rig.events).toEqual([]);
  });
});

describe.skipIf(missing !== null)('renewal, failures and replicas', () => {
  let rig: AcmeRig;
  beforeAll(async () => {
    rig = await AcmeRig.start({ blocklist: ['mta-sts.blocked.example'] });
    rig.host('mta-sts.renew.example', policyText('mx.renew.example'));
    await rig.manager().reconcile();
  });
  afterAll(() => rig?.stop());

  it('renews without dropping a request: a client requesting in a loop sees the new certificate', async () => {
    const name = 'mta-sts.renew.example';
    const before = (await rig.store.certificate(name))?.fingerprint;
    const seen: string[] = [];
    const failures: unknown[] = [];
    let renewing = true;
    const loop = (async () => {
      // Until the renewal is done, then a few more requests.
      for (let after = 0; after < 3; after += renewing ? 0 : 1) {
        try {
          const got = await fetchPolicy(rig.port, name, [rig.pebble.rootPem]);
          if (got.status !== 200) failures.push(got.status);
          seen.push(got.fingerprint);
        } catch (e) {
          failures.push(e);
        }
      }
    })();
    rig.events.length = 0;
    // Pebble's certificates live for years: the manager's clock is moved to the day before this one expires.
    const notAfter = Date.parse((await rig.store.certificate(name))?.notAfter ?? '');
    const result = await rig.manager({ now: () => new Date(notAfter - DAY) }).reconcile();
    renewing = false;
    await loop;
    expect(result.issued).toEqual([name]);
    expect(rig.events).toEqual([expect.objectContaining({ name, kind: 'renewed' })]);
    const after = (await rig.store.certificate(name))?.fingerprint;
    expect(after).not.toBe(before);
    expect(failures).toEqual([]);
    expect(seen).toContain(before);
    expect(seen.at(-1)).toBe(after);
    expect(new Set(seen).size).toBeLessThanOrEqual(2);
  });

  it('records a failed order with its retry time, and orders no second time before it', async () => {
    const name = 'mta-sts.nowhere.example'; // enrolled, but not in DNS: pebble's validation fails
    rig.testPolicies.policies.set(name, policyText('mx.nowhere.example'));
    let clock = new Date();
    const manager = rig.manager({ now: () => clock });
    rig.events.length = 0;
    const first = await manager.reconcile();
    expect(first.failed).toEqual([name]);
    expect(rig.events).toEqual([
      expect.objectContaining({
        name,
        kind: 'failed',
        error: expect.any(String),
        retryAt: expect.any(String),
      }),
    ]);
    const failed = rig.events[0];
    expect(Date.parse(failed?.retryAt ?? '')).toBe(clock.getTime() + 3_600_000);
    expect(failed?.error).not.toMatch(/\n/);
    clock = new Date(clock.getTime() + 3_599_000);
    expect(await manager.reconcile()).toEqual({ issued: [], failed: [], deferred: [] });
    expect(rig.events).toHaveLength(1);
    clock = new Date(clock.getTime() + 1_000);
    const second = await manager.reconcile();
    expect(second.failed).toEqual([name]);
    expect(Date.parse(rig.events[1]?.retryAt ?? '')).toBe(clock.getTime() + 7_200_000);
    expect((await rig.store.failure(name))?.failures).toBe(2);
    rig.testPolicies.policies.delete(name);
  });

  it('reports a name the CA refuses to issue for, in one line', async () => {
    const name = 'mta-sts.blocked.example';
    rig.host(name, policyText('mx.blocked.example'));
    rig.events.length = 0;
    expect((await rig.manager().reconcile()).failed).toEqual([name]);
    expect(rig.events[0]?.error).toMatch(/blocked|policy forbids/i);
    rig.testPolicies.policies.delete(name);
  });

  it('orders once when two replicas on one database reconcile at the same time', async () => {
    const name = 'mta-sts.replicas.example';
    rig.host(name, policyText('mx.replicas.example'));
    rig.events.length = 0;
    const [a, b] = [rig.manager({ ownDatabase: true }), rig.manager({ ownDatabase: true })];
    const results = await Promise.all([a.reconcile(), b.reconcile()]);
    expect(results.flatMap((r) => r.issued)).toEqual([name]);
    expect(results.flatMap((r) => r.deferred)).toEqual([name]);
    expect(rig.events.filter((e) => e.name === name)).toEqual([expect.objectContaining({ kind: 'issued' })]);
    expect(await rig.store.ordersInProgress(new Date())).toBe(0);
  });

  it('uses http-01 on the plain HTTP listener when told to', async () => {
    const name = 'mta-sts.http.example';
    rig.host(name, policyText('mx.http.example'));
    rig.events.length = 0;
    const result = await rig.manager({ challengeTypes: ['http-01'] }).reconcile();
    expect(result.issued).toEqual([name]);
    const got = await fetchPolicy(rig.port, name, [rig.pebble.rootPem]);
    expect(got.status).toBe(200);
  });
});

const DAY = 86_400_000;

/** Stores a certificate record for `name` valid from `fromDays` to `toDays` (from now), as if a CA had issued it. */
async function storeValidity(rig: AcmeRig, name: string, fromDays: number, toDays: number): Promise<void> {
  const issued = new TestCa().issue({ names: [name] });
  const now = Date.now();
  await rig.store.putCertificate({
    name,
    keyPem: issued.key,
    certPem: issued.cert,
    fingerprint: `${name}:${fromDays}:${toDays}`,
    notBefore: new Date(now + fromDays * DAY).toISOString(),
    notAfter: new Date(now + toDays * DAY).toISOString(),
    issuedAt: new Date(now + fromDays * DAY).toISOString(),
  });
}

describe.skipIf(missing !== null)('which names a pass orders for', () => {
  let rig: AcmeRig;
  beforeAll(async () => {
    rig = await AcmeRig.start();
  });
  afterAll(() => rig?.stop());

  it('renews first (the soonest expiry first), caps new names, and leaves a fresh short-lived certificate alone', async () => {
    for (const n of ['new1', 'new2', 'new3', 'renew', 'short', 'shortold'])
      rig.host(`mta-sts.${n}.example`, policyText(`mx.${n}.example`));
    await storeValidity(rig, 'mta-sts.renew.example', -88, 2); // due in 2 days: must be renewed now
    await storeValidity(rig, 'mta-sts.short.example', 0, 6); // a fresh 6-day certificate: renewed after 4 days
    await storeValidity(rig, 'mta-sts.shortold.example', -5, 1); // a 6-day certificate on its last day
    const manager = rig.manager({ maxOrdersPerPass: 4, maxNewOrdersPerPass: 2 });
    expect(await manager.reconcile()).toEqual({
      issued: [
        'mta-sts.shortold.example',
        'mta-sts.renew.example',
        'mta-sts.new1.example',
        'mta-sts.new2.example',
      ],
      failed: [],
      deferred: ['mta-sts.new3.example'],
    });
    // The next pass: the new name left over, and nothing for the 6-day certificate (not re-ordered every pass).
    expect(await manager.reconcile()).toEqual({ issued: ['mta-sts.new3.example'], failed: [], deferred: [] });
    expect(await manager.reconcile()).toEqual({ issued: [], failed: [], deferred: [] });
  });
});

/**
 * A CA that rate-limits new orders: pebble (which has no rate limits) behind a small HTTPS front whose directory sends
 * newOrder to itself, answered 429 with a Retry-After and RFC 8555's rateLimited problem.
 */
async function rateLimitingFront(
  pebble: Pebble,
  retryAfter: string,
): Promise<{ url: string; orders: () => number; stop: () => Promise<void> }> {
  let orders = 0;
  const issued = pebble.listenerCa.issue({ names: ['localhost'] });
  const server = createHttpsServer({ key: issued.key, cert: issued.cert }, (req, res) => {
    if (req.method === 'POST' && req.url === '/order-plz') {
      orders++;
      res.writeHead(429, { 'Content-Type': 'application/problem+json', 'Retry-After': retryAfter });
      res.end(
        JSON.stringify({
          type: 'urn:ietf:params:acme:error:rateLimited',
          detail: 'too many new orders recently',
        }),
      );
      return;
    }
    pebble.fetch(pebble.directoryUrl).then((text) => {
      const directory = JSON.parse(text) as Record<string, unknown>;
      directory.newOrder = `https://127.0.0.1:${port}/order-plz`;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(directory));
    });
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  return {
    url: `https://127.0.0.1:${port}/dir`,
    orders: () => orders,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A CA whose newOrder never answers: pebble behind a front that holds that request until the client gives up. */
async function stallingFront(
  pebble: Pebble,
  onAbandoned: () => Promise<void>,
): Promise<{ url: string; abandoned: () => number; stop: () => Promise<void> }> {
  let abandoned = 0;
  const issued = pebble.listenerCa.issue({ names: ['localhost'] });
  const server = createHttpsServer({ key: issued.key, cert: issued.cert }, (req, res) => {
    if (req.method === 'POST' && req.url === '/order-plz') {
      res.on('close', () => {
        if (res.writableFinished) return;
        abandoned++;
        void onAbandoned();
      });
      return;
    }
    pebble.fetch(pebble.directoryUrl).then((text) => {
      const directory = JSON.parse(text) as Record<string, unknown>;
      directory.newOrder = `https://127.0.0.1:${port}/order-plz`;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(directory));
    });
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  return {
    url: `https://127.0.0.1:${port}/dir`,
    abandoned: () => abandoned,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe.skipIf(missing !== null)('an order that outlives its timeout', () => {
  let rig: AcmeRig;
  beforeAll(async () => {
    rig = await AcmeRig.start();
  });
  afterAll(() => rig?.stop());

  it('is cancelled at the CA (its request aborted), and the pass ends only once the order has really ended', async () => {
    const name = 'mta-sts.stalled.example';
    rig.host(name, policyText('mx.stalled.example'));
    let seen: () => void = () => {};
    const abandonedAtCa = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const front = await stallingFront(rig.pebble, async () => seen());
    // The request timeout (60 s) is far past the order's: only the order's own cancellation ends that request.
    const manager = rig.manager({ directoryUrl: front.url, orderTimeoutMs: 1500, requestTimeoutMs: 60_000 });
    const result = await manager.reconcile();
    expect(result).toEqual({ issued: [], failed: [name], deferred: [] });
    expect(rig.events[0]?.error).toMatch(/longer than 2 s/);
    await abandonedAtCa;
    expect(front.abandoned()).toBe(1);
    expect(await rig.store.ordersInProgress(new Date())).toBe(0);
    await front.stop();
  });
});

describe.skipIf(missing !== null)("a CA's rate limit", () => {
  let rig: AcmeRig;
  beforeAll(async () => {
    rig = await AcmeRig.start();
  });
  afterAll(() => rig?.stop());

  it('waits the Retry-After the CA asked for, ends the pass, and asks again only after it', async () => {
    const front = await rateLimitingFront(rig.pebble, '7200');
    rig.host('mta-sts.limited1.example', policyText('mx.limited1.example'));
    rig.host('mta-sts.limited2.example', policyText('mx.limited2.example'));
    let clock = new Date();
    const manager = rig.manager({ directoryUrl: front.url, now: () => clock });
    const result = await manager.reconcile();
    expect(result).toEqual({
      issued: [],
      failed: ['mta-sts.limited1.example'],
      deferred: ['mta-sts.limited2.example'],
    });
    expect(front.orders()).toBe(1);
    expect(rig.events).toEqual([
      expect.objectContaining({
        name: 'mta-sts.limited1.example',
        kind: 'failed',
        error: 'too many new orders recently',
        retryAt: new Date(clock.getTime() + 7_200_000).toISOString(),
      }),
    ]);
    expect(Date.parse((await rig.store.caBlockedUntil(front.url)) ?? '')).toBe(clock.getTime() + 7_200_000);
    // An hour later (the backoff alone would allow it): the CA is still blocked for every name and every replica,
    // so no request goes out and no channel is told again.
    clock = new Date(clock.getTime() + 3_600_000);
    const replica = rig.manager({ directoryUrl: front.url, now: () => clock, ownDatabase: true });
    for (const m of [manager, replica])
      expect(await m.reconcile()).toEqual({
        issued: [],
        failed: [],
        deferred: ['mta-sts.limited2.example'], // limited1 waits its own backoff as well
      });
    expect(front.orders()).toBe(1);
    expect(rig.events).toHaveLength(1);
    // Once the Retry-After has passed, one order is tried again (and limited again: one more alert).
    clock = new Date(clock.getTime() + 3_600_000);
    const later = await replica.reconcile();
    expect(later.failed).toHaveLength(1);
    expect(front.orders()).toBe(2);
    expect(rig.events).toHaveLength(2);
    await front.stop();
  });
});
