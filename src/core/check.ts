import { setMaxListeners } from 'node:events';
import { canonicalHost, type Domain } from './domain.js';
import {
  type Finding,
  type FindingCode,
  finding,
  SEVERITY_ORDER,
  type Severity,
  statusOf,
} from './findings.js';
import { nonPublicReason } from './net/address-guard.js';
import { type CertificateEvidence, describeTrustError } from './net/certificate.js';
import { whenAborted } from './net/connect.js';
import { createDns, type DnsAnswer, type DnsLookups, type MxRecord } from './net/dns.js';
import { fetchPolicy, type PolicyFetchEvidence, type PolicyFetchOptions } from './net/policy-fetch.js';
import { probeStarttls, type StarttlsEvidence, type StarttlsProbeOptions } from './net/starttls.js';
import { mxPatternMatches, type Policy, parsePolicy } from './policy.js';
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
  /** Addresses probed per MX host, in the order DNS gave them. */
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
  const run: Run = { domain: domain.ascii, options, deps, out, now, signal: own?.signal };

  const policyPromise = checkPolicy(run);
  const [sts, tlsrpt, mx, policy] = await Promise.all([
    checkStsRecord(run),
    checkTlsRptRecord(run),
    checkMx(run, policyPromise),
    policyPromise,
  ]).finally(() => own?.unlisten());

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
}

class FindingList {
  readonly items: Finding[] = [];
  constructor(private readonly domain: string) {}
  add(code: FindingCode, subject: string, seen: string, severity?: Severity): void {
    this.items.push(finding(code, this.domain, subject, seen, severity));
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
  if (!answer.ok && answer.kind === 'error')
    run.out.add('DNS_LOOKUP_FAILED', name, `The TXT lookup failed: ${answer.message}.`);
  return { answer, evidence };
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
    if (answer.kind === 'error')
      run.out.add('DNS_LOOKUP_FAILED', host, `The address lookup failed: ${answer.message}.`);
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
    addresses: resolved.allowed,
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
  if (body !== null) policyText(body, fetched.url, evidence, out);
  return evidence;
}

/** Judges the HTTP answer as a strict sender does; the body when a sender would go on to parse it, else null. */
function policyBody(fetched: PolicyFetchEvidence, evidence: PolicyEvidence, out: FindingList): string | null {
  const host = evidence.host;
  if (!fetched.http) {
    evidence.error = fetched.error?.message ?? 'no answer';
    out.add('POLICY_FETCH_FAILED', host, `${fetched.url} could not be read: ${evidence.error}.`);
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

/** Parses the policy text served at `url` and judges its mode and max_age. */
function policyText(body: string, url: string, evidence: PolicyEvidence, out: FindingList): void {
  const host = evidence.host;
  evidence.text = body;
  const parsed = parsePolicy(body);
  evidence.policy = parsed.policy;
  evidence.valid = parsed.valid;
  for (const p of parsed.problems) out.add(p.code, url, `${p.message}.`);
  const { mode, maxAge } = parsed.policy;
  if (mode === 'testing') out.add('POLICY_MODE_TESTING', host, 'The policy says mode: testing.');
  if (mode === 'none') out.add('POLICY_MODE_NONE', host, 'The policy says mode: none.');
  if (mode === 'enforce' && maxAge !== null && maxAge < 604800) {
    out.add('POLICY_MAX_AGE_SHORT', host, `max_age is ${maxAge} seconds (${describeSeconds(maxAge)}).`);
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
  return result;
}

/** The MX records in the order they are checked, or null (with its finding) when there is no host to check. */
async function lookupMx(run: Run, result: Evidence['mx']): Promise<MxRecord[] | null> {
  const { domain: d, out } = run;
  const answer = await run.deps.dns.mx(d, run.signal);
  if (!answer.ok) {
    result.error = answer.message;
    if (answer.kind === 'error') out.add('DNS_LOOKUP_FAILED', d, `The MX lookup failed: ${answer.message}.`);
    else {
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

/** Which policy mx pattern covers each MX host (MX_NOT_IN_POLICY), and which patterns cover none (POLICY_MX_UNUSED). */
function coverageFindings(hosts: MxHostEvidence[], policyEvidence: PolicyEvidence, out: FindingList): void {
  const policy = policyEvidence.policy;
  if (!policy || policy.mode === null || policy.mode === 'none') return;
  const severity: Severity = policy.mode === 'enforce' ? 'error' : 'warning';
  for (const host of hosts) {
    host.coveredBy = policy.mx.find((pattern) => mxPatternMatches(pattern, host.host)) ?? null;
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
