import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/** The answer to one DNS question: records, "no such record" (NXDOMAIN or NODATA), or a failure. */
export type DnsAnswer<T> =
  | { ok: true; records: T[] /** seconds, where the resolver tells it (A and AAAA) */; ttl?: number }
  | { ok: false; kind: 'nodata' | 'nxdomain'; message: string }
  | { ok: false; kind: 'error'; code: string; message: string };

export interface MxRecord {
  exchange: string;
  priority: number;
}

export interface DnsLookups {
  /** TXT records at `name`, each record's strings joined (RFC 7208 §3.3 style). */
  txt(name: string): Promise<DnsAnswer<string>>;
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  /** A and AAAA records at `name` (after CNAMEs), both asked at once. */
  addresses(name: string): Promise<DnsAnswer<string>>;
  /** The SOA record's primary name server at `name`, present only at a zone apex. */
  soa(name: string): Promise<DnsAnswer<string>>;
}

export interface DnsOptions {
  /** `ip` or `ip:port` (IPv6 as `[ip]:port`); the system's resolvers when empty. */
  servers?: readonly string[];
  timeoutMs: number;
}

const NO_RECORD = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

/** A resolver with configurable servers whose every query ends within the timeout, returning a value, never throwing. */
export function createDns(options: DnsOptions): DnsLookups {
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
  if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);

  async function ask<T>(name: string, type: string, query: () => Promise<T[]>): Promise<DnsAnswer<T>> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<DnsAnswer<T>>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            kind: 'error',
            code: 'ETIMEOUT',
            message: `${type} ${name}: no answer within ${options.timeoutMs} ms`,
          }),
        options.timeoutMs + 250,
      );
    });
    const answer = query().then(
      (records): DnsAnswer<T> => ({ ok: true, records }),
      (err: NodeJS.ErrnoException): DnsAnswer<T> => {
        const code = String(err.code ?? 'EUNKNOWN');
        if (code === 'ENOTFOUND')
          return { ok: false, kind: 'nxdomain', message: `${name} does not exist (NXDOMAIN)` };
        if (NO_RECORD.has(code))
          return { ok: false, kind: 'nodata', message: `${name} has no ${type} record` };
        return { ok: false, kind: 'error', code, message: `${type} ${name}: ${describeDnsError(code)}` };
      },
    );
    try {
      return await Promise.race([answer, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    txt: (name) =>
      ask(name, 'TXT', async () => (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''))),
    mx: (name) => ask(name, 'MX', () => resolver.resolveMx(name)),
    soa: (name) => ask(name, 'SOA', async () => [(await resolver.resolveSoa(name)).nsname]),
    async addresses(name) {
      if (isIP(name)) return { ok: true, records: [name] };
      const [a, aaaa] = await Promise.all([
        ask(name, 'A', () => resolver.resolve4(name, { ttl: true })),
        ask(name, 'AAAA', () => resolver.resolve6(name, { ttl: true })),
      ]);
      const found = [...(a.ok ? a.records : []), ...(aaaa.ok ? aaaa.records : [])];
      if (found.length > 0) {
        return { ok: true, records: found.map((r) => r.address), ttl: Math.min(...found.map((r) => r.ttl)) };
      }
      // Neither has records: a failure of either is the answer, else "no such record".
      if (!a.ok && a.kind === 'error') return a;
      if (!aaaa.ok && aaaa.kind === 'error') return aaaa;
      if (!a.ok && a.kind === 'nxdomain') return a;
      return { ok: false, kind: 'nodata', message: `${name} has no A or AAAA record` };
    },
  };
}

function describeDnsError(code: string): string {
  switch (code) {
    case 'ESERVFAIL':
      return 'the name server answered SERVFAIL';
    case 'ETIMEOUT':
      return 'no answer (timeout)';
    case 'EREFUSED':
      return 'the name server refused the query';
    case 'ECONNREFUSED':
      return 'could not contact the name server (connection refused)';
    case 'EBADRESP':
    case 'EFORMERR':
      return 'the answer was malformed';
    default:
      return `lookup failed (${code})`;
  }
}
