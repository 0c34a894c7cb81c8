import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { nonPublicReason } from '../core/net/address-guard.js';
import type { DnsLookups } from '../core/net/dns.js';

/**
 * Ownership of a policy host. Each enrollment has a secret token; `mta-sts.<domain>` proves control when its CNAME
 * chain reaches exactly `<token>.<MTASTS_HOSTING_NAME>` (the operator's wildcard `*.<MTASTS_HOSTING_NAME>` points
 * those names at the bot), or, without a CNAME, when its A/AAAA records are all the bot's AND a TXT record at the same
 * name says `mtasts-bot-verify=<token>`. "Resolves to the bot" alone proves nothing: anyone's CNAME may point there.
 * The bot's addresses are MTASTS_HOSTING_ADDRESSES when set, otherwise the hosting name's own A/AAAA. Every lookup
 * goes through the engine's resolver; an address that is not public is refused unless private networks are allowed.
 */

/** A fresh enrollment token: 20 lower-case base32 characters (100 random bits), a DNS label. */
export function newToken(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(20);
  return [...bytes].map((b) => alphabet[b & 31]).join('');
}

/** The CNAME target of one enrollment. */
export function cnameTarget(token: string, hostingName: string): string {
  return `${token}.${hostingName}`;
}

/** The TXT value that proves control of a policy host published with A/AAAA records in place of the CNAME. */
export function verifyText(token: string): string {
  return `mtasts-bot-verify=${token}`;
}

/** Whether a domain's policy host is the hosting name or a name under it: the operator's own, never enrolled. */
export function isOperatorName(policyHost: string, hostingName: string): boolean {
  return policyHost === hostingName || policyHost.endsWith(`.${hostingName}`);
}

/** here: one of the tokens asked about is proven (which one); otherwise why not, as pointsHere says it. */
export type Proof =
  | { kind: 'here'; token: string }
  | { kind: 'elsewhere' | 'missing' | 'unknown'; message: string };

const MAX_HOPS = 8;

/**
 * Whether DNS proves one of `tokens` (the first is the enrollment's own, named in messages) at `name` now. Never
 * throws; a failed lookup is `unknown`.
 */
export async function proveControl(
  name: string,
  tokens: readonly string[],
  dns: DnsLookups,
  settings: PointsHereSettings,
): Promise<Proof> {
  const target = cnameTarget(tokens[0] ?? '', settings.hostingName);
  const chain = await cnameChain(name, dns);
  if (!chain.ok) return { kind: 'unknown', message: chain.message };
  if (chain.names.length > 0) {
    const token = tokens.find((t) => chain.names.includes(cnameTarget(t, settings.hostingName)));
    if (token !== undefined) return { kind: 'here', token };
    return {
      kind: 'elsewhere',
      message: `${name} is a CNAME to ${chain.names[0]}, not to this enrollment's target: make it a CNAME to ${target}`,
    };
  }
  const seen = await pointsHere(name, dns, settings);
  if (seen.kind === 'unknown') return seen;
  if (seen.kind === 'missing') {
    return {
      kind: 'missing',
      message: `${name} does not resolve yet: publish the CNAME ${name} -> ${target}`,
    };
  }
  if (seen.kind === 'elsewhere') {
    return { kind: 'elsewhere', message: `${seen.message}: make it a CNAME to ${target}` };
  }
  const txt = await dns.txt(name);
  if (!txt.ok && txt.kind === 'error') return { kind: 'unknown', message: txt.message };
  const texts = txt.ok ? txt.records.map((r) => r.trim()) : [];
  const token = tokens.find((t) => texts.includes(verifyText(t)));
  if (token !== undefined) return { kind: 'here', token };
  return {
    kind: 'elsewhere',
    message: `${name} resolves to the bot's addresses but has no TXT record "${verifyText(tokens[0] ?? '')}": publish it, or make ${name} a CNAME to ${target}`,
  };
}

/** The names `name`'s CNAME records lead to, in order (empty: no CNAME), lower case without the trailing dot. */
async function cnameChain(
  name: string,
  dns: DnsLookups,
): Promise<{ ok: true; names: string[] } | { ok: false; message: string }> {
  if (!dns.cname) return { ok: false, message: `the resolver cannot read CNAME records for ${name}` };
  const names: string[] = [];
  let at = name;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const answer = await dns.cname(at);
    if (!answer.ok)
      return answer.kind === 'error' ? { ok: false, message: answer.message } : { ok: true, names };
    const next = (answer.records[0] ?? '').toLowerCase().replace(/\.$/, '');
    if (next === '' || names.includes(next)) return { ok: true, names };
    names.push(next);
    at = next;
  }
  return { ok: true, names };
}

export interface PointsHereSettings {
  /** MTASTS_HOSTING_NAME: each enrollment's CNAME target is `<token>.<hostingName>`. */
  hostingName: string;
  /** MTASTS_HOSTING_ADDRESSES: the bot's public addresses, when the hosting name's own are not what to compare. */
  hostingAddresses: readonly string[];
  allowPrivateNetworks: boolean;
}

/**
 * here: every address is the bot's. elsewhere: the name resolves, but not (only) to the bot. missing: no such name
 * or no address. unknown: a lookup failed (SERVFAIL, timeout): nothing may be concluded from it.
 */
export type PointsHere =
  | { kind: 'here'; addresses: string[] }
  | { kind: 'elsewhere' | 'missing' | 'unknown'; addresses: string[]; message: string };

/** Whether `name` resolves to the bot now. Never throws. */
export async function pointsHere(
  name: string,
  dns: DnsLookups,
  settings: PointsHereSettings,
  signal?: AbortSignal,
): Promise<PointsHere> {
  const answer = await dns.addresses(name, signal);
  if (!answer.ok) {
    if (answer.kind === 'error') return { kind: 'unknown', addresses: [], message: answer.message };
    return {
      kind: 'missing',
      addresses: [],
      message: `${name} does not resolve yet`,
    };
  }
  const addresses = answer.records.map(canonicalAddress);
  if (!settings.allowPrivateNetworks) {
    const refused = addresses.map(nonPublicReason).find((r) => r !== null);
    if (refused) return { kind: 'elsewhere', addresses, message: `${name}: ${refused}, not the bot's` };
  }
  const ours = await botAddresses(dns, settings, signal);
  if (!ours.ok) return { kind: 'unknown', addresses, message: ours.message };
  const foreign = addresses.filter((a) => !ours.addresses.includes(a));
  if (foreign.length === 0) return { kind: 'here', addresses };
  return {
    kind: 'elsewhere',
    addresses,
    message: `${name} resolves to ${foreign.join(', ')}, not to the bot (${settings.hostingName})`,
  };
}

/** The bot's addresses: as configured, or the hosting name's A/AAAA now. */
async function botAddresses(
  dns: DnsLookups,
  settings: PointsHereSettings,
  signal: AbortSignal | undefined,
): Promise<{ ok: true; addresses: string[] } | { ok: false; message: string }> {
  if (settings.hostingAddresses.length > 0) {
    return { ok: true, addresses: settings.hostingAddresses.map(canonicalAddress) };
  }
  const answer = await dns.addresses(settings.hostingName, signal);
  if (!answer.ok) {
    return {
      ok: false,
      message: `the hosting name ${settings.hostingName} does not resolve (${answer.message}): the bot cannot tell its own addresses`,
    };
  }
  return { ok: true, addresses: answer.records.map(canonicalAddress) };
}

/** An address in one written form, so that two spellings of one IPv6 address compare equal. */
export function canonicalAddress(address: string): string {
  const bare = address.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 6) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare.toLowerCase();
  }
}
