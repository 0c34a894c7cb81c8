import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { whenAborted } from './connect.js';

/** The answer to one DNS question: records, "no such record" (NXDOMAIN or NODATA), or a failure. */
export type DnsAnswer<T> =
  | { ok: true; records: T[] /** seconds, where the resolver tells it (A and AAAA) */; ttl?: number }
  | { ok: false; kind: 'nodata' | 'nxdomain'; message: string }
  | { ok: false; kind: 'error'; code: string; message: string };

export interface MxRecord {
  exchange: string;
  priority: number;
}

/**
 * The lookups a check makes. Each takes an optional AbortSignal: once it aborts, the question is cancelled and the
 * answer is a failure (kind `error`, code `ABORT_ERR`), never "no such record"; nothing is asked if it already had.
 */
export interface DnsLookups {
  /** TXT records at `name`, each record's strings joined (RFC 7208 §3.3 style). */
  txt(name: string, signal?: AbortSignal): Promise<DnsAnswer<string>>;
  mx(name: string, signal?: AbortSignal): Promise<DnsAnswer<MxRecord>>;
  /** A and AAAA records at `name` (after CNAMEs), both asked at once. */
  addresses(name: string, signal?: AbortSignal): Promise<DnsAnswer<string>>;
  /** The SOA record's primary name server at `name`, present only at a zone apex. */
  soa(name: string, signal?: AbortSignal): Promise<DnsAnswer<string>>;
  /** The CNAME record at `name` itself (one hop, not followed); optional for lookups that wrap another. */
  cname?(name: string, signal?: AbortSignal): Promise<DnsAnswer<string>>;
}

export interface DnsOptions {
  /** `ip` or `ip:port` (IPv6 as `[ip]:port`); the system's resolvers when empty. */
  servers?: readonly string[];
  timeoutMs: number;
}

const NO_RECORD = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

/**
 * A resolver with configurable servers whose every query ends within the timeout, or when its signal aborts, returning
 * a value, never throwing.
 */
export function createDns(options: DnsOptions): DnsLookups {
  const resolverFor = resolvers(options);
  const ask = <T>(
    name: string,
    type: string,
    query: (resolver: Resolver) => Promise<T[]>,
    signal: AbortSignal | undefined,
  ): Promise<DnsAnswer<T>> => {
    if (signal?.aborted) return Promise.resolve(abortedAnswer(name, type));
    return answerWithin({ name, type, signal }, options.timeoutMs, query(resolverFor(signal)));
  };
  return {
    txt: (name, signal) =>
      ask(name, 'TXT', async (r) => (await r.resolveTxt(name)).map((chunks) => chunks.join('')), signal),
    mx: (name, signal) => ask(name, 'MX', (r) => r.resolveMx(name), signal),
    soa: (name, signal) => ask(name, 'SOA', async (r) => [(await r.resolveSoa(name)).nsname], signal),
    cname: (name, signal) => ask(name, 'CNAME', (r) => r.resolveCname(name), signal),
    async addresses(name, signal) {
      if (isIP(name)) return { ok: true, records: [name] };
      const [a, aaaa] = await Promise.all([
        ask(name, 'A', (r) => r.resolve4(name, { ttl: true }), signal),
        ask(name, 'AAAA', (r) => r.resolve6(name, { ttl: true }), signal),
      ]);
      return bothAddresses(name, a, aaaa);
    },
  };
}

/**
 * The resolver for a question: a shared one without a signal; with one, a resolver of that signal's own, cancelled
 * when it aborts, so that an aborted check cancels its own questions and no other check's.
 */
function resolvers(options: DnsOptions): (signal: AbortSignal | undefined) => Resolver {
  const newResolver = () => {
    const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
    if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
    return resolver;
  };
  const shared = newResolver();
  const bySignal = new WeakMap<AbortSignal, Resolver>();
  return (signal) => {
    if (!signal) return shared;
    const known = bySignal.get(signal);
    if (known) return known;
    const own = newResolver();
    whenAborted(signal, () => own.cancel());
    bySignal.set(signal, own);
    return own;
  };
}

/** The answer to a query under way, or a failure when it outlasts the timeout or the signal aborts. */
async function answerWithin<T>(
  question: { name: string; type: string; signal: AbortSignal | undefined },
  timeoutMs: number,
  query: Promise<T[]>,
): Promise<DnsAnswer<T>> {
  const { name, type } = question;
  let timer: NodeJS.Timeout | undefined;
  let unlisten = () => {};
  const cut = new Promise<DnsAnswer<T>>((resolve) => {
    const message = `${type} ${name}: no answer within ${timeoutMs} ms`;
    timer = setTimeout(
      () => resolve({ ok: false, kind: 'error', code: 'ETIMEOUT', message }),
      timeoutMs + 250,
    );
    unlisten = whenAborted(question.signal, () => resolve(abortedAnswer(name, type)));
  });
  const answer = query.then(
    (records): DnsAnswer<T> => ({ ok: true, records }),
    (err: NodeJS.ErrnoException) => failure<T>(name, type, err),
  );
  try {
    return await Promise.race([answer, cut]);
  } finally {
    clearTimeout(timer);
    unlisten();
  }
}

/** A question its signal ended: a failure (never "no such record"), so that nothing is concluded from it. */
function abortedAnswer<T>(name: string, type: string): DnsAnswer<T> {
  return { ok: false, kind: 'error', code: 'ABORT_ERR', message: `${type} ${name}: aborted` };
}

/** The A and AAAA answers as one: the addresses of both, else a failure of either, else "no such record". */
function bothAddresses(
  name: string,
  a: DnsAnswer<{ address: string; ttl: number }>,
  aaaa: DnsAnswer<{ address: string; ttl: number }>,
): DnsAnswer<string> {
  const found = [...(a.ok ? a.records : []), ...(aaaa.ok ? aaaa.records : [])];
  if (found.length > 0) {
    return { ok: true, records: found.map((r) => r.address), ttl: Math.min(...found.map((r) => r.ttl)) };
  }
  // Neither has records: a failure of either is the answer, else "no such record".
  if (!a.ok && a.kind === 'error') return a;
  if (!aaaa.ok && aaaa.kind === 'error') return aaaa;
  if (!a.ok && a.kind === 'nxdomain') return a;
  return { ok: false, kind: 'nodata', message: `${name} has no A or AAAA record` };
}

/** A resolver's error as an answer: "no such record" (NXDOMAIN or NODATA), or a failure named in words. */
function failure<T>(name: string, type: string, err: NodeJS.ErrnoException): DnsAnswer<T> {
  const code = String(err.code ?? 'EUNKNOWN');
  if (code === 'ENOTFOUND')
    return { ok: false, kind: 'nxdomain', message: `${name} does not exist (NXDOMAIN)` };
  if (NO_RECORD.has(code)) return { ok: false, kind: 'nodata', message: `${name} has no ${type} record` };
  return { ok: false, kind: 'error', code, message: `${type} ${name}: ${describeDnsError(code)}` };
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
    case 'ECANCELLED':
      return 'the query was cancelled';
    case 'EBADRESP':
    case 'EFORMERR':
      return 'the answer was malformed';
    default:
      return `lookup failed (${code})`;
  }
}
