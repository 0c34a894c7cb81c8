import { describe, expect, test } from 'vitest';
import { nonPublicReason } from '../../src/core/net/address-guard.js';

/**
 * The address guard against real addresses. Each refused block is tried at its first, a middle and its last address,
 * with the exact reason a report shows; the addresses just outside each block are in NEIGHBOURS, public unless
 * another block starts there. The blocks are those of the IANA IPv4 and IPv6 Special-Purpose Address Registries (the
 * entries of 2025, listed in REGISTRY below), multicast, the reserved and deprecated ranges.
 */

/** Public unicast addresses of well-known services and of the ranges the network-namespace test uses. */
const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '9.9.9.9',
  '11.1.0.25',
  '45.1.2.3',
  '2606:4700::1111',
  '2001:4860:4860::8888',
  '2a01:4f8:1::25',
  '2a00:1450:4001:80b::200e',
  '2000::',
  '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
];

type Row = [block: string, what: string, addresses: string[]];

/** IPv4: [block, what the report calls it, first / middle / last address and any registry entry nested in it]. */
const IPV4: Row[] = [
  ['0.0.0.0/8', 'a "this network" address', ['0.0.0.0', '0.1.2.3', '0.255.255.255']],
  ['10.0.0.0/8', 'a private address', ['10.0.0.0', '10.123.45.67', '10.255.255.255']],
  [
    '100.64.0.0/10',
    'a shared (carrier-grade NAT) address',
    ['100.64.0.0', '100.100.100.100', '100.127.255.255'],
  ],
  ['127.0.0.0/8', 'a loopback address', ['127.0.0.0', '127.0.0.1', '127.255.255.255']],
  ['169.254.0.0/16', 'a link-local address', ['169.254.0.0', '169.254.169.254', '169.254.255.255']],
  ['172.16.0.0/12', 'a private address', ['172.16.0.0', '172.20.1.2', '172.31.255.255']],
  [
    '192.0.0.0/24',
    'an IETF protocol assignment',
    // DS-Lite /29, dummy .8, PCP .9 and TURN .10 anycast, NAT64 discovery .170 and .171: all registry entries.
    [
      '192.0.0.0',
      '192.0.0.7',
      '192.0.0.8',
      '192.0.0.9',
      '192.0.0.10',
      '192.0.0.170',
      '192.0.0.171',
      '192.0.0.255',
    ],
  ],
  ['192.0.2.0/24', 'a documentation address', ['192.0.2.0', '192.0.2.123', '192.0.2.255']],
  ['192.31.196.0/24', 'an AS112 DNS sink address', ['192.31.196.0', '192.31.196.1', '192.31.196.255']],
  ['192.52.193.0/24', 'an AMT relay address', ['192.52.193.0', '192.52.193.8', '192.52.193.255']],
  [
    '192.88.99.0/24',
    'a 6to4 relay anycast address (deprecated)',
    ['192.88.99.0', '192.88.99.1', '192.88.99.2', '192.88.99.255'],
  ],
  ['192.168.0.0/16', 'a private address', ['192.168.0.0', '192.168.1.1', '192.168.255.255']],
  ['192.175.48.0/24', 'an AS112 DNS sink address', ['192.175.48.0', '192.175.48.6', '192.175.48.255']],
  ['198.18.0.0/15', 'a benchmarking address', ['198.18.0.0', '198.19.0.1', '198.19.255.255']],
  ['198.51.100.0/24', 'a documentation address', ['198.51.100.0', '198.51.100.42', '198.51.100.255']],
  ['203.0.113.0/24', 'a documentation address', ['203.0.113.0', '203.0.113.9', '203.0.113.255']],
  ['224.0.0.0/4', 'a multicast address', ['224.0.0.0', '232.1.2.3', '239.255.255.255']],
  ['240.0.0.0/4', 'a reserved address', ['240.0.0.0', '250.1.2.3', '255.255.255.254']],
  ['255.255.255.255/32', 'the broadcast address', ['255.255.255.255']],
];

const RESERVED_V6 = 'a reserved address (outside the global unicast range 2000::/3)';
const ALL_ONES = 'ffff:ffff:ffff:ffff:ffff';

/** IPv6, as IPV4. The forms that carry an IPv4 address the connection would reach are in EMBEDDED below. */
const IPV6: Row[] = [
  ['::/128', 'the unspecified address', ['::', '0:0:0:0:0:0:0:0']],
  ['::1/128', 'a loopback address', ['::1', '0:0:0:0:0:0:0:1', '0000::0001']],
  [
    '::/96',
    'an IPv4-compatible address (deprecated)',
    ['::2', '::127.0.0.1', '::7f00:1', '::10.0.0.1', '::8.8.8.8', '::255.255.255.255'],
  ],
  [
    '64:ff9b:1::/48',
    'a local-use NAT64 address',
    ['64:ff9b:1::', '64:ff9b:1::a00:1', `64:ff9b:1:${ALL_ONES}`],
  ],
  ['100::/64', 'a discard-only address', ['100::', '100::1', '100::ffff:ffff:ffff:ffff']],
  ['100:0:0:1::/64', 'a dummy address', ['100:0:0:1::', '100:0:0:1::1', '100:0:0:1:ffff:ffff:ffff:ffff']],
  [
    '2001::/23',
    'an IETF protocol assignment (Teredo, ORCHID, AMT and others)',
    [
      '2001::',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo (2001::/32)
      '2001:1::1', // PCP anycast
      '2001:1::2', // TURN anycast
      '2001:1::3', // DNS-SD SRP anycast
      '2001:2::1', // benchmarking (2001:2::/48)
      '2001:3::1', // AMT (2001:3::/32)
      '2001:4:112::1', // AS112-v6 (2001:4:112::/48)
      '2001:10::1', // deprecated ORCHID (2001:10::/28)
      '2001:20::1', // ORCHIDv2 (2001:20::/28)
      '2001:30::1', // DRIP entity tags (2001:30::/28)
      `2001:1ff:${ALL_ONES}:ffff`,
    ],
  ],
  [
    '2001:db8::/32',
    'a documentation address',
    ['2001:db8::', '2001:db8:1234::5678', `2001:db8:ffff:${ALL_ONES}`],
  ],
  [
    '2002::/16',
    'a 6to4 address (deprecated)',
    ['2002::', '2002:7f00:1::1', '2002:808:808::1', `2002:ffff:ffff:${ALL_ONES}`],
  ],
  [
    '2620:4f:8000::/48',
    'an AS112 DNS sink address',
    ['2620:4f:8000::', '2620:4f:8000::42', `2620:4f:8000:${ALL_ONES}`],
  ],
  ['3fff::/20', 'a documentation address', ['3fff::', '3fff:abc::1', `3fff:fff:ffff:${ALL_ONES}`]],
  [
    '5f00::/16',
    'a segment routing (SRv6) identifier',
    ['5f00::', '5f00:1:2::3', `5f00:ffff:ffff:${ALL_ONES}`],
  ],
  [
    'fc00::/7',
    'a private address (unique local)',
    ['fc00::', 'fd12:3456:789a::1', 'FD00::ABCD', `fdff:ffff:ffff:${ALL_ONES}`],
  ],
  [
    'fe80::/10',
    'a link-local address',
    ['fe80::', 'fe80::1%eth0', 'FE80::1:abcd%2', `febf:ffff:ffff:${ALL_ONES}`],
  ],
  ['fec0::/10', 'a site-local address (deprecated)', ['fec0::', 'fec0::1', `feff:ffff:ffff:${ALL_ONES}`]],
  ['ff00::/8', 'a multicast address', ['ff00::', 'ff02::1', 'ff0e::101', `ffff:ffff:ffff:${ALL_ONES}`]],
  ['::/3', RESERVED_V6, ['::1:0:0', '1000::1', `1fff:ffff:ffff:${ALL_ONES}`]],
  ['4000::/2', RESERVED_V6, ['4000::', '6000::1', `7fff:ffff:ffff:${ALL_ONES}`]],
  ['8000::/1', RESERVED_V6, ['8000::', 'c000::1', 'fe00::', `fbff:ffff:ffff:${ALL_ONES}`]],
];

/**
 * IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) addresses reach the IPv4 address in their last 32 bits, so
 * they are judged by it, in any spelling.
 */
const EMBEDDED: [address: string, reason: string | null][] = [
  ['::ffff:0.0.0.0', '::ffff:0.0.0.0 is a "this network" address (IPv4-mapped 0.0.0.0)'],
  ['::ffff:127.0.0.1', '::ffff:127.0.0.1 is a loopback address (IPv4-mapped 127.0.0.1)'],
  ['::ffff:7f00:1', '::ffff:7f00:1 is a loopback address (IPv4-mapped 127.0.0.1)'],
  ['::FFFF:127.0.0.1%lo', '::FFFF:127.0.0.1%lo is a loopback address (IPv4-mapped 127.0.0.1)'],
  ['0:0:0:0:0:ffff:a00:1', '0:0:0:0:0:ffff:a00:1 is a private address (IPv4-mapped 10.0.0.1)'],
  ['::ffff:192.168.1.1', '::ffff:192.168.1.1 is a private address (IPv4-mapped 192.168.1.1)'],
  ['::ffff:169.254.169.254', '::ffff:169.254.169.254 is a link-local address (IPv4-mapped 169.254.169.254)'],
  ['::ffff:255.255.255.255', '::ffff:255.255.255.255 is the broadcast address (IPv4-mapped 255.255.255.255)'],
  ['::ffff:8.8.8.8', null],
  ['::ffff:808:808', null],
  ['::ffff:1.1.1.1', null],
  ['64:ff9b::', '64:ff9b:: is a "this network" address (NAT64 of 0.0.0.0)'],
  ['64:ff9b::7f00:1', '64:ff9b::7f00:1 is a loopback address (NAT64 of 127.0.0.1)'],
  ['64:ff9b::127.0.0.1', '64:ff9b::127.0.0.1 is a loopback address (NAT64 of 127.0.0.1)'],
  [
    '0064:FF9B:0000:0000:0000:0000:0A14:0019',
    '0064:FF9B:0000:0000:0000:0000:0A14:0019 is a private address (NAT64 of 10.20.0.25)',
  ],
  ['64:ff9b::ac10:fe01', '64:ff9b::ac10:fe01 is a private address (NAT64 of 172.16.254.1)'],
  ['64:ff9b::e000:fb', '64:ff9b::e000:fb is a multicast address (NAT64 of 224.0.0.251)'],
  ['64:ff9b::ffff:ffff', '64:ff9b::ffff:ffff is the broadcast address (NAT64 of 255.255.255.255)'],
  ['64:ff9b::8.8.8.8', null],
  ['64:ff9b::101:101', null],
];

/** The addresses on each side of each block: public, unless the next block starts there. */
const NEIGHBOURS: [address: string, reason: string | null][] = [
  ['1.0.0.0', null],
  ['9.255.255.255', null],
  ['11.0.0.0', null],
  ['100.63.255.255', null],
  ['100.128.0.0', null],
  ['126.255.255.255', null],
  ['128.0.0.0', null],
  ['169.253.255.255', null],
  ['169.255.0.0', null],
  ['172.15.255.255', null],
  ['172.32.0.0', null],
  ['191.255.255.255', null],
  ['192.0.1.0', null],
  ['192.0.1.255', null],
  ['192.0.3.0', null],
  ['192.31.195.255', null],
  ['192.31.197.0', null],
  ['192.52.192.255', null],
  ['192.52.194.0', null],
  ['192.88.98.255', null],
  ['192.88.100.0', null],
  ['192.167.255.255', null],
  ['192.169.0.0', null],
  ['192.175.47.255', null],
  ['192.175.49.0', null],
  ['198.17.255.255', null],
  ['198.20.0.0', null],
  ['198.51.99.255', null],
  ['198.51.101.0', null],
  ['203.0.112.255', null],
  ['203.0.114.0', null],
  ['223.255.255.255', null],
  // IPv6: the embedded forms' edges, then each block's.
  ['::fffe:ffff:ffff', `::fffe:ffff:ffff is ${RESERVED_V6}`],
  ['::1:0:0:0', `::1:0:0:0 is ${RESERVED_V6}`],
  ['64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff', `64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
  ['64:ff9b::1:0:0', `64:ff9b::1:0:0 is ${RESERVED_V6}`],
  ['64:ff9b:0:ffff:ffff:ffff:ffff:ffff', `64:ff9b:0:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
  ['64:ff9b:2::', `64:ff9b:2:: is ${RESERVED_V6}`],
  ['ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', `ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
  ['100:0:0:2::', `100:0:0:2:: is ${RESERVED_V6}`],
  ['2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
  ['2001:200::', null],
  ['2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', null],
  ['2001:db9::', null],
  ['2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
  ['2003::', null],
  ['2620:4f:7fff:ffff:ffff:ffff:ffff:ffff', null],
  ['2620:4f:8001::', null],
  ['3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
  ['3fff:1000::', null],
  ['5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', `5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
  ['5f01::', `5f01:: is ${RESERVED_V6}`],
  ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', `fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
  ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', `fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff is ${RESERVED_V6}`],
];

/** The IANA registries' entries (2025), each of which a row above must hold. */
const REGISTRY = {
  ipv4: [
    '0.0.0.0/8',
    '0.0.0.0/32',
    '10.0.0.0/8',
    '100.64.0.0/10',
    '127.0.0.0/8',
    '169.254.0.0/16',
    '172.16.0.0/12',
    '192.0.0.0/24',
    '192.0.0.0/29',
    '192.0.0.8/32',
    '192.0.0.9/32',
    '192.0.0.10/32',
    '192.0.0.170/32',
    '192.0.0.171/32',
    '192.0.2.0/24',
    '192.31.196.0/24',
    '192.52.193.0/24',
    '192.88.99.0/24',
    '192.88.99.2/32',
    '192.168.0.0/16',
    '192.175.48.0/24',
    '198.18.0.0/15',
    '198.51.100.0/24',
    '203.0.113.0/24',
    '240.0.0.0/4',
    '255.255.255.255/32',
  ],
  ipv6: [
    '::1/128',
    '::/128',
    '::ffff:0:0/96',
    '64:ff9b::/96',
    '64:ff9b:1::/48',
    '100::/64',
    '100:0:0:1::/64',
    '2001::/23',
    '2001::/32',
    '2001:1::1/128',
    '2001:1::2/128',
    '2001:1::3/128',
    '2001:2::/48',
    '2001:3::/32',
    '2001:4:112::/48',
    '2001:10::/28',
    '2001:20::/28',
    '2001:30::/28',
    '2001:db8::/32',
    '2002::/16',
    '2620:4f:8000::/48',
    '3fff::/20',
    '5f00::/16',
    'fc00::/7',
    'fe80::/10',
  ],
};

const refused = (rows: Row[]) =>
  rows.flatMap(([block, what, addresses]) => addresses.map((a) => [a, block, `${a} is ${what}`] as const));

describe('nonPublicReason', () => {
  test.each(PUBLIC)('%s is public', (address) => {
    expect(nonPublicReason(address)).toBeNull();
  });

  test.each(refused(IPV4))('%s (in %s) is refused', (address, _block, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });

  test.each(refused(IPV6))('%s (in %s) is refused', (address, _block, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });

  test.each(EMBEDDED)('%s is judged by the IPv4 address it carries', (address, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });

  test.each(NEIGHBOURS)('%s, just outside a block', (address, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });

  test.each(['mx.example.com', '127.1', '0127.0.0.1', '[::1]', '2130706433'])(
    '%s is not an address, and is refused',
    (text) => {
      expect(nonPublicReason(text)).toBe(`${text} is not an IP address`);
    },
  );

  test('each entry of both IANA special-purpose registries is tried', () => {
    const tried = new Set([...IPV4, ...IPV6].map(([block]) => block));
    const nested: Record<string, string> = {
      // Entries nested in a larger block, tried with the addresses of that block's row.
      '0.0.0.0/32': '0.0.0.0',
      '192.0.0.0/29': '192.0.0.7',
      '192.0.0.8/32': '192.0.0.8',
      '192.0.0.9/32': '192.0.0.9',
      '192.0.0.10/32': '192.0.0.10',
      '192.0.0.170/32': '192.0.0.170',
      '192.0.0.171/32': '192.0.0.171',
      '192.88.99.2/32': '192.88.99.2',
      '::ffff:0:0/96': '::ffff:127.0.0.1',
      '64:ff9b::/96': '64:ff9b::7f00:1',
      '2001::/32': '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      '2001:1::1/128': '2001:1::1',
      '2001:1::2/128': '2001:1::2',
      '2001:1::3/128': '2001:1::3',
      '2001:2::/48': '2001:2::1',
      '2001:3::/32': '2001:3::1',
      '2001:4:112::/48': '2001:4:112::1',
      '2001:10::/28': '2001:10::1',
      '2001:20::/28': '2001:20::1',
      '2001:30::/28': '2001:30::1',
    };
    const triedAddresses = new Set([
      ...[...IPV4, ...IPV6].flatMap(([, , addresses]) => addresses),
      ...EMBEDDED.map(([address]) => address),
    ]);
    for (const entry of [...REGISTRY.ipv4, ...REGISTRY.ipv6]) {
      const address = nested[entry];
      if (address === undefined) expect(tried, entry).toContain(entry);
      else expect(triedAddresses, entry).toContain(address);
    }
  });
});
