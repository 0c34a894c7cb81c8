import type { HostedDomain } from '../../src/store/hosting.js';

/** A hosted domain as the store gives it: active, in testing, with one MX; `over` changes what a test needs. */
export function hostedDomain(over: Partial<HostedDomain> = {}): HostedDomain {
  return {
    domain: 'example.com',
    policyHost: 'mta-sts.example.com',
    owner: 'T1',
    channelId: 'C1',
    token: 'abcdefghijklmnopqrst',
    status: 'active',
    mode: 'testing',
    maxAge: 604800,
    mx: ['mx1.example.com'],
    stsId: '20261201T100000',
    proposal: null,
    leavingUntil: null,
    nameLostAt: null,
    nameProblem: null,
    dnsId: null,
    dnsCheckedAt: null,
    dnsCarriesAt: null,
    remindedAt: null,
    certificate: null,
    createdAt: '2026-12-01T10:00:00.000Z',
    activatedAt: '2026-12-01T10:00:00.000Z',
    removedAt: null,
    updatedAt: '2026-12-01T10:00:00.000Z',
    ...over,
  };
}
