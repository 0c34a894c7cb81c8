import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pebbleMissing } from '../support/pebble.js';
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
