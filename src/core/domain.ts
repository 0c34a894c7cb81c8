import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { shown } from './problem.js';

/** A domain as the user typed it, normalized to the A-label form that goes on the wire. */
export interface Domain {
  /** A-label (IDNA/punycode) form, lower case, no trailing dot: what DNS is asked about. */
  ascii: string;
  /** U-label form for display; equal to `ascii` for a plain ASCII name. */
  unicode: string;
}

export type DomainResult = { ok: true; domain: Domain } | { ok: false; error: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Checks a host name in A-label form (LDH rule, RFC 1123 / RFC 5890): labels of letters, digits and hyphens,
 * not starting or ending with a hyphen, 1-63 characters, 253 in all. Returns the first rule broken, or null.
 */
export function hostnameProblem(name: string): string | null {
  if (name.length === 0) return 'it is empty';
  if (name.length > 253) return `it is ${name.length} characters long; a domain name holds at most 253`;
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0) return 'it has an empty label (two dots in a row, or a leading dot)';
    if (label.length > 63)
      return `the label "${label.slice(0, 20)}…" is ${label.length} characters; at most 63`;
    if (!LABEL.test(label)) {
      if (label.startsWith('-') || label.endsWith('-'))
        return `the label "${label}" starts or ends with a hyphen`;
      return `the label "${label}" holds a character a host name cannot hold (only letters, digits and hyphens)`;
    }
  }
  return null;
}

/** Turns a user's argument into a domain to check, or one plain sentence saying what is wrong with it. */
export function parseDomain(input: string): DomainResult {
  const raw = input.trim();
  const fail = (why: string): DomainResult => ({
    ok: false,
    error: `"${shown(raw, 80)}" is not a domain: ${why}`,
  });
  if (raw.length === 0) return { ok: false, error: 'no domain given: name a domain such as example.com' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || raw.includes('/') || raw.includes('@')) {
    return fail('give the bare domain (example.com), not a URL or an e-mail address');
  }
  if (/\s/.test(raw)) return fail('it contains white space');
  if (raw.startsWith('-')) return fail('it starts with a hyphen');
  const unbracketed = raw.replace(/^\[(.*)\]$/, '$1');
  if (isIP(unbracketed) !== 0) return fail('it is an IP address; MTA-STS is published for a domain name');
  let name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (name.includes('..') || name.startsWith('.')) return fail('it has an empty label (two dots in a row)');
  name = name.toLowerCase();
  // Length checks before IDNA: a name that is too long is refused with that reason, not as "invalid IDNA".
  for (const label of name.split('.')) {
    if (label.length > 63)
      return fail(`the label "${label.slice(0, 20)}…" is ${label.length} characters; at most 63`);
  }
  let ascii = name;
  // U-labels are converted; a label that claims to be an A-label ("xn--") must decode (RFC 5890 §2.3.2.1).
  if (/[^\x20-\x7e]/.test(name) || /(?:^|\.)xn--/.test(name)) {
    ascii = domainToASCII(name);
    if (ascii === '') return fail('it is not a valid internationalized domain name (IDNA)');
  }
  const problem = hostnameProblem(ascii);
  if (problem) return fail(problem);
  if (ascii === 'localhost' || ascii.endsWith('.localhost')) return fail('localhost is not a mail domain');
  if (!ascii.includes('.')) {
    return fail('it has a single label; give a full domain such as example.com');
  }
  if (/^[0-9.]+$/.test(ascii)) return fail('it looks like a number or an IP address, not a domain');
  const unicode = domainToUnicode(ascii) || ascii;
  return { ok: true, domain: { ascii, unicode } };
}

/** Lower case, no trailing dot: the form in which two host names are compared. */
export function canonicalHost(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
