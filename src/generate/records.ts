import type { Report } from '../core/check.js';
import type { Domain } from '../core/domain.js';
import {
  formatPolicy,
  MAX_AGE_LIMIT,
  mxPatternMatches,
  mxPatternProblem,
  type PolicyMode,
} from '../core/policy.js';
import {
  cleanSince,
  durationText,
  ROLLOUT_WINDOW_MS,
  type RolloutVerdict,
  rolloutVerdict,
} from '../core/rollout.js';
import { STS_ID } from '../core/sts-record.js';
import { encodeRuaUri, ruaProblem } from '../core/tlsrpt-record.js';
import type { DnsRecord, PlanStep } from './plan-types.js';
import { freshId, planSteps } from './steps.js';

export type { DnsRecord, HostingSnippets, PlanStep } from './plan-types.js';
export { bindFragment, hostingSnippets } from './snippets.js';
export { freshId, relativeName } from './steps.js';

/** What the user asked for; anything left out is derived from the domain's current state. */
export interface RecordsRequest {
  mode?: PolicyMode;
  maxAge?: number;
  mx?: string[];
  rua?: string[];
  id?: string;
}

/** What the monitor knows of a domain: the rollout rule's inputs beside the check. */
export interface RolloutHistory {
  /** The monitor watches the domain (in the database this runs with), so its clean-since mark counts. */
  watched: boolean;
  /** Whether cleanSince was read from the monitor's store (false where that store is not at hand). */
  monitorRead: boolean;
  /** Since when the monitor has seen it in testing with no errors; null when not (yet), or not read. */
  cleanSince: string | null;
  /** The end of the latest TLS-RPT period with failed sessions; null when none was reported. */
  lastReportedFailureAt: string | null;
}

export interface PolicyChange {
  currentText: string;
  currentId: string | null;
  currentMaxAge: number | null;
  /** Field-level differences, as "mode: testing -> enforce", "+ mx: new.example.com", "- mx: old.example.com". */
  differences: string[];
  idMustChange: boolean;
}

export interface RecordsPlan {
  domain: string;
  domainUnicode: string;
  zone: string;
  /** Where the plan ends: the policy of its last step. */
  mode: PolicyMode;
  maxAge: number;
  mx: string[];
  /** The reporting URIs as the record holds them (percent-encoded where RFC 8460 requires it). */
  rua: string[];
  /** True when the rua is our proposal, to be replaced by a real mailbox. */
  ruaPlaceholder: boolean;
  /** Why the mode, max_age, mx and rua are what they are. */
  reasons: string[];
  /** Things the user must not overlook. */
  warnings: string[];
  /** Testing -> enforce by the rollout rule, for a domain in testing; null otherwise. */
  rollout: RolloutVerdict | null;
  policyUrl: string;
  policyHost: { name: string; currentAddresses: string[]; advice: string };
  change: PolicyChange | null;
  /** What to publish, in the order it must go live; the first is safe now. */
  steps: PlanStep[];
  /** The first step's id, policy file and records: what is safe to publish now. */
  id: string;
  policyText: string;
  records: DnsRecord[];
}

export class RecordsInputError extends Error {}

const DAY = 86400;
const WEEK = 604800;

/** Checks the user's flags; each error names the flag. */
export function validateRequest(request: RecordsRequest): void {
  if (request.mode !== undefined && !['enforce', 'testing', 'none'].includes(request.mode)) {
    throw new RecordsInputError(`--mode must be testing, enforce or none, not "${request.mode}"`);
  }
  if (request.maxAge !== undefined && !Number.isInteger(request.maxAge)) {
    throw new RecordsInputError(`--max-age must be a whole number of seconds, not "${request.maxAge}"`);
  }
  if (request.maxAge !== undefined && !(request.maxAge >= 1 && request.maxAge <= MAX_AGE_LIMIT)) {
    throw new RecordsInputError(maxAgeRangeMessage(String(request.maxAge)));
  }
  for (const mx of request.mx ?? []) {
    const problem = mxPatternProblem(mx);
    if (problem) throw new RecordsInputError(`--mx "${mx}" ${problem}; give a host name or *.domain`);
  }
  for (const rua of request.rua ?? []) {
    const problem = ruaProblem(encodeRuaUri(rua));
    if (problem) throw new RecordsInputError(`--rua "${rua}" ${problem}`);
  }
  if (request.id !== undefined && !STS_ID.test(request.id)) {
    throw new RecordsInputError(`--id must be 1 to 32 letters and digits, not "${request.id}"`);
  }
}

/** A max_age out of range: what the range is, in seconds and in days. */
export function maxAgeRangeMessage(given: string): string {
  return `--max-age ${given.length > 20 ? `${given.slice(0, 20)}…` : given} is out of range: give 1 to ${MAX_AGE_LIMIT} seconds (${durationText(MAX_AGE_LIMIT)})`;
}

/** What a plan step decided, and why (the reasons and warnings shown to the user). */
interface Notes {
  reasons: string[];
  warnings: string[];
}

type CurrentPolicy = NonNullable<Report['evidence']['policy']['policy']>;

/**
 * Plans the records, policy and hosting for a domain from the user's request, the domain's current state (a check
 * report) and what the monitor knows of it (null: nothing). Pure: the same inputs give the same plan.
 */
export function planRecords(
  domain: Domain,
  request: RecordsRequest,
  current: Report,
  zone: string,
  now: Date,
  history: RolloutHistory | null = null,
): RecordsPlan {
  validateRequest(request);
  const d = domain.ascii;
  const notes: Notes = { reasons: [], warnings: [] };
  const ev = current.evidence;
  const currentPolicy = ev.policy.valid ? ev.policy.policy : null;
  const rollout = rolloutOf(current, currentPolicy?.mode ?? null, history, now);
  const mode = chooseMode(request, currentPolicy?.mode ?? null, rollout, history, notes);
  const maxAge = chooseMaxAge(request, mode, currentPolicy, notes);
  const mx = chooseMx(d, request, mode, current, currentPolicy, notes);
  const { rua, ruaPlaceholder } = chooseRua(d, request, current, notes);
  const policyText = formatPolicy({ mode, mx, maxAge });
  const currentText = ev.policy.text;
  const unchanged =
    currentPolicy !== null && currentText !== null && normalize(currentText) === normalize(policyText);
  const id = chooseId(request, ev.sts.id, unchanged, now, notes);
  const change =
    currentPolicy && currentText !== null
      ? describeChange(currentText, currentPolicy, ev.sts.id, { mode, mx, maxAge }, unchanged)
      : null;
  const policyHostName = `mta-sts.${d}`;
  const policyUrl = `https://${policyHostName}/.well-known/mta-sts.txt`;
  const steps = planSteps({
    ...{ domain: d, zone, policyHost: policyHostName, policyUrl, now, unchanged },
    current: publishedPolicy(currentPolicy, ev.sts.id),
    mxHosts: ev.mx.hosts.map((h) => ({ host: h.host, priority: h.priority })),
    target: { mode, mx, maxAge, rua, id },
  });
  const first = steps[0] as PlanStep;
  return {
    ...{ domain: d, domainUnicode: domain.unicode, zone, mode, maxAge, mx, rua, ruaPlaceholder },
    ...{ reasons: notes.reasons, warnings: notes.warnings, rollout, policyUrl },
    policyHost: policyHostAdvice(policyHostName, ev.policy.addresses),
    change,
    steps,
    id: first.id,
    policyText: first.policyText,
    records: first.records,
  };
}

function publishedPolicy(policy: CurrentPolicy | null, id: string | null) {
  if (!policy?.mode || policy.maxAge === null) return null;
  return { mode: policy.mode, mx: policy.mx, maxAge: policy.maxAge, id };
}

/** The rollout rule for a domain in testing, from the check (errors now) and the monitor's history. */
function rolloutOf(
  current: Report,
  mode: PolicyMode | null,
  history: RolloutHistory | null,
  now: Date,
): RolloutVerdict | null {
  if (mode !== 'testing') return null;
  const errors = current.findings.some((f) => f.severity === 'error');
  const counted = history?.watched === true && history.monitorRead;
  return rolloutVerdict({
    mode,
    cleanSince: counted ? cleanSince(history.cleanSince, mode, errors, now) : null,
    lastReportedFailureAt: history?.lastReportedFailureAt ?? null,
    now,
    windowMs: ROLLOUT_WINDOW_MS,
  });
}

/** The mode: as asked; testing for a new deployment; enforce when the rollout rule says so; otherwise kept. */
function chooseMode(
  request: RecordsRequest,
  currentMode: PolicyMode | null,
  rollout: RolloutVerdict | null,
  history: RolloutHistory | null,
  { reasons, warnings }: Notes,
): PolicyMode {
  const needs = rollout ? `${rollout.missing.join('; ')}${whoCounts(history)}` : '';
  if (request.mode) {
    reasons.push(`mode ${request.mode}: as asked (--mode).`);
    if (request.mode === 'enforce' && rollout && !rollout.ready) {
      warnings.push(`enforce before the rollout rule is met: it needs ${needs}.`);
    }
    if (request.mode === 'enforce' && (currentMode === null || currentMode === 'none')) {
      warnings.push(
        `enforce without testing first: the rollout rule offers enforce after ${durationText(ROLLOUT_WINDOW_MS / 1000)} in testing with no errors and no reported TLS failures; in enforce, senders refuse to deliver to an MX host whose TLS fails.`,
      );
    }
    return request.mode;
  }
  if (currentMode === null) {
    reasons.push(
      `mode testing: the domain has no valid policy yet; start in testing. Enforce follows ${durationText(ROLLOUT_WINDOW_MS / 1000)} in testing with no errors and no reported TLS failures.`,
    );
    return 'testing';
  }
  if (rollout?.ready) {
    reasons.push(
      `mode enforce: in testing with no errors and no reported TLS failures since ${rollout.since}, ${durationText(ROLLOUT_WINDOW_MS / 1000)} or more, so ready to enforce.`,
    );
    return 'enforce';
  }
  reasons.push(
    rollout
      ? `mode testing: kept; enforce needs ${needs}. (--mode enforce gives it now, at your own risk.)`
      : `mode ${currentMode}: kept from the current policy.`,
  );
  return currentMode;
}

/** Where the days of the rollout rule are counted, when they were not read here. */
function whoCounts(history: RolloutHistory | null): string {
  if (history === null) {
    return ' (no monitoring history here: the monitor counts the days of a watched domain, and the command line reads them from the database at DATABASE_PATH)';
  }
  if (!history.watched)
    return ' (the domain is not watched: /mtasts watch it, and the monitor counts the days)';
  if (!history.monitorRead) {
    return ' (the monitor counts the days of this watched domain, and posts "Ready to move from testing to enforce" with the records when they are reached)';
  }
  return '';
}

/** max_age: as asked; at least a week in enforce; kept while the mode stays; one day while testing. */
function chooseMaxAge(
  request: RecordsRequest,
  mode: PolicyMode,
  currentPolicy: CurrentPolicy | null,
  { reasons, warnings }: Notes,
): number {
  let maxAge: number;
  const shown = (n: number) => `max_age ${n} (${durationText(n)})`;
  if (request.maxAge !== undefined) {
    maxAge = request.maxAge;
    reasons.push(`${shown(maxAge)}: as asked (--max-age).`);
  } else if (mode === 'enforce') {
    maxAge = Math.max(currentPolicy?.maxAge ?? 0, WEEK);
    reasons.push(
      `${shown(maxAge)}: at least one week in enforce, so a blocked fetch cannot outwait the cache.`,
    );
  } else if (currentPolicy?.maxAge && currentPolicy.mode === mode) {
    maxAge = currentPolicy.maxAge;
    reasons.push(`${shown(maxAge)}: kept from the current policy.`);
  } else {
    maxAge = DAY;
    reasons.push(`${shown(maxAge)}: one day while testing, so changes reach senders quickly.`);
  }
  if (mode === 'enforce' && maxAge < WEEK) {
    warnings.push(`${shown(maxAge)} is under one week; in enforce mode RFC 8461 suggests weeks.`);
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
 * Refuses an enforce policy that leaves a current MX host uncovered, unless it is the last step of a planned
 * migration (the published policy covers the host, and new hosts take its place: see steps.ts); warns about the rest.
 */
function checkMxCoverage(
  mx: string[],
  mxHosts: string[],
  mode: PolicyMode,
  currentPolicy: CurrentPolicy | null,
  warnings: string[],
): void {
  const uncovered = mxHosts.filter((h) => !mx.some((p) => mxPatternMatches(p, h)));
  const fresh = mx.filter((p) => !mxHosts.some((h) => mxPatternMatches(p, h)));
  const migrating =
    uncovered.length > 0 &&
    fresh.length > 0 &&
    currentPolicy !== null &&
    currentPolicy.mode !== 'none' &&
    uncovered.every((h) => currentPolicy.mx.some((p) => mxPatternMatches(p, h)));
  if (migrating) {
    warnings.push(
      `${uncovered.join(', ')} still receive(s) mail and ${fresh.join(', ')} do(es) not yet: this is a migration, so follow the steps in order; the policy without ${uncovered.join(', ')} is its last step.`,
    );
    return;
  }
  if (uncovered.length > 0) {
    const message = `--mx leaves ${uncovered.join(', ')} uncovered while MX records point to it`;
    if (mode === 'enforce') {
      throw new RecordsInputError(
        `${message}: in enforce mode senders would refuse to deliver to it. Add it to --mx, remove it from the MX records first, or use --mode testing`,
      );
    }
    warnings.push(`${message}: senders will report failures for it. Add it before moving to enforce.`);
  }
  if (fresh.length > 0 && mxHosts.length > 0) {
    warnings.push(
      `${fresh.join(', ')} match(es) none of the current MX hosts: list a host before your MX records point to it (see the steps), and remove it once it is no longer used.`,
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
  if (request.rua && request.rua.length > 0) {
    const rua = request.rua.map(encodeRuaUri);
    const encoded = rua.filter((u, i) => u !== request.rua?.[i]);
    if (encoded.length > 0)
      reasons.push(`rua: percent-encoded as RFC 8460 §3 requires (${encoded.join(', ')}).`);
    return { rua, ruaPlaceholder: false };
  }
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
  if (unchanged && !publishedId) reasons.push(`id ${id}: new, no _mta-sts record is published.`);
  if (request.id !== undefined && publishedId === request.id && !unchanged) {
    warnings.push(
      `--id ${request.id} is the id already published, but the policy changes: senders would keep the old policy. Use a new id.`,
    );
  }
  return id;
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
): PolicyChange {
  const differences: string[] = [];
  const age = (n: number | null) => (n === null ? 'none' : `${n} (${durationText(n)})`);
  if (current.mode !== next.mode) differences.push(`mode: ${current.mode} -> ${next.mode}`);
  if (current.maxAge !== next.maxAge)
    differences.push(`max_age: ${age(current.maxAge)} -> ${age(next.maxAge)}`);
  for (const m of next.mx.filter((m) => !current.mx.includes(m))) differences.push(`+ mx: ${m}`);
  for (const m of current.mx.filter((m) => !next.mx.includes(m))) differences.push(`- mx: ${m}`);
  return {
    currentText,
    currentId,
    currentMaxAge: current.maxAge,
    differences,
    idMustChange: !unchanged || currentId === null,
  };
}
