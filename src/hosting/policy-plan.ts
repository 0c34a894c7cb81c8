import { canonicalHost } from '../core/domain.js';
import {
  formatPolicy,
  MAX_AGE_LIMIT,
  mxPatternMatches,
  mxPatternProblem,
  POLICY_MODES,
  type PolicyMode,
  parsePolicy,
} from '../core/policy.js';
import { durationText, type RolloutVerdict, rolloutVerdict } from '../core/rollout.js';
import { freshId } from '../generate/steps.js';
import type { MxProposal, PolicyVersion } from '../store/hosting.js';

/**
 * The rules of hosted policies, pure: the text served for a mode, its mx patterns and max_age; a new id for every
 * change of that text; the safe order of an MX change; the way out (mode none, then wait); which versions cached
 * senders may still hold. The service (service.ts) applies them to the store.
 */

export const DAY = 86400;
export const WEEK = 604800;
/** max_age proposed for a new hosted domain in testing: a week, so that a blocked fetch does not outwait the cache. */
export const DEFAULT_TESTING_MAX_AGE = WEEK;
/** max_age of the `mode: none` policy served on the way out: senders look again within a day. */
export const LEAVING_MAX_AGE = DAY;

export class HostingInputError extends Error {}

export interface HostedPolicy {
  mode: PolicyMode;
  maxAge: number;
  mx: readonly string[];
}

/** The text served for a policy; in mode none it lists no mx (senders ignore them then). */
export function hostedPolicyText(policy: HostedPolicy): string {
  return formatPolicy({ ...policy, mx: policy.mode === 'none' ? [] : policy.mx });
}

/**
 * A new sts id for a changed text: the UTC time (freshId), made different from every id the domain has used, so that
 * no sender holding any earlier version takes the new text for one it has (RFC 8461 §3.1: senders fetch again only
 * when the id changes).
 */
export function nextId(now: Date, used: Iterable<string>): string {
  const taken = new Set(used);
  const base = freshId(now);
  if (!taken.has(base)) return base;
  for (let n = 1; ; n++) {
    const id = `${base}${n}`;
    if (!taken.has(id)) return id;
  }
}

/** A max_age from the user: whole seconds from 1 to 31557600 (RFC 8461 §3.2); what is wrong, or null. */
export function maxAgeProblem(maxAge: number): string | null {
  if (!Number.isSafeInteger(maxAge))
    return `max_age must be a whole number of seconds, not ${String(maxAge)}`;
  if (maxAge < 1 || maxAge > MAX_AGE_LIMIT) {
    return `max_age ${maxAge} is out of range: give 1 to ${MAX_AGE_LIMIT} seconds (${durationText(MAX_AGE_LIMIT)})`;
  }
  return null;
}

/**
 * The mx patterns a user gives: each an exact host or a leading `*.` label (RFC 8461 §3.2), lower case, without
 * repeats, at most `max`. Throws HostingInputError naming the first bad one.
 */
export function checkMxPatterns(patterns: readonly string[], max: number): string[] {
  if (patterns.length > max) {
    throw new HostingInputError(`${patterns.length} mx patterns given; at most ${max} are allowed`);
  }
  const out: string[] = [];
  for (const raw of patterns) {
    const value = raw.trim();
    const problem = mxPatternProblem(value);
    if (problem) {
      const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
      throw new HostingInputError(`mx "${shown}" ${problem}; give a host name or *.domain`);
    }
    const pattern = value.toLowerCase();
    if (!out.includes(pattern)) out.push(pattern);
  }
  return out;
}

export function checkMode(mode: string): PolicyMode {
  if (!(POLICY_MODES as readonly string[]).includes(mode)) {
    throw new HostingInputError(`mode must be testing, enforce or none, not "${mode.slice(0, 40)}"`);
  }
  return mode as PolicyMode;
}

/**
 * The MX hosts DNS lists, in order of preference, lower case without repeats; a null MX (".") is no host, and a host
 * that is no valid exact mx pattern (spaces, a `*`, control characters: see unusableMxHosts) is left out.
 */
export function mxHostsOf(records: readonly { exchange: string; priority: number }[]): string[] {
  return allMxHosts(records).filter(usableMxHost);
}

/** The MX hosts DNS lists that cannot be served as mx patterns, shown safely (for a note saying they were skipped). */
export function unusableMxHosts(records: readonly { exchange: string; priority: number }[]): string[] {
  return allMxHosts(records)
    .filter((h) => !usableMxHost(h))
    .map((h) => JSON.stringify(h.length > 60 ? `${h.slice(0, 60)}…` : h));
}

/** A host from DNS is served only as an exact host: the rule of user patterns, and no wildcard. */
export function usableMxHost(host: string): boolean {
  return !host.includes('*') && mxPatternProblem(host) === null;
}

function allMxHosts(records: readonly { exchange: string; priority: number }[]): string[] {
  const sorted = [...records].sort((a, b) => a.priority - b.priority);
  const hosts = sorted.map((r) => canonicalHost(r.exchange)).filter((h) => h !== '' && h !== '.');
  return [...new Set(hosts)];
}

/**
 * The text to serve for a policy, refused (HostingInputError) unless the policy parser reads it back cleanly as the
 * same policy: valid, and the same mode, max_age and mx patterns. Nothing reaches the served text otherwise.
 */
export function servableText(policy: HostedPolicy): string {
  const text = hostedPolicyText(policy);
  const parsed = parsePolicy(text);
  const mx = policy.mode === 'none' ? [] : policy.mx;
  const same =
    parsed.valid &&
    parsed.policy.mode === policy.mode &&
    parsed.policy.maxAge === policy.maxAge &&
    parsed.policy.mx.length === mx.length &&
    parsed.policy.mx.every((m, i) => m === mx[i]);
  if (!same) throw new HostingInputError('the policy text would not read back as the policy: not served');
  return text;
}

/** What a change asks for, and what the policy becomes: max_age at least a week when moving to enforce. */
export function changedPolicy(
  current: HostedPolicy,
  change: { mode?: PolicyMode; maxAge?: number; mx?: readonly string[] },
): HostedPolicy {
  const mode = change.mode ?? current.mode;
  const maxAge =
    change.maxAge ??
    (mode === 'enforce' && current.mode !== 'enforce' ? Math.max(current.maxAge, WEEK) : current.maxAge);
  return { mode, maxAge, mx: change.mx ? [...change.mx] : [...current.mx] };
}

/** Whether two policies give the same text (the id changes exactly when this is false). */
export function sameText(a: HostedPolicy, b: HostedPolicy): boolean {
  return hostedPolicyText(a) === hostedPolicyText(b);
}

/** The MX hosts no pattern covers (`*.` covers exactly one leftmost label). */
export function uncoveredHosts(patterns: readonly string[], hosts: readonly string[]): string[] {
  return hosts.filter((h) => !patterns.some((p) => mxPatternMatches(p, h)));
}

/**
 * The rollout rule for a hosted domain moving to enforce, fed as the monitor and `records` feed it: the served mode,
 * the monitor's clean-since mark for a watched domain, and the last TLS-RPT report of failed sessions.
 */
export function enforceVerdict(
  mode: PolicyMode,
  history: { watched: boolean; cleanSince: string | null; lastReportedFailureAt: string | null },
  now: Date,
  windowMs: number,
): RolloutVerdict {
  const verdict = rolloutVerdict({
    mode,
    cleanSince: history.watched ? history.cleanSince : null,
    lastReportedFailureAt: history.lastReportedFailureAt,
    now,
    windowMs,
  });
  if (verdict.ready || history.watched || mode !== 'testing') return verdict;
  return {
    ...verdict,
    missing: [
      ...verdict.missing,
      'the domain watched: it is not watched, and the monitor counts the days of watched domains only',
    ],
  };
}

/**
 * The change an MX change calls for, or null when the served patterns cover exactly the hosts DNS lists: hosts to
 * add (exact, as DNS gives them) and patterns to drop (those covering no host). With hosts to add and patterns to drop,
 * step 1 serves both the old patterns and the new hosts; step 2 drops the old ones once the version served before
 * step 1 has expired from every cache. With nothing to drop, step 1 is the whole change.
 */
export function proposeMx(served: HostedPolicy, observed: readonly string[], now: Date): MxProposal | null {
  const hosts = [...new Set(observed.map(canonicalHost))];
  if (hosts.length === 0) return null;
  const add = uncoveredHosts(served.mx, hosts);
  const keep = served.mx.filter((p) => hosts.some((h) => mxPatternMatches(p, h)));
  const drop = served.mx.filter((p) => !keep.includes(p));
  if (add.length === 0 && drop.length === 0) return null;
  const final = [...keep, ...add];
  return {
    observed: hosts,
    add,
    drop,
    proposedAt: now.toISOString(),
    interim: add.length > 0 && drop.length > 0 ? [...served.mx, ...add] : null,
    final,
    waitMaxAge: served.maxAge,
    interimServedAt: null,
  };
}

/** Whether a proposal was made for this same set of MX hosts (so it is not proposed again). */
export function sameObserved(proposal: MxProposal, observed: readonly string[]): boolean {
  const a = [...new Set(observed.map(canonicalHost))].sort();
  const b = [...proposal.observed].sort();
  return a.length === b.length && a.every((h, i) => h === b[i]);
}

export type ProposalStep =
  | { kind: 'interim'; mx: string[] }
  | { kind: 'final'; mx: string[] }
  | { kind: 'wait'; until: string; mx: string[] };

/**
 * The next step of a proposal. Outside enforce (testing, none) senders do not refuse delivery, so the final patterns
 * go live at once. In enforce: step 1 first; step 2 not before DNS was first seen carrying step 1's id (`carriesAt`:
 * senders fetch again only when the id changes; or the proposal was made, when there is no step 1) plus the max_age
 * of the version served before it. While DNS does not carry it, the wait is at least that max_age from now.
 */
export function nextProposalStep(
  proposal: MxProposal,
  mode: PolicyMode,
  now: Date,
  carriesAt: string | null = null,
): ProposalStep {
  if (mode !== 'enforce') return { kind: 'final', mx: proposal.final };
  if (proposal.interim && proposal.interimServedAt === null) return { kind: 'interim', mx: proposal.interim };
  if (proposal.drop.length === 0) return { kind: 'final', mx: proposal.final };
  const counted = proposal.interimServedAt === null ? proposal.proposedAt : carriesAt;
  const from = counted === null ? now.getTime() : Date.parse(counted);
  const until = new Date(from + proposal.waitMaxAge * 1000);
  if (counted === null || now.getTime() < until.getTime())
    return { kind: 'wait', until: until.toISOString(), mx: proposal.final };
  return { kind: 'final', mx: proposal.final };
}

/** A proposal after its step 1 went live: step 2 waits for the max_age of the version step 1 replaced. */
export function afterInterim(proposal: MxProposal, replacedMaxAge: number, now: Date): MxProposal {
  return { ...proposal, interimServedAt: now.toISOString(), waitMaxAge: replacedMaxAge };
}

export interface CachedVersion extends PolicyVersion {
  /** Until when a sender that fetched this version may use it. */
  cachedUntil: string;
}

/**
 * The versions senders may still hold: served at some time, and served until (or still served, counted as now) less
 * than their max_age ago. Newest first.
 */
export function cachedVersions(versions: readonly PolicyVersion[], now: Date): CachedVersion[] {
  const out: CachedVersion[] = [];
  for (const v of versions) {
    if (v.servedFrom === null) continue;
    const until = Date.parse(v.servedUntil ?? now.toISOString()) + v.maxAge * 1000;
    if (until > now.getTime()) out.push({ ...v, cachedUntil: new Date(until).toISOString() });
  }
  return out.reverse();
}

/**
 * The way out: once `mode: none` is served, the domain may leave when no sender holds any other version, i.e. at the
 * latest cachedUntil of the versions other than none. Null when none is held (it may leave at once).
 */
export function leavingUntil(versions: readonly PolicyVersion[], now: Date): string | null {
  return heldUntil(cachedVersions(versions, now));
}

/**
 * The way out, counted from when DNS was first seen carrying the id of `mode: none` (`carriesAt`): senders holding an
 * earlier version fetch again only once the id changes in DNS, so each version they may hold counts as served until
 * then (at the least). Null when none is held.
 */
export function leavingUntilFrom(
  versions: readonly PolicyVersion[],
  now: Date,
  carriesAt: Date,
): string | null {
  const starts = versions.map((v) => (v.servedFrom === null ? 0 : Date.parse(v.servedFrom)));
  const latestStart = Math.max(0, ...starts);
  const heldThen = (v: PolicyVersion) =>
    v.servedFrom !== null &&
    v.servedUntil !== null &&
    Date.parse(v.servedUntil) + v.maxAge * 1000 > latestStart &&
    Date.parse(v.servedUntil) < carriesAt.getTime();
  const shifted = versions.map((v) => (heldThen(v) ? { ...v, servedUntil: carriesAt.toISOString() } : v));
  return heldUntil(cachedVersions(shifted, now));
}

function heldUntil(cached: readonly CachedVersion[]): string | null {
  const held = cached.filter((v) => v.mode !== 'none');
  if (held.length === 0) return null;
  return new Date(Math.max(...held.map((v) => Date.parse(v.cachedUntil)))).toISOString();
}
