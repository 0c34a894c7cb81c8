import { setMaxListeners } from 'node:events';
import { domainToASCII } from 'node:url';
import { canonicalHost, type Domain } from './domain.js';
import {
  type Finding,
  type FindingCode,
  finding,
  SEVERITY_ORDER,
  type Severity,
  statusOf,
  stopsOf,
} from './findings.js';
import { nonPublicReason } from './net/address-guard.js';
import { type CertificateEvidence, describeTrustError } from './net/certificate.js';
import { whenAborted } from './net/connect.js';
import { createDns, type DnsAnswer, type DnsLookups, type MxRecord } from './net/dns.js';
import { fetchPolicy, type PolicyFetchEvidence, type PolicyFetchOptions } from './net/policy-fetch.js';
import { probeStarttls, type StarttlsEvidence, type StarttlsProbeOptions } from './net/starttls.js';
import {
  MAX_AGE_LIMIT,
  mxPatternMatches,
  mxPatternProblem,
  type Policy,
  type PolicyMode,
  parsePolicy,
} from './policy.js';
import { shown } from './problem.js';
import { isStsRecord, parseStsRecord } from './sts-record.js';
import { isTlsRptRecord, parseTlsRptRecord } from './tlsrpt-record.js';

/**
 * The network the check uses: real by default, wrapped with caches by the monitor, never mocked in tests. Each function
 * is given the check's AbortSignal (in its options, or as the lookup's second argument) and ends when it aborts.
 */
export interface CheckDeps {
  dns: DnsLookups;
  fetchPolicy: (options: PolicyFetchOptions) => Promise<PolicyFetchEvidence>;
  probeStarttls: (options: StarttlsProbeOptions) => Promise<StarttlsEvidence>;
}

export interface CheckOptions {
  /** Limit for each network step. */
  timeoutMs: number;
  certWarnDays: number;
  allowPrivateNetworks: boolean;
  /** False skips the SMTP probes (networks that block outbound port 25). */
  smtpProbe: boolean;
  /** MX hosts checked per domain, the most preferred first; the others are listed but not looked up or probed. */
  maxMxHosts: number;
  /** Addresses probed per MX host, in the order DNS gave them; also the policy host's addresses tried. */
  maxAddressesPerMx: number;
  /** Trusted roots; Node's roots plus NODE_EXTRA_CA_CERTS when absent. */
  ca?: string[];
  policyPort?: number;
  smtpPort?: number;
  ehloName: string;
  now?: () => Date;
}

export interface TxtEvidence {
  name: string;
  /** Every TXT record at the name, strings joined. */
  records: string[];
  error: string | null;
}

export interface PolicyEvidence {
  host: string;
  addresses: string[];
  notAllowed: { address: string; reason: string }[];
  fetch: PolicyFetchEvidence | null;
  /** The policy text as served (when it was read whole). */
  text: string | null;
  policy: Policy | null;
  /** Whether a sender would accept the policy text. */
  valid: boolean;
  error: string | null;
}

export interface MxHostEvidence {
  host: string;
  priority: number;
  addresses: string[];
  notAllowed: { address: string; reason: string }[];
  /** The policy mx pattern covering this host, or null. */
  coveredBy: string | null;
  probes: StarttlsEvidence[];
  error: string | null;
}

/** What the per-check limits left out: MX hosts beyond the most preferred, addresses beyond the first of a host. */
export interface ProbeLimitEvidence {
  maxMxHosts: number;
  maxAddressesPerMx: number;
  hostsNotChecked: string[];
  addressesNotProbed: { host: string; addresses: string[] }[];
}

export interface Evidence {
  sts: TxtEvidence & { id: string | null };
  tlsrpt: TxtEvidence & { rua: string[] | null };
  policy: PolicyEvidence;
  mx: {
    hosts: MxHostEvidence[];
    nullMx: boolean;
    error: string | null;
    /** Present when the limits left something out. */
    limited?: ProbeLimitEvidence;
  };
  smtpProbe: 'on' | 'off';
}

/** The report of one check: the contract's shape plus the evidence it was judged on. */
export interface Report {
  domain: string;
  /** The Unicode form of an internationalized domain (equal to `domain` otherwise). */
  domainUnicode: string;
  checkedAt: string;
  status: 'pass' | 'warn' | 'fail';
  findings: Finding[];
  evidence: Evidence;
  durationMs: number;
  /** Present when the check's signal aborted it: the report is incomplete and says nothing about the domain. */
  aborted?: true;
  /**
   * The last policy a sender could have cached, when this check found none in force (see policyInForce): set by
   * whoever keeps history (the monitor); null when none has been seen since; absent from a check with no history.
   */
  lastPolicy?: PolicySeen | null;
}

/** A policy senders could fetch and cache (RFC 8461 §3.3, §5): what it said, and when a check last saw it served. */
export interface PolicySeen {
  mode: PolicyMode;
  /** Seconds. */
  maxAge: number;
  /** The `_mta-sts` id it was published with. */
  id: string;
  seenAt: string;
}

export function defaultDeps(options: { dnsServers?: readonly string[]; timeoutMs: number }): CheckDeps {
  return {
    dns: createDns({
      ...(options.dnsServers ? { servers: options.dnsServers } : {}),
      timeoutMs: options.timeoutMs,
    }),
    fetchPolicy,
    probeStarttls,
  };
}

/**
 * `deps` with `signal` on every call that carries none: for a network wrapped by something that does not pass the
 * check's signal on (the monitor's per-pass caches), so that the real lookups and connections still end with it.
 */
export function withSignal(deps: CheckDeps, signal: AbortSignal): CheckDeps {
  const { dns } = deps;
  return {
    dns: {
      txt: (name, own) => dns.txt(name, own ?? signal),
      mx: (name, own) => dns.mx(name, own ?? signal),
      addresses: (name, own) => dns.addresses(name, own ?? signal),
      soa: (name, own) => dns.soa(name, own ?? signal),
    },
    fetchPolicy: (options) => deps.fetchPolicy(options.signal ? options : { ...options, signal }),
    probeStarttls: (options) => deps.probeStarttls(options.signal ? options : { ...options, signal }),
  };
}

/**
 * Checks a domain's MTA-STS and TLS-RPT setup as a sender would meet it. The TXT lookups, the policy fetch and every
 * MX probe run at once; each step has its own timeout, and no failure stops the others. Never throws on anything the
 * network returns.
 *
 * `signal` cancels the check as a whole: every DNS question, the policy fetch and each SMTP probe stop where they stand
 * and close their connections (none is opened once it has aborted). The check still resolves, never rejects: to a
 * report marked `aborted: true` whose unfinished steps carry `aborted` errors (DNS code ABORT_ERR, NetError kind
 * `aborted`) and the findings those failures make. Such a report says that the check was cut short, not how the domain
 * is set up: callers drop it (the monitor neither stores nor compares it).
 */
export async function checkDomain(
  domain: Domain,
  options: CheckOptions,
  deps: CheckDeps,
  signal?: AbortSignal,
): Promise<Report> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const startedMs = Date.now();
  const own = ownSignal(signal);
  const out = new FindingList(domain.ascii);
  const run: Run = {
    domain: domain.ascii,
    options,
    deps,
    out,
    now,
    signal: own?.signal,
    resolverFailures: [],
    notFound: false,
  };

  const policyPromise = checkPolicy(run);
  const [sts, tlsrpt, mx, policy] = await Promise.all([
    checkStsRecord(run),
    checkTlsRptRecord(run),
    checkMx(run, policyPromise),
    policyPromise,
  ]).finally(() => own?.unlisten());
  reconcile(run);

  const report: Report = {
    domain: run.domain,
    domainUnicode: domain.unicode,
    checkedAt: started.toISOString(),
    status: statusOf(run.out.items),
    findings: run.out.sorted(),
    evidence: { sts, tlsrpt, policy, mx, smtpProbe: options.smtpProbe ? 'on' : 'off' },
    durationMs: Date.now() - startedMs,
    ...(signal?.aborted ? { aborted: true as const } : {}),
  };
  return report;
}

/**
 * The policy a sender without a cached copy would fetch and cache from this check's view, or null when it would get
 * none: no valid `_mta-sts` record, or a finding the catalog marks as stopping the policy (fetch, certificate, media
 * type, syntax…).
 */
export function policyInForce(report: Report): PolicySeen | null {
  const e = report.evidence;
  const p = e.policy.policy;
  if (!e.policy.valid || !p || p.mode === null || p.maxAge === null || e.sts.id === null) return null;
  if (report.findings.some((f) => stopsOf(f.code) === 'policy')) return null;
  return { mode: p.mode, maxAge: p.maxAge, id: e.sts.id, seenAt: report.checkedAt };
}

/**
 * What the report means for mail right now, from the senders' side: one or two sentences. Each `{name}` in `text`
 * stands for the time `dates[name]` (ISO 8601), for the renderer to write in its own way (a terminal, Slack).
 */
export interface ImpactNow {
  text: string;
  dates: Record<string, string>;
}

/**
 * The impact now of a report: the policy in force and which MX hosts enforcing senders refuse; or, when none is in
 * force, what senders that cached the last one (report.lastPolicy) still do, and until when (RFC 8461 §3.3, §5).
 */
export function impactNow(report: Report): ImpactNow {
  const d = report.domain;
  const has = (code: FindingCode) => report.findings.some((f) => f.code === code);
  const plain = (text: string): ImpactNow => ({ text, dates: {} });
  if (has('DOMAIN_NOT_FOUND'))
    return plain(`${d} does not exist in DNS: mail to it bounces, whatever MTA-STS says.`);
  if (has('DNS_RESOLVER_FAILED'))
    return plain(`Not known: the resolver of this check failed, so it could not see ${d} as senders do.`);
  if (report.evidence.mx.nullMx)
    return plain(`${d} declares that it accepts no mail (null MX), so senders send it none.`);
  const inForce = policyInForce(report);
  return inForce ? plain(impactInForce(report, inForce.mode)) : impactCached(report);
}

/** Under a policy in force: what senders that apply it do with each MX host. */
function impactInForce(report: Report, mode: PolicyMode): string {
  if (mode === 'none')
    return 'mode is none: MTA-STS is switched off; senders that fetch this policy drop the one they cached.';
  const hosts = report.evidence.mx.hosts.map((h) => h.host);
  const refused = hosts.filter((h) =>
    report.findings.some((f) => f.subject === h && stopsOf(f.code) === 'mx'),
  );
  const down = hosts.filter((h) =>
    report.findings.some(
      (f) => f.subject === h && (f.code === 'MX_UNREACHABLE' || f.code === 'MX_SMTP_ERROR'),
    ),
  );
  const downText =
    down.length > 0
      ? ` ${list(down)} ${down.length === 1 ? 'accepts' : 'accept'} no SMTP session, from any sender.`
      : '';
  if (mode === 'testing') {
    const failing =
      refused.length > 0 ? `; they report the failures of ${list(refused)}, which enforce would refuse` : '';
    return `mode is testing: senders deliver as they would without MTA-STS${failing}.${downText}`;
  }
  if (refused.length === 0)
    return `mode is enforce: senders that apply MTA-STS deliver to every MX host over TLS with a valid certificate.${downText}`;
  const others = hosts.filter((h) => !refused.includes(h) && !down.includes(h));
  if (others.length === 0)
    return `mode is enforce: senders that apply MTA-STS deliver to none of the MX hosts; mail for ${report.domain} waits in their queues and bounces when their retry time runs out (often 5 days).${downText}`;
  return `mode is enforce: senders that apply MTA-STS do not deliver to ${list(refused)} and use ${list(others)} instead.${downText}`;
}

/** No policy in force: senders that cached the last one keep it until its max_age runs out; others see none. */
function impactCached(report: Report): ImpactNow {
  const fresh = 'senders without a cached copy find no policy and deliver without verified TLS';
  const last = report.lastPolicy;
  if (last === undefined)
    return {
      text: `Any sender that cached a policy earlier keeps applying it until its max_age runs out (this check keeps no history, so when is not known); ${fresh}.`,
      dates: {},
    };
  if (last === null)
    return {
      text: `No policy in force has been seen since monitoring began: ${fresh}; senders that cached one earlier keep it until its max_age runs out.`,
      dates: {},
    };
  const until = new Date(Date.parse(last.seenAt) + last.maxAge * 1000).toISOString();
  const dates = { seen: last.seenAt, until };
  const held = `mode ${last.mode}, max_age ${last.maxAge} (${describeSeconds(last.maxAge)}), last seen {seen}`;
  if (last.mode === 'none')
    return {
      text: `The last policy in force (last seen {seen}) said mode none: senders apply no MTA-STS either way.`,
      dates,
    };
  if (Date.parse(until) <= Date.parse(report.checkedAt))
    return {
      text: `The last policy in force (${held}) has run out of every cache since about {until}: senders find no policy and deliver without verified TLS.`,
      dates,
    };
  const doing = last.mode === 'enforce' ? 'keep enforcing it' : 'keep applying it (deliver and report)';
  return { text: `Senders that cached the policy (${held}) ${doing} until about {until}; ${fresh}.`, dates };
}

/** Writes each `{name}` of an impact with `date(iso)`. */
export function impactText(impact: ImpactNow, date: (iso: string) => string): string {
  return impact.text.replace(/\{(\w+)\}/g, (all, name: string) => {
    const iso = impact.dates[name];
    return iso === undefined ? all : date(iso);
  });
}

/** Host names as a list: "a", "a and b", "a, b and c". */
function list(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * The check's own signal, following the caller's: one listener on the caller's signal however many steps listen to
 * this one (a check with many MX addresses has more than Node's default of ten at once).
 */
function ownSignal(
  signal: AbortSignal | undefined,
): { signal: AbortSignal; unlisten: () => void } | undefined {
  if (!signal) return undefined;
  const own = new AbortController();
  setMaxListeners(0, own.signal);
  const unlisten = whenAborted(signal, () => own.abort(signal.reason));
  return { signal: own.signal, unlisten };
}

/** One check under way: what its steps read, the signal that ends them, and the list their findings go to. */
interface Run {
  /** The domain's A-label. */
  domain: string;
  options: CheckOptions;
  deps: CheckDeps;
  out: FindingList;
  now: () => Date;
  signal: AbortSignal | undefined;
  /** Questions the resolver itself failed (refused, unreachable, malformed): one finding for all, at the end. */
  resolverFailures: { name: string; type: string; code: string }[];
  /** The domain's own name does not exist (NXDOMAIN): the findings that only follow from that are dropped. */
  notFound: boolean;
  /** The POLICY_SYNTAX finding for a policy listing no mx: its fix names the MX hosts once they are known. */
  noMx?: Finding;
}

class FindingList {
  readonly items: Finding[] = [];
  constructor(private readonly domain: string) {}
  add(code: FindingCode, subject: string, seen: string, severity?: Severity, fix?: string): Finding {
    const f = finding(code, this.domain, subject, seen, severity, fix);
    this.items.push(f);
    return f;
  }

  /** Removes the findings `drop` picks. */
  remove(drop: (f: Finding) => boolean): void {
    const kept = this.items.filter((f) => !drop(f));
    this.items.splice(0, this.items.length, ...kept);
  }

  sorted(): Finding[] {
    return this.items
      .map((f, i) => ({ f, i }))
      .sort((a, b) => SEVERITY_ORDER[a.f.severity] - SEVERITY_ORDER[b.f.severity] || a.i - b.i)
      .map(({ f }) => f);
  }
}

/** Looks up TXT records and sorts out the lookup failure cases shared by the two records. */
async function txtLookup(
  run: Run,
  name: string,
): Promise<{ answer: DnsAnswer<string>; evidence: TxtEvidence }> {
  const answer = await run.deps.dns.txt(name, run.signal);
  const evidence: TxtEvidence = {
    name,
    records: answer.ok ? answer.records : [],
    error: answer.ok ? null : answer.message,
  };
  if (!answer.ok && answer.kind === 'error') lookupFailed(run, name, 'TXT', answer);
  return { answer, evidence };
}

/** Failures that are the resolver's own: it could not be reached, refused to answer, or could not be understood. */
const RESOLVER_FAILURES = new Set(['ECONNREFUSED', 'EREFUSED', 'ENOTIMP', 'EFORMERR', 'EBADRESP']);

/**
 * A lookup that failed for a reason other than "no such record". The resolver's own failures are kept for one
 * DNS_RESOLVER_FAILED at the end; any other (SERVFAIL, no answer) is one DNS_LOOKUP_FAILED for this name, saying
 * honestly that a recursive resolver's SERVFAIL or silence may be the domain's name servers' or its own.
 */
function lookupFailed(run: Run, name: string, type: string, answer: { code: string; message: string }): void {
  if (RESOLVER_FAILURES.has(answer.code)) {
    run.resolverFailures.push({ name, type, code: answer.code });
    return;
  }
  const d = run.domain;
  const detail = answer.message.slice(answer.message.indexOf(': ') + 2);
  const seen =
    answer.code === 'ESERVFAIL'
      ? `The resolver answered SERVFAIL for ${name} (${type}): either the name servers of ${d} failed (or its DNSSEC does not validate), or the resolver did.`
      : answer.code === 'ETIMEOUT'
        ? `No answer came for ${name} (${type}): ${detail}. Either the name servers of ${d} did not answer the resolver, or the resolver did not answer.`
        : `The ${type} lookup of ${name} failed: ${detail}.`;
  run.out.add('DNS_LOOKUP_FAILED', name, seen);
}

const RESOLVER_SAID: Record<string, string> = {
  ECONNREFUSED: 'could not be reached (connection refused) for',
  EREFUSED: 'refused to answer for',
  ENOTIMP: 'does not implement the questions for',
  EFORMERR: 'could not read the questions for',
  EBADRESP: 'sent malformed answers for',
};

/** One DNS_RESOLVER_FAILED for every question the resolver itself failed, grouped by what it did. */
function resolverFinding(run: Run): void {
  if (run.resolverFailures.length === 0) return;
  const byCode = new Map<string, string[]>();
  for (const f of run.resolverFailures) {
    byCode.set(f.code, [...(byCode.get(f.code) ?? []), `${f.name} (${f.type})`]);
  }
  const said = [...byCode].map(
    ([c, names]) => `${RESOLVER_SAID[c] ?? `failed (${c}) for`} ${names.join(', ')}`,
  );
  run.out.add('DNS_RESOLVER_FAILED', 'DNS resolver', `The resolver this check asks ${said.join('; it ')}.`);
}

/**
 * Findings that cannot stand beside others, settled once every step is done: the resolver's failures become one
 * finding; a domain that does not exist is that one finding, not the missing records that follow from it.
 */
function reconcile(run: Run): void {
  resolverFinding(run);
  if (run.notFound) {
    const follows = new Set<FindingCode>([
      'STS_RECORD_MISSING',
      'TLSRPT_MISSING',
      'POLICY_HOST_UNRESOLVABLE',
    ]);
    run.out.remove((f) => follows.has(f.code));
  }
}

async function checkStsRecord(run: Run): Promise<Evidence['sts']> {
  const { out } = run;
  const name = `_mta-sts.${run.domain}`;
  const { answer, evidence } = await txtLookup(run, name);
  const result = { ...evidence, id: null as string | null };
  if (!answer.ok && answer.kind === 'error') return result;
  const sts = evidence.records.filter(isStsRecord);
  if (sts.length === 0) {
    const others =
      evidence.records.length > 0 ? ` (${evidence.records.length} other TXT record(s) there)` : '';
    out.add('STS_RECORD_MISSING', name, `No TXT record starting with v=STSv1 at ${name}${others}.`);
  } else if (sts.length > 1) {
    out.add(
      'STS_RECORD_MULTIPLE',
      name,
      `${sts.length} records start with v=STSv1: ${sts.map(quote).join(', ')}.`,
    );
  } else {
    const parsed = parseStsRecord(sts[0] ?? '');
    for (const p of parsed.problems) out.add(p.code, name, `${quote(sts[0] ?? '')}: ${p.message}.`);
    result.id = parsed.record?.id ?? null;
  }
  return result;
}

async function checkTlsRptRecord(run: Run): Promise<Evidence['tlsrpt']> {
  const { out } = run;
  const name = `_smtp._tls.${run.domain}`;
  const { answer, evidence } = await txtLookup(run, name);
  const result = { ...evidence, rua: null as string[] | null };
  if (!answer.ok && answer.kind === 'error') return result;
  const records = evidence.records.filter(isTlsRptRecord);
  if (records.length === 0) {
    out.add('TLSRPT_MISSING', name, `No TXT record starting with v=TLSRPTv1 at ${name}.`);
  } else if (records.length > 1) {
    out.add(
      'TLSRPT_MULTIPLE',
      name,
      `${records.length} records start with v=TLSRPTv1: ${records.map(quote).join(', ')}.`,
    );
  } else {
    const parsed = parseTlsRptRecord(records[0] ?? '');
    for (const p of parsed.problems) out.add(p.code, name, `${quote(records[0] ?? '')}: ${p.message}.`);
    result.rua = parsed.record?.rua ?? null;
  }
  return result;
}

/** Resolves a host and keeps the addresses a check may connect to; the others are findings. */
async function allowedAddresses(
  run: Run,
  host: string,
  onMissing: (message: string) => void,
): Promise<{
  addresses: string[];
  allowed: string[];
  notAllowed: { address: string; reason: string }[];
  error: string | null;
}> {
  const answer = await run.deps.dns.addresses(host, run.signal);
  if (!answer.ok) {
    if (answer.kind === 'error') lookupFailed(run, host, 'A/AAAA', answer);
    else onMissing(answer.message);
    return { addresses: [], allowed: [], notAllowed: [], error: answer.message };
  }
  const notAllowed: { address: string; reason: string }[] = [];
  const allowed: string[] = [];
  for (const address of answer.records) {
    const reason = run.options.allowPrivateNetworks ? null : nonPublicReason(address);
    if (reason) notAllowed.push({ address, reason });
    else allowed.push(address);
  }
  if (notAllowed.length > 0) {
    run.out.add(
      'ADDRESS_NOT_ALLOWED',
      host,
      `${host} resolves to ${notAllowed.map((n) => n.reason).join('; ')}; it was not contacted.`,
    );
  }
  return { addresses: answer.records, allowed, notAllowed, error: null };
}

/** The policy host: its addresses, the fetch and its certificate, the HTTP answer, then the policy text. */
async function checkPolicy(run: Run): Promise<PolicyEvidence> {
  const { options, out } = run;
  const host = `mta-sts.${run.domain}`;
  const evidence: PolicyEvidence = {
    host,
    addresses: [],
    notAllowed: [],
    fetch: null,
    text: null,
    policy: null,
    valid: false,
    error: null,
  };
  const resolved = await allowedAddresses(run, host, (message) =>
    out.add('POLICY_HOST_UNRESOLVABLE', host, `${message}.`),
  );
  evidence.addresses = resolved.addresses;
  evidence.notAllowed = resolved.notAllowed;
  evidence.error = resolved.error;
  if (resolved.allowed.length === 0) return evidence;

  const fetched = await run.deps.fetchPolicy({
    host,
    // Tried in order until one answers: as many as an MX host's probed addresses, so that a hostile name with
    // dozens of dead addresses cannot hold a check for a timeout each.
    addresses: resolved.allowed.slice(0, options.maxAddressesPerMx),
    timeoutMs: options.timeoutMs,
    now: run.now(),
    ...(options.policyPort ? { port: options.policyPort } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(run.signal ? { signal: run.signal } : {}),
  });
  evidence.fetch = fetched;
  const cert = fetched.tls?.certificate;
  if (cert) certificateFindings(cert, host, 'POLICY', options, out, resolved.allowed);
  const body = policyBody(fetched, evidence, out);
  if (body !== null) policyText(run, body, fetched.url, evidence);
  return evidence;
}

/** Judges the HTTP answer as a strict sender does; the body when a sender would go on to parse it, else null. */
function policyBody(fetched: PolicyFetchEvidence, evidence: PolicyEvidence, out: FindingList): string | null {
  const host = evidence.host;
  if (!fetched.http) {
    evidence.error = fetched.error?.message ?? 'no answer';
    fetchFailed(fetched, evidence.error, host, out);
    return null;
  }
  const http = fetched.http;
  if (http.status >= 300 && http.status < 400) {
    const to = http.location ? ` to ${quote(http.location)}` : '';
    out.add('POLICY_REDIRECT', host, `${fetched.url} answered ${http.status}, a redirect${to}.`);
    return null;
  }
  if (http.status !== 200) {
    out.add('POLICY_HTTP_STATUS', host, `${fetched.url} answered HTTP ${http.status}.`);
    return null;
  }
  const mediaType = (http.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType !== 'text/plain') {
    const seen = http.contentType ? `"${http.contentType}"` : 'no Content-Type';
    out.add('POLICY_CONTENT_TYPE', host, `${fetched.url} is served with ${seen}.`);
  }
  if (http.tooLarge || http.body === null) {
    const size =
      http.contentLength !== null
        ? `${http.contentLength} bytes declared`
        : `over ${http.bytesRead} bytes sent`;
    out.add('POLICY_TOO_LARGE', host, `${fetched.url} is ${size}; the limit is 65536.`);
    return null;
  }
  return http.body;
}

/**
 * No HTTP answer could be read. A TLS connection that then got no answer, or an answer whose body never arrived in
 * full, says where the server stalls, and so what to look at.
 */
function fetchFailed(fetched: PolicyFetchEvidence, error: string, host: string, out: FindingList): void {
  const url = fetched.url;
  const stalled = fetched.tls !== null && fetched.error !== null;
  if (stalled && /body not received|whole policy arrived/.test(error)) {
    out.add(
      'POLICY_FETCH_FAILED',
      host,
      `${url} began to answer, but the body of the policy did not arrive in full: ${error}.`,
      undefined,
      'The server sends the head of its answer but not the whole body: look for rate limiting, a proxy or CDN that buffers or throttles the response, or a backend that stalls mid-answer. The policy is a few hundred bytes: serve it as a static file so that it arrives at once.',
    );
  } else if (stalled && /no HTTP answer/.test(error)) {
    out.add(
      'POLICY_FETCH_FAILED',
      host,
      `${url} accepted the TLS connection but did not answer the request: ${error}.`,
      undefined,
      `The web server for ${host} completes TLS and then stalls: check the server or the backend behind its proxy, and that the request for /.well-known/mta-sts.txt is answered at once.`,
    );
  } else out.add('POLICY_FETCH_FAILED', host, `${url} could not be read: ${error}.`);
}

/**
 * Parses the policy text served at `url` and judges its mode and max_age. A policy senders discard (POLICY_SYNTAX)
 * says nothing about modes: only its syntax is reported, each problem with the change that mends it.
 */
function policyText(run: Run, body: string, url: string, evidence: PolicyEvidence): void {
  const { out } = run;
  const host = evidence.host;
  evidence.text = body;
  const parsed = parsePolicy(body);
  evidence.policy = parsed.policy;
  evidence.valid = parsed.valid;
  for (const p of parsed.problems) {
    const fix = p.code === 'POLICY_SYNTAX' ? syntaxFix(p.message, body, parsed.policy) : undefined;
    const added = out.add(p.code, url, `${p.message}.`, undefined, fix && `${fix} ${NEW_ID}`);
    if (/lists no mx/.test(p.message)) run.noMx = added;
  }
  if (!parsed.valid) return;
  const { mode, maxAge } = parsed.policy;
  if (mode === 'testing') out.add('POLICY_MODE_TESTING', host, 'The policy says mode: testing.');
  if (mode === 'none') out.add('POLICY_MODE_NONE', host, 'The policy says mode: none.');
  if (mode === 'enforce' && maxAge !== null && maxAge < 604800) {
    out.add('POLICY_MAX_AGE_SHORT', host, `max_age is ${maxAge} seconds (${describeSeconds(maxAge)}).`);
  }
}

const NEW_ID = 'Then publish a new id in the _mta-sts record, so that senders fetch the mended policy.';

/** The exact change a POLICY_SYNTAX problem asks for: the line to write, add or delete; undefined when unsure. */
function syntaxFix(message: string, body: string, policy: Policy): string | undefined {
  const numbered = /^line (\d+)/.exec(message);
  if (!numbered) return missingFieldFix(message, policy);
  const n = Number(numbered[1]);
  const raw = (body.split('\n')[n - 1] ?? '').replace(/\r$/, '');
  if (/ is empty;/.test(message)) return `Delete line ${n}: it is empty, and every line must be key: value.`;
  if (/carriage return/.test(message))
    return `Save the file with LF (or CRLF) line ends: line ${n} holds a carriage return of its own.`;
  if (/control character/.test(message)) return `Remove the control character from line ${n}.`;
  const line = mendedLine(raw);
  // A mode that needs mx lines, in a policy that has none: both changes at once, so that the next check is clean.
  const andMx = /^mode: (enforce|testing)$/.test(line ?? '') && policy.mx.length === 0;
  if (line) return `Change line ${n} to \`${line}\`${andMx ? ', and add one `mx:` line per MX host' : ''}.`;
  if (/^line \d+: mode /.test(message))
    return `Change line ${n} to one of \`mode: enforce\`, \`mode: testing\` or \`mode: none\`.`;
  if (/ has no value/.test(message)) return `Give line ${n} a value, or delete it.`;
  return `Write line ${n} as key: value (version, mode, max_age or mx), or delete it.`;
}

/** A field the policy lacks: the line to add. */
function missingFieldFix(message: string, policy: Policy): string | undefined {
  if (/version field is missing/.test(message)) return 'Add the line `version: STSv1` as the first line.';
  if (/mode field is missing/.test(message))
    return 'Add the line `mode: testing` (or `mode: enforce` once reports are clean).';
  if (/max_age field is missing/.test(message))
    return `Add the line \`max_age: ${policy.mode === 'enforce' ? 604800 : 86400}\`.`;
  if (/lists no mx/.test(message)) return 'Add one line per MX host, such as `mx: mail.example.com`.';
  return undefined;
}

/** What a malformed line of a known field was most likely meant to say, written correctly; null when unsure. */
function mendedLine(raw: string): string | null {
  const m = /^\s*([A-Za-z_]+)\s*(?:[:=]|\s)\s*(.*?)\s*$/.exec(raw);
  if (!m) return null;
  const key = (m[1] ?? '').toLowerCase();
  const value = m[2] ?? '';
  switch (key) {
    case 'version':
      return 'version: STSv1';
    case 'mode': {
      const v = value.toLowerCase();
      const mode = (['enforce', 'testing', 'none'] as const).find(
        (x) => v.startsWith(x.slice(0, 4)) || (v.length >= 3 && x.startsWith(v)),
      );
      return mode ? `mode: ${mode}` : null;
    }
    case 'max_age': {
      const seconds = /^(\d{1,12})\s*s?$/i.exec(value)?.[1];
      if (seconds === undefined || Number(seconds) === 0) return 'max_age: 604800';
      return `max_age: ${Math.min(Number(seconds), MAX_AGE_LIMIT)}`;
    }
    case 'mx': {
      const ascii = domainToASCII(value.replace(/\.$/, '').replace(/^\*\./, 'wildcard.'));
      const pattern = value.startsWith('*.') ? ascii.replace(/^wildcard\./, '*.') : ascii;
      return pattern && mxPatternProblem(pattern) === null ? `mx: ${pattern}` : null;
    }
    default:
      return null;
  }
}

/** The MX records, each kept host resolved and probed, then their coverage by the policy (fetched meanwhile). */
async function checkMx(run: Run, policyPromise: Promise<PolicyEvidence>): Promise<Evidence['mx']> {
  const result: Evidence['mx'] = { hosts: [], nullMx: false, error: null };
  const records = await lookupMx(run, result);
  if (records === null) {
    await policyPromise;
    return result;
  }
  await checkMxHosts(run, records, result);
  // The policy arrives concurrently; MX coverage is judged once both are known.
  coverageFindings(result.hosts, await policyPromise, run.out);
  if (run.noMx && result.hosts.length > 0) {
    const lines = result.hosts.map((h) => `\`mx: ${h.host}\``).join(', ');
    run.noMx.fix = `Add one line per MX host: ${lines}. ${NEW_ID}`;
  }
  return result;
}

/** The MX records in the order they are checked, or null (with its finding) when there is no host to check. */
async function lookupMx(run: Run, result: Evidence['mx']): Promise<MxRecord[] | null> {
  const { domain: d, out } = run;
  const answer = await run.deps.dns.mx(d, run.signal);
  if (!answer.ok) {
    result.error = answer.message;
    if (answer.kind === 'error') lookupFailed(run, d, 'MX', answer);
    else if (answer.kind === 'nxdomain') {
      run.notFound = true;
      out.add('DOMAIN_NOT_FOUND', d, `The DNS answers that ${d} does not exist (NXDOMAIN).`);
    } else {
      out.add(
        'MX_MISSING',
        d,
        `${d} publishes no MX record; senders fall back to its A/AAAA records (implicit MX), which MTA-STS cannot name.`,
      );
    }
    return null;
  }
  // By preference, then by name, so that the same hosts are kept by the limit whatever order DNS answers in.
  const records = [...answer.records].sort(
    (a, b) => a.priority - b.priority || byName(canonicalHost(a.exchange), canonicalHost(b.exchange)),
  );
  if (records.some((r) => r.exchange === '' || r.exchange === '.')) {
    result.nullMx = true;
    out.add('MX_MISSING', d, `${d} publishes a null MX ("0 ."): it declares that it accepts no mail.`);
    return null;
  }
  return records;
}

/** Resolves and probes the most preferred hosts, lists the others, and judges what the probes saw. */
async function checkMxHosts(run: Run, records: MxRecord[], result: Evidence['mx']): Promise<void> {
  const { domain: d, options, out } = run;
  // A bounded number of connections per check, whatever the domain publishes: the most preferred hosts first.
  const checked = await Promise.all(
    records.slice(0, options.maxMxHosts).map((record) => checkMxHost(run, record)),
  );
  result.hosts = [
    ...checked.map((c) => c.evidence),
    ...records.slice(options.maxMxHosts).map((record) => notCheckedHost(record, options)),
  ];
  probeLimit(result, d, checked, options, out);

  if (options.smtpProbe) smtpFindings(result.hosts, d, options, out);
  else
    out.add(
      'MX_PROBE_SKIPPED',
      d,
      'The SMTP probes are turned off by configuration (MTASTS_SMTP_PROBE=off).',
    );
}

/**
 * Which policy mx pattern covers each MX host (MX_NOT_IN_POLICY), and which patterns cover none (POLICY_MX_UNUSED).
 * Coverage is recorded for any policy text, but judged only for a valid one: senders discard an invalid policy, so
 * none of them refuses an MX host for it.
 */
function coverageFindings(hosts: MxHostEvidence[], policyEvidence: PolicyEvidence, out: FindingList): void {
  const policy = policyEvidence.policy;
  if (!policy || policy.mode === null || policy.mode === 'none') return;
  for (const host of hosts)
    host.coveredBy = policy.mx.find((pattern) => mxPatternMatches(pattern, host.host)) ?? null;
  if (!policyEvidence.valid) return;
  const severity: Severity = policy.mode === 'enforce' ? 'error' : 'warning';
  for (const host of hosts) {
    if (host.coveredBy === null) {
      const listed = policy.mx.length > 0 ? policy.mx.join(', ') : 'no patterns';
      out.add(
        'MX_NOT_IN_POLICY',
        host.host,
        `${host.host} matches none of the policy's mx patterns (${listed}).`,
        severity,
      );
    }
  }
  for (const pattern of policy.mx) {
    if (!hosts.some((h) => mxPatternMatches(pattern, h.host))) {
      const names = hosts.map((h) => h.host).join(', ');
      out.add(
        'POLICY_MX_UNUSED',
        policyEvidence.host,
        `The pattern "mx: ${pattern}" matches none of the MX hosts (${names}).`,
      );
    }
  }
}

/** Resolves one MX host and probes its first addresses; the allowed addresses beyond the limit are returned. */
async function checkMxHost(
  run: Run,
  record: MxRecord,
): Promise<{ evidence: MxHostEvidence; notProbed: string[] }> {
  const { options, out } = run;
  const host = canonicalHost(record.exchange);
  const resolved = await allowedAddresses(run, host, (message) =>
    out.add('MX_UNREACHABLE', host, `${message}: senders have no address to connect to.`),
  );
  const probed = options.smtpProbe ? resolved.allowed.slice(0, options.maxAddressesPerMx) : [];
  const probes = await Promise.all(
    probed.map((address) =>
      run.deps.probeStarttls({
        host,
        address,
        ehloName: options.ehloName,
        timeoutMs: options.timeoutMs,
        now: run.now(),
        ...(options.smtpPort ? { port: options.smtpPort } : {}),
        ...(options.ca ? { ca: options.ca } : {}),
        ...(run.signal ? { signal: run.signal } : {}),
      }),
    ),
  );
  const evidence: MxHostEvidence = {
    host,
    priority: record.priority,
    addresses: resolved.addresses,
    notAllowed: resolved.notAllowed,
    coveredBy: null,
    probes,
    error: resolved.error,
  };
  return { evidence, notProbed: options.smtpProbe ? resolved.allowed.slice(options.maxAddressesPerMx) : [] };
}

/** An MX host beyond the limit: listed (the policy must still cover it), not looked up. */
function notCheckedHost(record: MxRecord, options: CheckOptions): MxHostEvidence {
  return {
    host: canonicalHost(record.exchange),
    priority: record.priority,
    addresses: [],
    notAllowed: [],
    coveredBy: null,
    probes: [],
    error: `not checked: beyond the ${options.maxMxHosts} most preferred MX hosts`,
  };
}

/** Records and reports (MX_PROBE_LIMITED) what the per-check limits left out, if anything. */
function probeLimit(
  result: Evidence['mx'],
  d: string,
  checked: { evidence: MxHostEvidence; notProbed: string[] }[],
  options: CheckOptions,
  out: FindingList,
): void {
  const hostsNotChecked = result.hosts.slice(checked.length).map((h) => h.host);
  const addressesNotProbed = checked
    .filter((c) => c.notProbed.length > 0)
    .map((c) => ({ host: c.evidence.host, addresses: c.notProbed }));
  if (hostsNotChecked.length === 0 && addressesNotProbed.length === 0) return;
  result.limited = {
    maxMxHosts: options.maxMxHosts,
    maxAddressesPerMx: options.maxAddressesPerMx,
    hostsNotChecked,
    addressesNotProbed,
  };
  const seen: string[] = [];
  if (hostsNotChecked.length > 0) {
    seen.push(
      `${d} lists ${result.hosts.length} MX hosts; only the ${options.maxMxHosts} most preferred were checked, not ${some(hostsNotChecked)}.`,
    );
  }
  for (const { host, addresses: left } of addressesNotProbed) {
    seen.push(
      `${host} has ${options.maxAddressesPerMx + left.length} addresses; only the first ${options.maxAddressesPerMx} were probed, not ${some(left)}.`,
    );
  }
  out.add('MX_PROBE_LIMITED', d, seen.join(' '));
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The first few items of a list, and how many more. */
function some(items: readonly string[]): string {
  const more = items.length - 5;
  return `${items.slice(0, 5).join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

function smtpFindings(hosts: MxHostEvidence[], d: string, options: CheckOptions, out: FindingList): void {
  const probes = hosts.flatMap((h) => h.probes);
  if (probes.length > 0 && probes.every((p) => p.failedAt === 'connect' && p.error?.kind === 'timeout')) {
    const list = probes.map((p) => p.address).join(', ');
    out.add('SMTP_PORT_BLOCKED', d, `Every MX address (${list}) timed out on port 25.`);
    return;
  }
  for (const host of hosts) {
    if (host.probes.length > 0) hostSmtpFindings(host, options, out);
  }
}

/** What the probes of one MX host saw: no connection, a broken dialogue, no STARTTLS, TLS failures, certificates. */
function hostSmtpFindings(host: MxHostEvidence, options: CheckOptions, out: FindingList): void {
  const connected = host.probes.filter((p) => p.connected);
  if (connected.length === 0) {
    const why = host.probes.map((p) => p.error?.message ?? 'no connection').join('; ');
    out.add('MX_UNREACHABLE', host.host, `No address of ${host.host} accepted a connection: ${why}.`);
    return;
  }
  const dialogue = connected.filter((p) => p.failedAt === 'banner' || p.failedAt === 'ehlo');
  if (dialogue.length > 0) {
    out.add('MX_SMTP_ERROR', host.host, dialogue.map((p) => `${p.error?.message ?? 'failed'}.`).join(' '));
  }
  const noStarttls = connected.filter((p) => p.failedAt === 'starttls' && p.error === null);
  if (noStarttls.length > 0) {
    out.add(
      'MX_STARTTLS_MISSING',
      host.host,
      `${host.host} (${addresses(noStarttls)}) does not announce STARTTLS after EHLO.`,
    );
  }
  const tlsFailed = connected.filter(
    (p) => (p.failedAt === 'starttls' && p.error !== null) || p.failedAt === 'tls',
  );
  for (const p of tlsFailed) out.add('MX_TLS_FAILED', host.host, `${p.error?.message ?? 'TLS failed'}.`);
  const oldTls = connected.filter((p) => p.tls && !['TLSv1.2', 'TLSv1.3'].includes(p.tls.protocol));
  if (oldTls.length > 0) {
    out.add(
      'MX_TLS_FAILED',
      host.host,
      `${host.host} (${addresses(oldTls)}) negotiated ${oldTls[0]?.tls?.protocol}; MTA-STS needs TLS 1.2 or later.`,
    );
  }
  probeCertificateFindings(host.host, connected, options, out);
}

/** One set of certificate findings per distinct certificate the host showed, naming the addresses it showed it at. */
function probeCertificateFindings(
  host: string,
  connected: readonly StarttlsEvidence[],
  options: CheckOptions,
  out: FindingList,
): void {
  const byFingerprint = new Map<string, { cert: CertificateEvidence; addresses: string[] }>();
  for (const p of connected) {
    const cert = p.tls?.certificate;
    if (!cert) continue;
    const entry = byFingerprint.get(cert.fingerprint) ?? { cert, addresses: [] };
    entry.addresses.push(p.address);
    byFingerprint.set(cert.fingerprint, entry);
  }
  for (const { cert, addresses: addrs } of byFingerprint.values()) {
    certificateFindings(cert, host, 'MX', options, out, addrs);
  }
}

/** The *_CERT_* findings for one certificate seen on `host`, shared by the policy host and the MX hosts. */
function certificateFindings(
  cert: CertificateEvidence,
  host: string,
  prefix: 'POLICY' | 'MX',
  options: CheckOptions,
  out: FindingList,
  seenAt: readonly string[],
): void {
  const at = seenAt.length > 0 ? ` at ${seenAt.join(', ')}` : '';
  if (cert.expired) {
    out.add(
      `${prefix}_CERT_EXPIRED`,
      host,
      `The certificate of ${host}${at} expired on ${cert.notAfter} (${-cert.daysLeft} days ago).`,
    );
  } else if (cert.daysLeft < options.certWarnDays) {
    out.add(
      `${prefix}_CERT_EXPIRING`,
      host,
      `The certificate of ${host}${at} expires on ${cert.notAfter}, in ${cert.daysLeft} day(s) (warning window ${options.certWarnDays} days).`,
    );
  }
  if (!cert.nameMatches) {
    const names = cert.names.length > 0 ? cert.names.join(', ') : 'no DNS names';
    out.add(`${prefix}_CERT_NAME_MISMATCH`, host, `The certificate of ${host}${at} is for ${names}.`);
  }
  if (!cert.trusted && cert.trustError) {
    out.add(
      `${prefix}_CERT_UNTRUSTED`,
      host,
      `The certificate of ${host}${at}, issued by ${cert.issuer || 'an unnamed issuer'}, does not validate: ${describeTrustError(cert.trustError)}.`,
    );
  }
}

function addresses(probes: readonly StarttlsEvidence[]): string {
  return probes.map((p) => p.address).join(', ');
}

function quote(text: string): string {
  return `"${shown(text, 120)}"`;
}

function describeSeconds(s: number): string {
  const [n, unit] =
    s < 3600
      ? [Math.round(s / 60), 'minute']
      : s < 172800
        ? [Math.round(s / 3600), 'hour']
        : [Math.round(s / 86400), 'day'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
