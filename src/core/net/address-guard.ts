import { isIP } from 'node:net';

/**
 * The addresses a check may connect to: public unicast Internet addresses only. Senders on the Internet cannot reach
 * the others, and a bot that connects to them can be made to probe internal networks.
 *
 * Refused: every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (as updated in 2025), multicast,
 * the IPv4 reserved range 240.0.0.0/4, the deprecated IPv6 site-local (fec0::/10) and IPv4-compatible (::/96) ranges,
 * and all IPv6 outside the global unicast range 2000::/3. The registries mark a few blocks globally reachable (PCP,
 * TURN and DNS-SD anycast, AS112, AMT, ORCHIDv2, DRIP); they are refused too: no mail server or policy host lives there.
 *
 * IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped (::ffff:0:0/96, which the system
 * reaches over IPv4) and the NAT64 well-known prefix (64:ff9b::/96, which a NAT64 gateway forwards to the IPv4
 * address; DNS64 resolvers hand these out on IPv6-only networks). The other forms are refused whatever they carry:
 * IPv4-compatible (deprecated by RFC 4291), 6to4 (2002::/16, deprecated by RFC 7526), Teredo (inside 2001::/23) and
 * local-use NAT64 (64:ff9b:1::/48, a network's own translator).
 *
 * Each family has its own list, so an IPv6 block never matches an IPv4 address or the reverse. In a list the first
 * block holding an address names it: a block nested in a larger one comes before it.
 */
interface Family {
  bits: number;
  parse: (address: string) => bigint;
  /** A CIDR block, and what an address in it is. */
  blocks: readonly (readonly [block: string, what: string])[];
}

const RESERVED_V6 = 'a reserved address (outside the global unicast range 2000::/3)';

const IPV4: Family = {
  bits: 32,
  parse: ipv4Value,
  blocks: [
    ['0.0.0.0/8', 'a "this network" address'],
    ['10.0.0.0/8', 'a private address'],
    ['100.64.0.0/10', 'a shared (carrier-grade NAT) address'],
    ['127.0.0.0/8', 'a loopback address'],
    ['169.254.0.0/16', 'a link-local address'],
    ['172.16.0.0/12', 'a private address'],
    ['192.0.0.0/24', 'an IETF protocol assignment'],
    ['192.0.2.0/24', 'a documentation address'],
    ['192.31.196.0/24', 'an AS112 DNS sink address'],
    ['192.52.193.0/24', 'an AMT relay address'],
    ['192.88.99.0/24', 'a 6to4 relay anycast address (deprecated)'],
    ['192.168.0.0/16', 'a private address'],
    ['192.175.48.0/24', 'an AS112 DNS sink address'],
    ['198.18.0.0/15', 'a benchmarking address'],
    ['198.51.100.0/24', 'a documentation address'],
    ['203.0.113.0/24', 'a documentation address'],
    ['224.0.0.0/4', 'a multicast address'],
    ['255.255.255.255/32', 'the broadcast address'],
    ['240.0.0.0/4', 'a reserved address'],
  ],
};

const IPV6: Family = {
  bits: 128,
  parse: ipv6Value,
  blocks: [
    ['::/128', 'the unspecified address'],
    ['::1/128', 'a loopback address'],
    ['::/96', 'an IPv4-compatible address (deprecated)'],
    ['64:ff9b:1::/48', 'a local-use NAT64 address'],
    ['100::/64', 'a discard-only address'],
    ['100:0:0:1::/64', 'a dummy address'],
    ['2001::/23', 'an IETF protocol assignment (Teredo, ORCHID, AMT and others)'],
    ['2001:db8::/32', 'a documentation address'],
    ['2002::/16', 'a 6to4 address (deprecated)'],
    ['2620:4f:8000::/48', 'an AS112 DNS sink address'],
    ['3fff::/20', 'a documentation address'],
    ['5f00::/16', 'a segment routing (SRv6) identifier'],
    ['fc00::/7', 'a private address (unique local)'],
    ['fe80::/10', 'a link-local address'],
    ['fec0::/10', 'a site-local address (deprecated)'],
    ['ff00::/8', 'a multicast address'],
    ['::/3', RESERVED_V6],
    ['4000::/2', RESERVED_V6],
    ['8000::/1', RESERVED_V6],
  ],
};

/** IPv6 blocks whose last 32 bits are an IPv4 address that the connection reaches. */
const CARRIERS: Family = {
  bits: 128,
  parse: ipv6Value,
  blocks: [
    ['::ffff:0:0/96', 'IPv4-mapped'],
    ['64:ff9b::/96', 'NAT64 of'],
  ],
};

/** Why an address must not be connected to, or null when it is a public unicast address. */
export function nonPublicReason(address: string): string | null {
  switch (isIP(address)) {
    case 4:
      return reason(address, IPV4, ipv4Value(address));
    case 6:
      return ipv6Reason(address);
    default:
      return `${address} is not an IP address`;
  }
}

function ipv6Reason(address: string): string | null {
  const value = ipv6Value(address);
  const carrier = whatHolds(CARRIERS, value);
  if (carrier === undefined) return reason(address, IPV6, value);
  const ipv4 = value & 0xffffffffn;
  const what = whatHolds(IPV4, ipv4);
  return what ? `${address} is ${what} (${carrier} ${ipv4Text(ipv4)})` : null;
}

function reason(address: string, family: Family, value: bigint): string | null {
  const what = whatHolds(family, value);
  return what ? `${address} is ${what}` : null;
}

/** What the first block holding `value` says it is. The blocks are read at each call: nothing is computed at load. */
function whatHolds(family: Family, value: bigint): string | undefined {
  return family.blocks.find(([block]) => {
    const slash = block.indexOf('/');
    const shift = BigInt(family.bits - Number(block.slice(slash + 1)));
    return value >> shift === family.parse(block.slice(0, slash)) >> shift;
  })?.[1];
}

/** A dotted quad (already checked by isIP) as a number. */
function ipv4Value(address: string): bigint {
  return address.split('.').reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

function ipv4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => (value >> shift) & 255n).join('.');
}

/** An IPv6 address (already checked by isIP) as a number: a zone id dropped, `::` expanded, a dotted tail read. */
function ipv6Value(address: string): bigint {
  const text = address.replace(/%.*/, '');
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':') + 1;
    return ipv6Value(`${text.slice(0, cut)}0:0`) | ipv4Value(text.slice(cut));
  }
  const gap = text.indexOf('::');
  const groups = gap < 0 ? text.split(':') : expand(text.slice(0, gap), text.slice(gap + 2));
  return groups.reduce((value, group) => (value << 16n) | BigInt(`0x${group}`), 0n);
}

/** The eight groups of an address written with `::`, from the groups before and after it. */
function expand(head: string, tail: string): string[] {
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}
