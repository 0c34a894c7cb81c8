import type { Report } from '../core/check.js';
import type { Domain } from '../core/domain.js';
import { MAX_AGE_LIMIT, mxPatternMatches, mxPatternProblem, type PolicyMode } from '../core/policy.js';
import { ruaProblem } from '../core/tlsrpt-record.js';

/** What the user asked for; anything left out is derived from the domain's current state. */
export interface RecordsRequest {
  mode?: PolicyMode;
  maxAge?: number;
  mx?: string[];
  rua?: string[];
  id?: string;
}

export interface DnsRecord {
  /** Fully qualified, no trailing dot. */
  name: string;
  /** Relative to the zone, as a DNS panel asks for it ("@" at the apex). */
  host: string;
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  value: string;
  ttl: number;
  purpose: string;
}

export interface PolicyChange {
  currentText: string;
  currentId: string | null;
  currentMaxAge: number | null;
  /** Field-level differences, as "mode: testing -> enforce", "+ mx: new.example.com", "- mx: old.example.com". */
  differences: string[];
  idMustChange: boolean;
  /** Safe order for an MX migration; empty when there is none. */
  steps: string[];
  /** The intermediate policy of a migration (old and new hosts together), when one is needed. */
  interimPolicyText: string | null;
}

export interface RecordsPlan {
  domain: string;
  domainUnicode: string;
  zone: string;
  mode: PolicyMode;
  maxAge: number;
  mx: string[];
  rua: string[];
  /** True when the rua is our proposal, to be replaced by a real mailbox. */
  ruaPlaceholder: boolean;
  id: string;
  /** Why the mode, max_age, mx and rua are what they are. */
  reasons: string[];
  /** Things the user must not overlook. */
  warnings: string[];
  policyText: string;
  policyUrl: string;
  records: DnsRecord[];
  policyHost: { name: string; currentAddresses: string[]; advice: string };
  change: PolicyChange | null;
}

export class RecordsInputError extends Error {}

const TTL = 3600;
const DAY = 86400;

/** A fresh sts id: the UTC time, 15 letters and digits (RFC 8461 §3.1 allows 1-32). */
export function freshId(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, '')
    .replace(/[-:]/g, '');
}

/** Checks the user's flags; each error names the flag. */
export function validateRequest(request: RecordsRequest): void {
  if (request.mode !== undefined && !['enforce', 'testing', 'none'].includes(request.mode)) {
    throw new RecordsInputError(`--mode must be testing, enforce or none, not "${request.mode}"`);
  }
  if (
    request.maxAge !== undefined &&
    !(Number.isInteger(request.maxAge) && request.maxAge >= 1 && request.maxAge <= MAX_AGE_LIMIT)
  ) {
    throw new RecordsInputError(`--max-age must be a whole number of seconds from 1 to ${MAX_AGE_LIMIT}`);
  }
  for (const mx of request.mx ?? []) {
    const problem = mxPatternProblem(mx);
    if (problem) throw new RecordsInputError(`--mx "${mx}" ${problem}; give a host name or *.domain`);
  }
  for (const rua of request.rua ?? []) {
    const problem = ruaProblem(rua);
    if (problem) throw new RecordsInputError(`--rua "${rua}" ${problem}`);
  }
  if (request.id !== undefined && !/^[A-Za-z0-9]{1,32}$/.test(request.id)) {
    throw new RecordsInputError(`--id must be 1 to 32 letters and digits, not "${request.id}"`);
  }
}

/** What a plan step decided, and why (the reasons and warnings shown to the user). */
interface Notes {
  reasons: string[];
  warnings: string[];
}

/**
 * Plans the records, policy and hosting for a domain from the user's request and the domain's current state (a
 * check report). Pure: the same inputs give the same plan.
 */
export function planRecords(
  domain: Domain,
  request: RecordsRequest,
  current: Report,
  zone: string,
  now: Date,
): RecordsPlan {
  validateRequest(request);
  const d = domain.ascii;
  const notes: Notes = { reasons: [], warnings: [] };
  const ev = current.evidence;
  const currentPolicy = ev.policy.valid ? ev.policy.policy : null;
  const mode = chooseMode(request, current, currentPolicy?.mode ?? null, notes);
  const maxAge = chooseMaxAge(request, mode, currentPolicy, notes);
  const mx = chooseMx(d, request, mode, current, currentPolicy, notes);
  const { rua, ruaPlaceholder } = chooseRua(d, request, current, notes);
  const policyText = policyTextOf(mode, mx, maxAge);
  const currentText = ev.policy.text;
  const unchanged =
    currentPolicy !== null && currentText !== null && normalize(currentText) === normalize(policyText);
  const id = chooseId(request, ev.sts.id, unchanged, now, notes);
  const change =
    currentPolicy && currentText !== null
      ? describeChange(currentText, currentPolicy, ev.sts.id, { mode, mx, maxAge }, unchanged, now)
      : null;
  const policyHostName = `mta-sts.${d}`;
  return {
    domain: d,
    domainUnicode: domain.unicode,
    zone,
    mode,
    maxAge,
    mx,
    rua,
    ruaPlaceholder,
    id,
    reasons: notes.reasons,
    warnings: notes.warnings,
    policyText,
    policyUrl: `https://${policyHostName}/.well-known/mta-sts.txt`,
    records: dnsRecords(d, zone, id, rua),
    policyHost: policyHostAdvice(policyHostName, ev.policy.addresses),
    change,
  };
}

type CurrentPolicy = NonNullable<Report['evidence']['policy']['policy']>;

/** The mode: as asked; testing for a new deployment; enforce once testing is clean; otherwise kept. */
function chooseMode(
  request: RecordsRequest,
  current: Report,
  currentMode: PolicyMode | null,
  { reasons }: Notes,
): PolicyMode {
  const errors = current.findings.filter((f) => f.severity === 'error');
  const otherWarnings = current.findings.filter(
    (f) => f.severity === 'warning' && f.code !== 'POLICY_MODE_TESTING',
  );
  if (request.mode) {
    reasons.push(`mode ${request.mode}: as asked (--mode).`);
    return request.mode;
  }
  if (currentMode === null) {
    reasons.push(
      'mode testing: the domain has no valid policy yet; start in testing and read TLS-RPT reports first.',
    );
    return 'testing';
  }
  if (currentMode === 'testing' && errors.length === 0 && otherWarnings.length === 0) {
    reasons.push('mode enforce: the domain is in testing and its check is clean, so it is ready to enforce.');
    return 'enforce';
  }
  reasons.push(
    currentMode === 'testing'
      ? `mode testing: kept; the check still has ${errors.length} error(s) and ${otherWarnings.length} warning(s) to fix before enforce.`
      : `mode ${currentMode}: kept from the current policy.`,
  );
  return currentMode;
}

/** max_age: as asked; at least a week in enforce; kept while the mode stays; one day while testing. */
function chooseMaxAge(
  request: RecordsRequest,
  mode: PolicyMode,
  currentPolicy: CurrentPolicy | null,
  { reasons, warnings }: Notes,
): number {
  let maxAge: number;
  if (request.maxAge !== undefined) {
    maxAge = request.maxAge;
    reasons.push(`max_age ${maxAge}: as asked (--max-age).`);
  } else if (mode === 'enforce') {
    maxAge = Math.max(currentPolicy?.maxAge ?? 0, 604800);
    reasons.push(
      `max_age ${maxAge}: at least one week in enforce, so a blocked fetch cannot outwait the cache.`,
    );
  } else if (currentPolicy?.maxAge && currentPolicy.mode === mode) {
    maxAge = currentPolicy.maxAge;
    reasons.push(`max_age ${maxAge}: kept from the current policy.`);
  } else {
    maxAge = DAY;
    reasons.push('max_age 86400: one day while testing, so changes reach senders quickly.');
  }
  if (mode === 'enforce' && maxAge < 604800) {
    warnings.push(`max_age ${maxAge} is under one week; in enforce mode RFC 8461 suggests weeks.`);
  }
  return maxAge;
}

/** The mx patterns: as asked or the MX hosts from DNS, checked against the hosts DNS lists now. */
function chooseMx(
  d: string,
  request: RecordsRequest,
  mode: PolicyMode,
  current: Report,
  currentPolicy: CurrentPolicy | null,
  notes: Notes,
): string[] {
  const mxHosts = current.evidence.mx.hosts.map((h) => h.host);
  let mx: string[];
  if (request.mx && request.mx.length > 0) {
    mx = [...new Set(request.mx.map((m) => m.toLowerCase()))];
    notes.reasons.push(`mx: as asked (--mx).`);
  } else {
    mx = mxHosts;
    notes.reasons.push(
      mxHosts.length > 0
        ? `mx: the domain's MX hosts from DNS (${mxHosts.join(', ')}).`
        : 'mx: none found in DNS; pass --mx with your mail servers.',
    );
  }
  if (mode === 'none') return [];
  if (mx.length === 0) {
    throw new RecordsInputError(`${d} has no MX hosts in DNS; name your mail servers with --mx`);
  }
  checkMxCoverage(mx, mxHosts, mode, currentPolicy, notes.warnings);
  return mx;
}

/**
 * Refuses an enforce policy that leaves a current MX host uncovered, unless the published policy covers it (the last
 * step of a migration); warns about the rest.
 */
function checkMxCoverage(
  mx: string[],
  mxHosts: string[],
  mode: PolicyMode,
  currentPolicy: CurrentPolicy | null,
  warnings: string[],
): void {
  const uncovered = mxHosts.filter((h) => !mx.some((p) => mxPatternMatches(p, h)));
  // Dropping a host the published policy covers is the last step of a migration: allowed, with the safe order.
  const migrating =
    uncovered.length > 0 &&
    currentPolicy !== null &&
    uncovered.every((h) => currentPolicy.mx.some((p) => mxPatternMatches(p, h)));
  if (migrating) {
    warnings.push(
      `--mx leaves ${uncovered.join(', ')} uncovered while MX records still point to it: publish the interim policy first and drop the host only after the steps below.`,
    );
  } else if (uncovered.length > 0) {
    const message = `--mx leaves ${uncovered.join(', ')} uncovered`;
    if (mode === 'enforce') {
      throw new RecordsInputError(
        `${message}: in enforce mode senders would refuse to deliver to it. Add it to --mx, or use --mode testing`,
      );
    }
    warnings.push(`${message}: senders will report failures for it. Add it before moving to enforce.`);
  }
  const unused = mx.filter((p) => !mxHosts.some((h) => mxPatternMatches(p, h)));
  if (unused.length > 0 && mxHosts.length > 0 && !migrating) {
    warnings.push(
      `${unused.join(', ')} match(es) none of the current MX hosts: list a host before your MX records point to it (see the migration steps), and remove it once it is no longer used.`,
    );
  }
}

/** The TLS-RPT reporting addresses: as asked, kept from DNS, or a placeholder the user must replace. */
function chooseRua(
  d: string,
  request: RecordsRequest,
  current: Report,
  { reasons, warnings }: Notes,
): { rua: string[]; ruaPlaceholder: boolean } {
  if (request.rua && request.rua.length > 0) return { rua: request.rua, ruaPlaceholder: false };
  const published = current.evidence.tlsrpt.rua;
  if (published && published.length > 0) {
    reasons.push('rua: kept from the current TLS-RPT record.');
    return { rua: published, ruaPlaceholder: false };
  }
  warnings.push(
    `rua mailto:tls-reports@${d} is a placeholder: use a mailbox (or https endpoint) that exists.`,
  );
  return { rua: [`mailto:tls-reports@${d}`], ruaPlaceholder: true };
}

/** The sts id: as asked; the published one while the policy text is unchanged; otherwise a fresh one. */
function chooseId(
  request: RecordsRequest,
  publishedId: string | null,
  unchanged: boolean,
  now: Date,
  { reasons, warnings }: Notes,
): string {
  const id = request.id ?? (unchanged && publishedId ? publishedId : freshId(now));
  if (unchanged && publishedId && request.id === undefined)
    reasons.push(`id ${id}: kept, the policy text does not change.`);
  if (request.id !== undefined && publishedId === request.id && !unchanged) {
    warnings.push(
      `--id ${request.id} is the id already published, but the policy changes: senders would keep the old policy. Use a new id.`,
    );
  }
  return id;
}

/** The two TXT records: the policy announcement and the TLS-RPT reporting record. */
function dnsRecords(d: string, zone: string, id: string, rua: string[]): DnsRecord[] {
  return [
    {
      name: `_mta-sts.${d}`,
      host: relativeName(`_mta-sts.${d}`, zone),
      type: 'TXT',
      value: `v=STSv1; id=${id}`,
      ttl: TTL,
      purpose: 'announces the policy; change the id whenever the policy text changes',
    },
    {
      name: `_smtp._tls.${d}`,
      host: relativeName(`_smtp._tls.${d}`, zone),
      type: 'TXT',
      value: `v=TLSRPTv1; rua=${rua.join(',')}`,
      ttl: TTL,
      purpose: 'where senders send TLS reports (RFC 8460)',
    },
  ];
}

function policyHostAdvice(name: string, addresses: string[]): RecordsPlan['policyHost'] {
  return {
    name,
    currentAddresses: addresses,
    advice:
      addresses.length > 0
        ? `${name} resolves to ${addresses.join(', ')}: serve the policy there with a certificate for ${name}.`
        : `Point ${name} (A/AAAA, or a CNAME to your web host) at a web server with a publicly trusted certificate for ${name}.`,
  };
}

export function policyTextOf(mode: PolicyMode, mx: readonly string[], maxAge: number): string {
  return `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: ${maxAge}\n`;
}

function normalize(text: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/[ \t]+$/gm, '')
    .trim();
}

function describeChange(
  currentText: string,
  current: { mode: PolicyMode | null; mx: string[]; maxAge: number | null },
  currentId: string | null,
  next: { mode: PolicyMode; mx: string[]; maxAge: number },
  unchanged: boolean,
  now: Date,
): PolicyChange {
  const differences: string[] = [];
  if (current.mode !== next.mode) differences.push(`mode: ${current.mode} -> ${next.mode}`);
  if (current.maxAge !== next.maxAge) differences.push(`max_age: ${current.maxAge} -> ${next.maxAge}`);
  const added = next.mx.filter((m) => !current.mx.includes(m));
  const removed = current.mx.filter((m) => !next.mx.includes(m));
  for (const m of added) differences.push(`+ mx: ${m}`);
  for (const m of removed) differences.push(`- mx: ${m}`);
  const steps: string[] = [];
  let interimPolicyText: string | null = null;
  const oldMaxAge = current.maxAge ?? 0;
  const until = new Date(now.getTime() + oldMaxAge * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (removed.length > 0 && added.length > 0 && current.mode !== 'none') {
    interimPolicyText = policyTextOf(next.mode, [...new Set([...current.mx, ...next.mx])], next.maxAge);
    steps.push(
      `1. Publish the interim policy below (old and new hosts: ${[...current.mx, ...added].join(', ')}) and a new id, now.`,
      `2. Point your MX records at the new host(s) (${added.join(', ')}) only when that policy is live; senders that cached the current one keep it for its max_age of ${oldMaxAge} s, until ${until}.`,
      `3. After ${until}, publish the final policy without ${removed.join(', ')} and another new id.`,
    );
  } else if (added.length > 0 && current.mode !== 'none') {
    steps.push(
      `1. Publish the new policy (adding ${added.join(', ')}) and a new id before any MX record points to the new host(s).`,
      `2. Senders that cached the current policy keep it until ${until} (its max_age of ${oldMaxAge} s): move mail to the new host(s) only after that.`,
    );
  } else if (removed.length > 0) {
    steps.push(
      `1. Remove ${removed.join(', ')} from the policy only once no MX record points to it (now: ${removed.length} pattern(s) to drop).`,
      '2. Publish the new policy and a new id together.',
    );
  }
  return {
    currentText,
    currentId,
    currentMaxAge: current.maxAge,
    differences,
    idMustChange: !unchanged,
    steps,
    interimPolicyText,
  };
}

/** The record's host relative to the zone, as DNS panels ask for it. */
export function relativeName(name: string, zone: string): string {
  if (name === zone) return '@';
  return name.endsWith(`.${zone}`) ? name.slice(0, -(zone.length + 1)) : name;
}

/** The records as a BIND zone file fragment ($ORIGIN-independent: fully qualified names). */
export function bindFragment(plan: RecordsPlan): string {
  const width = Math.max(...plan.records.map((r) => r.name.length)) + 2;
  return plan.records
    .map((r) => `${`${r.name}.`.padEnd(width)}${String(r.ttl).padEnd(6)}IN ${r.type.padEnd(6)}${quoteTxt(r)}`)
    .join('\n');
}

function quoteTxt(r: DnsRecord): string {
  return r.type === 'TXT' ? `"${r.value.replace(/["\\]/g, '\\$&')}"` : r.value;
}

export interface HostingSnippets {
  nginx: string;
  apache: string;
  caddy: string;
}

/**
 * Web-server configurations that serve the policy as senders require: HTTPS, the exact path, text/plain, status
 * 200, no redirect; everything else on the policy host answers 404. Certificate paths follow certbot's layout.
 */
export function hostingSnippets(plan: RecordsPlan): HostingSnippets {
  const host = plan.policyHost.name;
  const live = `/etc/letsencrypt/live/${host}`;
  const nginxBody = plan.policyText.replace(/\n/g, '\\n');
  const nginx = `server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name ${host};
    ssl_certificate     ${live}/fullchain.pem;
    ssl_certificate_key ${live}/privkey.pem;

    # The policy, served directly: status 200, text/plain, no redirect.
    location = /.well-known/mta-sts.txt {
        default_type text/plain;
        return 200 "${nginxBody}";
    }
    location / {
        return 404;
    }
}
`;
  const apache = `# Save the policy as /var/www/${host}/.well-known/mta-sts.txt, then:
<VirtualHost *:443>
    ServerName ${host}
    DocumentRoot /var/www/${host}
    SSLEngine on
    SSLCertificateFile    ${live}/fullchain.pem
    SSLCertificateKeyFile ${live}/privkey.pem

    # No Redirect or RewriteRule may apply here: senders do not follow redirects.
    <Location "/.well-known/mta-sts.txt">
        ForceType text/plain
    </Location>
    RedirectMatch 404 "^/(?!\\.well-known/mta-sts\\.txt$)"
</VirtualHost>
`;
  const caddy = `${host} {
    # Caddy obtains and renews the certificate for ${host} itself.
    @policy path /.well-known/mta-sts.txt
    handle @policy {
        header Content-Type "text/plain; charset=utf-8"
        respond \`${plan.policyText}\` 200
    }
    handle {
        respond 404
    }
}
`;
  return { nginx, apache, caddy };
}
