import { canonicalHost, hostnameProblem } from './domain.js';
import { EXT_NAME, type Problem, shown } from './problem.js';

export type PolicyMode = 'enforce' | 'testing' | 'none';

/** A policy file (RFC 8461 §3.2) as far as it could be read. */
export interface Policy {
  version: string | null;
  mode: PolicyMode | null;
  /** Seconds senders may cache the policy. */
  maxAge: number | null;
  /** mx patterns in order, as written (lower-cased): `mail.example.com` or `*.example.com`. */
  mx: string[];
  extensions: { name: string; value: string }[];
}

export interface PolicyResult {
  /** What could be read, even when `valid` is false, so that the other checks still have something to go on. */
  policy: Policy;
  /** False when a sender would discard the policy (any POLICY_SYNTAX problem). */
  valid: boolean;
  problems: Problem[];
}

export const MAX_AGE_LIMIT = 31557600;
export const POLICY_MODES: readonly PolicyMode[] = ['enforce', 'testing', 'none'];
const KNOWN = new Set(['version', 'mode', 'max_age', 'mx']);

/**
 * Parses a policy file. Lines end in LF or CRLF (mixed is accepted, as senders do); each line is `key: value` with
 * optional white space after the colon and trailing white space ignored. Field names are case-sensitive. For fields
 * other than `mx` the first occurrence counts. Never throws.
 */
export function parsePolicy(text: string): PolicyResult {
  const problems: Problem[] = [];
  const syntax = (message: string) => problems.push({ code: 'POLICY_SYNTAX', message });
  const policy: Policy = { version: null, mode: null, maxAge: null, mx: [], extensions: [] };
  const seen = new Set<string>();

  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop(); // one terminating line break is allowed
  lines.forEach((rawLine, index) => {
    const n = index + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') {
      if (text.trim() !== '')
        syntax(`line ${n} is empty; the policy must have one key: value pair on every line`);
      return;
    }
    if (line.includes('\r')) {
      syntax(`line ${n} holds a carriage return not followed by a line feed; lines end in LF or CRLF`);
      return;
    }
    const m = /^([^:]*):[ \t]*(.*)$/s.exec(line); // "s": a value may hold U+2028 and U+2029 like any other text
    if (!m) {
      syntax(`line ${n} ("${shown(line)}") is not of the form key: value`);
      return;
    }
    const name = m[1] ?? '';
    const value = (m[2] ?? '').replace(/[ \t]+$/, '');
    if (!EXT_NAME.test(name)) {
      syntax(`line ${n}: "${shown(name)}" is not a valid field name`);
      return;
    }
    if (value === '') {
      syntax(`line ${n}: the field "${name}" has no value`);
      return;
    }
    if (!KNOWN.has(name)) {
      const hint = KNOWN.has(name.toLowerCase())
        ? ` (field names are case-sensitive: write "${name.toLowerCase()}")`
        : suggestion(name);
      problems.push({
        code: 'POLICY_UNKNOWN_FIELD',
        message: `line ${n}: "${shown(name)}" is not a field RFC 8461 defines, so senders ignore it${hint}`,
      });
      if (
        !/^(?:[\x21-\x7e\u0080-\uffff](?:[\x20-\x7e\u0080-\uffff]*[\x21-\x7e\u0080-\uffff])?)$/.test(value)
      ) {
        syntax(`line ${n}: the value of "${shown(name)}" holds a control character`);
      }
      policy.extensions.push({ name, value });
      return;
    }
    const duplicate = name !== 'mx' && seen.has(name);
    seen.add(name);
    if (duplicate) {
      problems.push({
        code: 'POLICY_DUPLICATE_FIELD',
        message: `line ${n}: "${name}" appears again ("${shown(value)}"); senders use the first one`,
      });
    }
    switch (name) {
      case 'version':
        if (value !== 'STSv1') syntax(`line ${n}: version must be "STSv1", seen "${shown(value)}"`);
        else if (!duplicate) policy.version = value;
        break;
      case 'mode':
        if (!(POLICY_MODES as readonly string[]).includes(value)) {
          syntax(`line ${n}: mode must be enforce, testing or none (lower case), seen "${shown(value)}"`);
        } else if (!duplicate) policy.mode = value as PolicyMode;
        break;
      case 'max_age':
        if (!/^[0-9]{1,10}$/.test(value)) {
          syntax(`line ${n}: max_age must be 1 to 10 digits (seconds), seen "${shown(value)}"`);
        } else if (Number(value) > MAX_AGE_LIMIT) {
          syntax(`line ${n}: max_age ${value} is over the limit of ${MAX_AGE_LIMIT} seconds (one year)`);
        } else if (!duplicate) policy.maxAge = Number(value);
        break;
      case 'mx': {
        const problem = mxPatternProblem(value);
        if (problem) syntax(`line ${n}: mx "${shown(value)}" ${problem}`);
        else policy.mx.push(value.toLowerCase());
        break;
      }
    }
  });

  if (!seen.has('version')) {
    syntax('the version field is missing (the policy must say "version: STSv1")');
  }
  if (!seen.has('mode')) syntax('the mode field is missing (mode: enforce, testing or none)');
  if (!seen.has('max_age')) syntax('the max_age field is missing (max_age: <seconds>)');
  if (!seen.has('mx') && policy.mode !== null && policy.mode !== 'none') {
    syntax(`mode is ${policy.mode} but the policy lists no mx; every MX host must be covered by an mx line`);
  }
  const valid = !problems.some((p) => p.code === 'POLICY_SYNTAX');
  return { policy, valid, problems };
}

/**
 * The policy file for a mode, its mx patterns and max_age (RFC 8461 §3.2): one `key: value` line each, LF line ends,
 * the mx patterns in the order given. Valid patterns and a max_age within the limit parse back with parsePolicy to
 * the same values and no problems.
 */
export function formatPolicy(policy: { mode: PolicyMode; mx: readonly string[]; maxAge: number }): string {
  const mx = policy.mx.map((m) => `mx: ${m}\n`).join('');
  return `version: STSv1\nmode: ${policy.mode}\n${mx}max_age: ${policy.maxAge}\n`;
}

/** `[*.]hostname` in A-labels (RFC 8461 §3.2); returns what is wrong, or null. */
export function mxPatternProblem(value: string): string | null {
  const host = value.startsWith('*.') ? value.slice(2) : value;
  if (host.includes('*')) return 'may hold a wildcard only as its whole leftmost label ("*.example.com")';
  if (/[^\x21-\x7e]/.test(host)) return 'must be written in A-labels (punycode), without spaces or Unicode';
  if (host.endsWith('.')) return 'must not end with a dot';
  const problem = hostnameProblem(host.toLowerCase());
  if (problem) return `is not a host name: ${problem}`;
  if (!host.includes('.')) return 'is not a fully qualified host name';
  return null;
}

/**
 * Does an mx pattern cover a host? Case-insensitive, trailing dots ignored; `*.example.com` covers exactly one
 * leftmost label (`mx1.example.com`, not `example.com` and not `a.b.example.com`), per RFC 8461 §4.1.
 */
export function mxPatternMatches(pattern: string, host: string): boolean {
  const p = canonicalHost(pattern);
  const h = canonicalHost(host);
  if (!p.startsWith('*.')) return p === h;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === p.slice(2);
}

/** Offers the known field a typo was probably meant to be (one edit away). */
function suggestion(name: string): string {
  const lower = name.toLowerCase();
  for (const known of KNOWN) {
    if (editDistanceAtMostOne(lower, known)) return ` (did you mean "${known}"?)`;
  }
  return '';
}

function editDistanceAtMostOne(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  let j = 0;
  let edits = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (++edits > 1) return false;
    if (a.length > b.length) i++;
    else if (b.length > a.length) j++;
    else {
      i++;
      j++;
    }
  }
  return edits + (a.length - i) + (b.length - j) <= 1;
}
