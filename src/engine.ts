import { type CheckDeps, type CheckOptions, checkDomain, defaultDeps, type Report } from './core/check.js';
import type { Domain } from './core/domain.js';
import type { SigningKey } from './generate/domain-connect.js';
import type { EngineConfig } from './settings.js';

/** Everything a check needs, built once from the settings: the adapters (CLI, Slack, monitor) share it. */
export interface Engine {
  options: CheckOptions;
  deps: CheckDeps;
  /** For tests: the port of Domain Connect's HTTPS requests (443 on the Internet). */
  domainConnectPort?: number;
  domainConnectKey: SigningKey | null;
  /**
   * One check (see checkDomain). `signal` cancels it: the promise still resolves, to a report marked `aborted`, which
   * callers drop rather than show or store as the domain's state.
   */
  check(domain: Domain, signal?: AbortSignal): Promise<Report>;
  /** The same check over another network (the monitor's per-pass caches). */
  checkWith(domain: Domain, deps: CheckDeps, signal?: AbortSignal): Promise<Report>;
}

export interface EngineOverrides {
  /** Trust roots and ports of loopback peers, a clock: what tests change. */
  options?: Partial<Pick<CheckOptions, 'ca' | 'policyPort' | 'smtpPort' | 'now'>>;
  deps?: CheckDeps;
  domainConnectPort?: number;
}

export function createEngine(
  config: EngineConfig,
  domainConnectKey: SigningKey | null,
  overrides: EngineOverrides = {},
): Engine {
  const deps = overrides.deps ?? defaultDeps({ dnsServers: config.dnsServers, timeoutMs: config.timeoutMs });
  const options: CheckOptions = {
    timeoutMs: config.timeoutMs,
    certWarnDays: config.certWarnDays,
    allowPrivateNetworks: config.allowPrivateNetworks,
    smtpProbe: config.smtpProbe,
    maxMxHosts: config.maxMxHosts,
    maxAddressesPerMx: config.maxAddressesPerMx,
    ehloName: config.ehloName,
    ...overrides.options,
  };
  return {
    options,
    deps,
    ...(overrides.domainConnectPort ? { domainConnectPort: overrides.domainConnectPort } : {}),
    domainConnectKey,
    check: (domain, signal) => checkDomain(domain, options, deps, signal),
    checkWith: (domain, other, signal) => checkDomain(domain, options, other, signal),
  };
}
