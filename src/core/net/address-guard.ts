import { BlockList, isIP } from 'node:net';

/**
 * Addresses that are not public unicast Internet addresses (IANA special-purpose registries, RFC 6890 and updates).
 * Senders on the Internet cannot reach them, and a bot that connects to them can be used to probe internal networks.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::ffff:0:0', 96], // IPv4-mapped: judged by the IPv4 address below
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, benchmarking)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['3fff::', 20], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** Why an address must not be connected to, or null when it is a public unicast address. */
export function nonPublicReason(address: string): string | null {
  const family = isIP(address);
  if (family === 0) return 'it is not an IP address';
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return nonPublicReason(mapped[1]);
    return blocked.check(address, 'ipv6') ? describe(address) : null;
  }
  return blocked.check(address, 'ipv4') ? describe(address) : null;
}

function describe(address: string): string {
  if (/^127\.|^::1$/.test(address)) return `${address} is a loopback address`;
  if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)|^f[cd]/i.test(address))
    return `${address} is a private address`;
  if (/^169\.254\.|^fe[89ab]/i.test(address)) return `${address} is a link-local address`;
  if (/^(22[4-9]|23\d)\.|^ff/i.test(address)) return `${address} is a multicast address`;
  return `${address} is a reserved, non-public address`;
}
