import type { CheckDeps } from '../core/check.js';
import type { DnsAnswer, DnsLookups } from '../core/net/dns.js';
import type { StarttlsEvidence, StarttlsProbeOptions } from '../core/net/starttls.js';

export interface PassCacheSettings {
  /** SMTP connections open at once to one address (politeness to each provider). */
  smtpPerAddress: number;
  /** SMTP connections open at once in all. */
  smtpConcurrency: number;
  /** How long a DNS answer without a TTL (TXT, MX: the resolver does not give theirs) is reused. */
  defaultTtlMs: number;
}

export const DEFAULT_PASS_CACHE: PassCacheSettings = {
  smtpPerAddress: 2,
  smtpConcurrency: 64,
  defaultTtlMs: 300_000,
};

export interface PassCacheStats {
  dnsQueries: number;
  dnsHits: number;
  probes: number;
  probeHits: number;
}

/** A counting semaphore: `run` waits for a free slot. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/**
 * The network of one monitoring pass: each distinct (MX host, address) is probed once and its result reused by every
 * domain that uses it; DNS answers are reused within their TTL; SMTP connections are limited per address and in all,
 * so a slow provider holds up only the domains that use it. A new one is made for every pass.
 */
export function passDeps(
  base: CheckDeps,
  settings: PassCacheSettings = DEFAULT_PASS_CACHE,
  clock: () => number = Date.now,
): { deps: CheckDeps; stats: PassCacheStats } {
  const stats: PassCacheStats = { dnsQueries: 0, dnsHits: 0, probes: 0, probeHits: 0 };
  const dnsCache = new Map<string, { answer: Promise<DnsAnswer<unknown>>; expires: number }>();
  const cached = <T>(key: string, ask: () => Promise<DnsAnswer<T>>): Promise<DnsAnswer<T>> => {
    const hit = dnsCache.get(key);
    if (hit && hit.expires > clock()) {
      stats.dnsHits++;
      return hit.answer as Promise<DnsAnswer<T>>;
    }
    stats.dnsQueries++;
    const answer = ask();
    const entry = { answer: answer as Promise<DnsAnswer<unknown>>, expires: clock() + settings.defaultTtlMs };
    dnsCache.set(key, entry);
    // Failures are not reused; answers with a TTL are kept for that long at most.
    void answer.then((a) => {
      if (!a.ok && a.kind === 'error') dnsCache.delete(key);
      else if (a.ok && a.ttl !== undefined) entry.expires = Math.min(entry.expires, clock() + a.ttl * 1000);
    });
    return answer;
  };
  const dns: DnsLookups = {
    txt: (name) => cached(`TXT ${name}`, () => base.dns.txt(name)),
    mx: (name) => cached(`MX ${name}`, () => base.dns.mx(name)),
    addresses: (name) => cached(`ADDR ${name}`, () => base.dns.addresses(name)),
    soa: (name) => cached(`SOA ${name}`, () => base.dns.soa(name)),
  };

  const global = new Limiter(settings.smtpConcurrency);
  const perAddress = new Map<string, Limiter>();
  const probes = new Map<string, Promise<StarttlsEvidence>>();
  const probeStarttls = (options: StarttlsProbeOptions): Promise<StarttlsEvidence> => {
    const key = `${options.host} ${options.address} ${options.port ?? 25}`;
    const hit = probes.get(key);
    if (hit) {
      stats.probeHits++;
      return hit;
    }
    stats.probes++;
    let limiter = perAddress.get(options.address);
    if (!limiter) {
      limiter = new Limiter(settings.smtpPerAddress);
      perAddress.set(options.address, limiter);
    }
    const address = limiter;
    const probe = address.run(() => global.run(() => base.probeStarttls(options)));
    probes.set(key, probe);
    return probe;
  };

  return { deps: { dns, fetchPolicy: base.fetchPolicy, probeStarttls }, stats };
}
