import { formatPolicy, mxPatternMatches, type PolicyMode } from '../core/policy.js';
import { durationText } from '../core/rollout.js';
import { formatStsRecord } from '../core/sts-record.js';
import { formatTlsRptRecord } from '../core/tlsrpt-record.js';
import type { DnsRecord, PlanStep } from './plan-types.js';
import { bindFragment, hostingSnippets } from './snippets.js';

/**
 * The steps of a plan, in the order they must go live, each complete and safe at its time: its policy file (and the
 * snippets serving it) first, then its DNS records. At every step the policy a sender can hold covers every MX host
 * DNS lists then.
 */

const TTL = 3600;
/** After the MX records change, resolvers may hand out the old ones for their TTL: a day covers the usual ones. */
export const MX_TTL_MARGIN_S = 86400;

/** What the steps are made from: the decisions of planRecords. */
export interface StepInput {
  domain: string;
  zone: string;
  policyHost: string;
  policyUrl: string;
  now: Date;
  /** The valid policy published now, and its id; null when there is none. */
  current: { mode: PolicyMode; mx: string[]; maxAge: number; id: string | null } | null;
  /** The MX hosts DNS lists now, with their preference. */
  mxHosts: { host: string; priority: number }[];
  target: { mode: PolicyMode; mx: string[]; maxAge: number; rua: string[]; id: string };
  /** The published policy text is the target's. */
  unchanged: boolean;
}

/** The kind of change decides the steps: a migration, hosts added, or one step. */
export function planSteps(input: StepInput): PlanStep[] {
  const { current, target, mxHosts } = input;
  const uncovered = mxHosts.filter((h) => !target.mx.some((p) => mxPatternMatches(p, h.host)));
  const fresh = target.mx.filter((p) => !mxHosts.some((h) => mxPatternMatches(p, h.host)));
  const live = current !== null && current.mode !== 'none' && target.mode !== 'none';
  const replaced = uncovered.every((h) => current?.mx.some((p) => mxPatternMatches(p, h.host)));
  if (live && uncovered.length > 0 && fresh.length > 0 && replaced)
    return migrationSteps(input, uncovered, fresh);
  if (live && fresh.length > 0 && !input.unchanged) return addingSteps(input, fresh);
  return [oneStep(input)];
}

/** One step: publish (or keep) the target policy and its id. */
function oneStep(input: StepInput): PlanStep {
  const { current, target, unchanged } = input;
  const base = {
    number: 1,
    notBefore: null,
    policyText: formatPolicy(target),
    id: target.id,
    txt: 'both',
  } as const;
  if (unchanged && current?.id === target.id) {
    return step(input, {
      ...base,
      title: 'Nothing to change: keep the policy and its id',
      policyChanges: false,
      actions: [
        `The published policy and the _mta-sts id ${target.id} stay as they are; the records below are what DNS should hold.`,
      ],
    });
  }
  if (unchanged) {
    return step(input, {
      ...base,
      title: 'Publish the _mta-sts record',
      policyChanges: false,
      actions: [
        `The policy file stays as it is, but no _mta-sts record announces it: publish the record with id ${target.id}.`,
      ],
    });
  }
  return step(input, {
    ...base,
    title: current ? 'Publish the new policy, then its new id' : 'Publish the policy, then the records',
    policyChanges: true,
    actions: publishActions(
      input,
      current ? 'the new policy file below, in place of the current one' : 'the policy file below',
      target.id,
    ),
  });
}

/** Hosts added, none dropped: the policy lists them first; MX records may point to them once old caches ran out. */
function addingSteps(input: StepInput, fresh: string[]): PlanStep[] {
  const { target } = input;
  const policyText = formatPolicy(target);
  const first = step(input, {
    number: 1,
    title: `Publish the policy listing ${fresh.join(', ')}, then its new id`,
    notBefore: null,
    policyText,
    id: target.id,
    policyChanges: true,
    txt: 'both',
    actions: publishActions(input, 'the new policy file below, in place of the current one', target.id),
  });
  return [first, moveStep(input, fresh, [], first)];
}

/** Old hosts replaced by new ones: interim policy (both), then the MX records, then the final policy. */
function migrationSteps(input: StepInput, uncovered: { host: string }[], fresh: string[]): PlanStep[] {
  const { current, target } = input;
  const all = [...new Set([...(current?.mx ?? []), ...target.mx])];
  const dropped = uncovered.map((h) => h.host);
  const first = step(input, {
    number: 1,
    title: 'Publish the interim policy (old and new hosts), then a new id',
    notBefore: null,
    policyText: formatPolicy({ ...target, mx: all }),
    id: target.id,
    policyChanges: true,
    txt: 'both',
    actions: publishActions(
      input,
      `the interim policy below (it lists ${all.join(', ')}), in place of the current one`,
      target.id,
    ),
  });
  const move = moveStep(input, fresh, dropped, first);
  const lastAt = new Date(Date.parse(move.notBefore ?? input.now.toISOString()) + MX_TTL_MARGIN_S * 1000);
  const lastId = freshId(lastAt);
  const wait = `Not before ${isoSeconds(lastAt)}: ${durationText(MX_TTL_MARGIN_S)} after step 2, so that no resolver still hands out the old MX records (their TTL).`;
  const final = step(input, {
    number: 3,
    title: `Drop ${dropped.join(', ')} from the policy, then a new id`,
    notBefore: lastAt,
    policyText: formatPolicy(target),
    id: lastId,
    policyChanges: true,
    txt: 'sts',
    actions: [
      wait,
      ...publishActions(input, 'the final policy file below, in place of the interim one', lastId, target.id),
    ],
  });
  return [first, move, final];
}

/** The MX records change: not before senders that cached the current policy (without the new hosts) let it go. */
function moveStep(input: StepInput, fresh: string[], dropped: string[], before: PlanStep): PlanStep {
  const old = input.current as NonNullable<StepInput['current']>;
  const at = new Date(input.now.getTime() + old.maxAge * 1000);
  const records = mxRecords(input, fresh, dropped);
  const pointTo =
    records.length > 0
      ? 'Set the MX records to those below'
      : `Point the MX records at hosts matching ${fresh.join(', ')}`;
  const gone = dropped.length > 0 ? ` (${dropped.join(', ')} no longer among them)` : '';
  return step(input, {
    number: before.number + 1,
    title: `Move mail: MX records to ${fresh.join(', ')}`,
    notBefore: at,
    policyText: before.policyText,
    id: before.id,
    policyChanges: false,
    txt: 'none',
    records,
    actions: [
      `Not before ${isoSeconds(at)}: senders that cached the current policy keep it for its max_age ${old.maxAge} (${durationText(old.maxAge)}) after step 1, and it does not list ${fresh.join(', ')}.`,
      `${pointTo}${gone}. The policy file and the id stay as in step ${before.number}.`,
    ],
  });
}

/** The MX set after a move: the hosts the target still covers, then the new host names (not wildcards). */
function mxRecords(input: StepInput, fresh: string[], dropped: string[]): DnsRecord[] {
  const kept = input.mxHosts.filter((h) => !dropped.includes(h.host));
  const names = fresh.filter((p) => !p.startsWith('*.'));
  if (names.length === 0) return [];
  const top = Math.max(0, ...kept.map((h) => h.priority));
  const hosts = [...kept, ...names.map((host, i) => ({ host, priority: top + 10 * (i + 1) }))];
  return hosts.map((h) => ({
    name: input.domain,
    host: relativeName(input.domain, input.zone),
    type: 'MX' as const,
    priority: h.priority,
    value: h.host,
    ttl: TTL,
    purpose: 'where mail for the domain goes: the MX records after this step are exactly these',
  }));
}

/** The policy file goes live first; the TXT record with the new id only once it is served. */
function publishActions(
  input: StepInput,
  what: string,
  id: string,
  previousId = input.current?.id,
): string[] {
  const was = previousId ? ` (replacing ${previousId})` : '';
  return [
    `Serve ${what} at ${input.policyUrl} (HTTPS, status 200, text/plain, no redirect).`,
    `Once that URL serves it, publish the _mta-sts record with id ${id}${was}: senders fetch the policy again only when the id changes, so an id published before the file would be cached with the old policy.`,
  ];
}

/** What a step is made of; its records, BIND fragment and snippets follow from it. */
interface StepParts {
  number: number;
  title: string;
  notBefore: Date | null;
  policyText: string;
  id: string;
  policyChanges: boolean;
  /** Which TXT records the step publishes, before any other `records`. */
  txt: 'both' | 'sts' | 'none';
  records?: DnsRecord[];
  actions: string[];
}

function step(input: StepInput, parts: StepParts): PlanStep {
  const txt = txtRecords(input, parts.id);
  const records = [
    ...(parts.txt === 'none' ? [] : parts.txt === 'sts' ? txt.slice(0, 1) : txt),
    ...(parts.records ?? []),
  ];
  return {
    number: parts.number,
    title: parts.title,
    notBefore: parts.notBefore ? isoSeconds(parts.notBefore) : null,
    actions: parts.actions,
    policyChanges: parts.policyChanges,
    policyText: parts.policyText,
    id: parts.id,
    records,
    bind: bindFragment({ records }),
    snippets: hostingSnippets({ policyHost: { name: input.policyHost }, policyText: parts.policyText }),
  };
}

/** The two TXT records: the policy announcement (id) and the TLS-RPT reporting record. */
function txtRecords(input: StepInput, id: string): DnsRecord[] {
  const d = input.domain;
  return [
    {
      name: `_mta-sts.${d}`,
      host: relativeName(`_mta-sts.${d}`, input.zone),
      type: 'TXT',
      value: formatStsRecord({ id }),
      ttl: TTL,
      purpose:
        'announces the policy; publish it after the policy file, and change the id whenever the policy text changes',
    },
    {
      name: `_smtp._tls.${d}`,
      host: relativeName(`_smtp._tls.${d}`, input.zone),
      type: 'TXT',
      value: formatTlsRptRecord({ rua: input.target.rua }),
      ttl: TTL,
      purpose: 'where senders send TLS reports (RFC 8460)',
    },
  ];
}

/** A fresh sts id: the UTC time, 15 letters and digits (RFC 8461 §3.1 allows 1-32). */
export function freshId(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d{3}Z$/, '')
    .replace(/[-:]/g, '');
}

/** The record's host relative to the zone, as DNS panels ask for it. */
export function relativeName(name: string, zone: string): string {
  if (name === zone) return '@';
  return name.endsWith(`.${zone}`) ? name.slice(0, -(zone.length + 1)) : name;
}

function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
