import { isIP } from 'node:net';
import { nonPublicReason } from '../core/net/address-guard.js';
import type { DnsLookups } from '../core/net/dns.js';

/**
 * Ownership of a policy host: `mta-sts.<domain>` is the bot's while it resolves to the bot, through a CNAME to
 * MTASTS_HOSTING_NAME (the resolver follows the chain, so the name's addresses are then the hosting name's) or A/AAAA
 * records of its own. The addresses must all be among the bot's: MTASTS_HOSTING_ADDRESSES when set, otherwise the
 * hosting name's own A/AAAA. Every lookup goes through the engine's resolver; an address that is not public is
 * refused unless private networks are allowed, as everywhere else.
 */

export interface PointsHereSettings {
  /** MTASTS_HOSTING_NAME: the CNAME target. */
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
      message: `${name} does not resolve yet: publish the CNAME ${name} -> ${settings.hostingName}`,
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
    message: `${name} resolves to ${foreign.join(', ')}, not to the bot (${settings.hostingName}): make it a CNAME to ${settings.hostingName}`,
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
