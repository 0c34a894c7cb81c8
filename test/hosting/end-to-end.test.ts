import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppConfig } from '../../src/config.js';
import { checkDomain } from '../../src/core/check.js';
import { parseDomain } from '../../src/core/domain.js';
import type { HostingService } from '../../src/hosting/service.js';
import { openHostingService } from '../../src/hosting/setup.js';
import { Lab } from '../support/lab.js';
import { pebbleMissing } from '../support/pebble.js';
import { AcmeRig } from './acme-rig.js';

const missing = pebbleMissing();
if (missing) console.warn(`SKIPPED: ${missing}`);

const HOSTING_NAME = 'policy.bot.test';
const DOMAIN = 'example.net';

/**
 * The whole path with the control half's real HostingService: a domain enrolled through the CNAME, a certificate
 * from pebble over tls-alpn-01 on the policy listener, and the check engine (as `mtasts check` runs it) finding the
 * hosted policy valid, over the lab's DNS with its MX host answering STARTTLS.
 */
describe.skipIf(missing !== null)('hosted MTA-STS end to end', () => {
  let lab: Lab;
  let rig: AcmeRig;
  let service: HostingService;
  beforeAll(async () => {
    lab = await Lab.start();
    const config = {
      hosting: { name: HOSTING_NAME, addresses: [], maxPerWorkspace: 50, maxMxPatterns: 20 },
      engine: { allowPrivateNetworks: true },
    } as unknown as Pick<AppConfig, 'hosting' | 'engine'>;
    rig = await AcmeRig.start({
      dns: lab.dns,
      policies: (db) => {
        service = openHostingService(db, lab.deps().dns, config);
        return service;
      },
    });
    lab.set(DOMAIN, { MX: [{ preference: 10, exchange: `mx1.${DOMAIN}` }] });
    await lab.mxHost(`mx1.${DOMAIN}`);
    lab.set(`_smtp._tls.${DOMAIN}`, { TXT: [`v=TLSRPTv1; rua=mailto:tls-reports@${DOMAIN}`] });
    lab.set(HOSTING_NAME, { A: ['127.0.0.1'] });
  });
  afterAll(async () => {
    await rig?.stop();
    await lab?.stop();
  });

  it('enrolls through the CNAME, gets a certificate, and `mtasts check` finds the hosted policy valid', async () => {
    const added = await service.add(DOMAIN, 'T0001', null);
    if (!added.ok) throw new Error(added.message);
    // The CNAME target is this enrollment's own (<token>.<hosting name>); the operator's wildcard resolves it.
    const cname = added.records.find((r) => r.type === 'CNAME' && r.name === `mta-sts.${DOMAIN}`);
    expect(cname?.value).toMatch(new RegExp(`^[a-z2-7]{20}\\.${HOSTING_NAME.replaceAll('.', '\\.')}$`));
    lab.set(cname?.value ?? '', { A: ['127.0.0.1'] });
    lab.set(`mta-sts.${DOMAIN}`, { CNAME: cname?.value ?? '' });
    await service.reconcileEnrollments();
    const txt = added.records.find((r) => r.type === 'TXT' && r.name === `_mta-sts.${DOMAIN}`);
    expect(txt?.value).toMatch(/^v=STSv1; id=/);
    lab.set(`_mta-sts.${DOMAIN}`, { TXT: [txt?.value ?? ''] });
    expect(await service.namesNeedingCertificates()).toEqual([`mta-sts.${DOMAIN}`]);

    const result = await rig.manager({ onEvent: (e) => service.onCertificateEvent(e) }).reconcile();
    expect(result, rig.pebble.log).toEqual({ issued: [`mta-sts.${DOMAIN}`], failed: [], deferred: [] });

    const parsed = parseDomain(DOMAIN);
    if (!parsed.ok) throw new Error('bad domain');
    const options = lab.options({ ca: [lab.ca.rootPem, rig.pebble.rootPem], policyPort: rig.port });
    const report = await checkDomain(parsed.domain, options, lab.deps());
    expect(report.evidence.policy.error).toBeNull();
    expect(report.evidence.policy.valid).toBe(true);
    expect(report.evidence.policy.text).toBe(await service.policyFor(`mta-sts.${DOMAIN}`));
    expect(report.evidence.policy.policy?.mx).toEqual([`mx1.${DOMAIN}`]);
    expect(report.status).not.toBe('fail');
  });
});
