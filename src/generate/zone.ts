import type { DnsLookups } from '../core/net/dns.js';

/**
 * The zone a name lives in: the closest enclosing name with an SOA record. DNS panels want record names relative to
 * it. When no SOA answers (a lookup failure), the domain itself is taken as the zone, the common case.
 */
export async function findZone(dns: DnsLookups, domain: string): Promise<string> {
  const labels = domain.split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const name = labels.slice(i).join('.');
    const answer = await dns.soa(name);
    if (answer.ok && answer.records.length > 0) return name;
    if (!answer.ok && answer.kind === 'error') break;
  }
  return domain;
}
