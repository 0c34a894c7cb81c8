import type { AppConfig } from '../config.js';
import type { DnsLookups } from '../core/net/dns.js';
import type { Db } from '../store/db.js';
import { HostingStore } from '../store/hosting.js';
import { rolloutInputsFrom } from './history.js';
import { HostingService, type HostingSettings } from './service.js';

/** The service's settings from the app's: MTASTS_HOSTING_* and whether private networks are allowed. */
export function hostingSettings(config: Pick<AppConfig, 'hosting' | 'engine'>): HostingSettings {
  return {
    name: config.hosting.name,
    addresses: config.hosting.addresses,
    maxPerWorkspace: config.hosting.maxPerWorkspace,
    maxMxPatterns: config.hosting.maxMxPatterns,
    pendingDays: config.hosting.pendingDays,
    allowPrivateNetworks: config.engine.allowPrivateNetworks,
  };
}

/**
 * The hosting service over a database and the engine's resolver, as the CLI, the Slack app and the monitor use it
 * (one per process; it keeps no state of its own).
 */
export function openHostingService(
  db: Db,
  dns: DnsLookups,
  config: Pick<AppConfig, 'hosting' | 'engine'>,
  now?: () => Date,
): HostingService {
  return new HostingService({
    store: new HostingStore(db),
    dns,
    settings: hostingSettings(config),
    history: rolloutInputsFrom(db),
    ...(now ? { now } : {}),
  });
}
