import { isIP } from 'node:net';

/**
 * The first flight of a TLS connection, read before any TLS state exists: the policy listener chooses the certificate
 * (the policy host's, or a tls-alpn-01 challenge's, RFC 8737) from the server name AND the ALPN protocols offered,
 * which Node's SNICallback alone cannot see. A pure parser: bytes in, a verdict out, never a throw.
 */
export type HelloRead =
  | { kind: 'more' }
  | { kind: 'bad'; reason: string }
  | { kind: 'hello'; serverName: string | null; alpn: string[] };

/** A ClientHello larger than this is refused (real ones, post-quantum key shares included, are under 4 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 16384;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/** Reads the ClientHello at the start of `data` (the bytes received so far), across several records if need be. */
export function readClientHello(data: Buffer): HelloRead {
  const body = handshakeBytes(data);
  if (body.kind !== 'bytes') return body;
  const hello = body.bytes;
  if (hello.length < 4) return { kind: 'more' };
  if (hello[0] !== CLIENT_HELLO)
    return { kind: 'bad', reason: 'the first handshake message is not a ClientHello' };
  const length = hello.readUIntBE(1, 3);
  if (length > MAX_CLIENT_HELLO_BYTES) return { kind: 'bad', reason: 'the ClientHello is too large' };
  if (hello.length < 4 + length) return { kind: 'more' };
  return parseHello(hello.subarray(4, 4 + length));
}

/** The handshake bytes carried by the leading TLS records of `data`, or why they are not TLS. */
function handshakeBytes(
  data: Buffer,
): { kind: 'bytes'; bytes: Buffer } | { kind: 'more' } | { kind: 'bad'; reason: string } {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    if (data[at] !== HANDSHAKE) return { kind: 'bad', reason: 'not a TLS handshake record' };
    if (data.length < at + 5) break;
    if (data[at + 1] !== 3) return { kind: 'bad', reason: 'not a TLS record version' };
    const length = data.readUInt16BE(at + 3);
    if (length === 0 || length > 16384) return { kind: 'bad', reason: 'a TLS record of a forbidden length' };
    if (data.length < at + 5 + length) break;
    parts.push(data.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  const bytes = Buffer.concat(parts);
  if (bytes.length > MAX_CLIENT_HELLO_BYTES + 4)
    return { kind: 'bad', reason: 'the ClientHello is too large' };
  if (bytes.length === 0) return data.length > MAX_CLIENT_HELLO_BYTES ? bad('too large') : { kind: 'more' };
  return { kind: 'bytes', bytes };
}

const bad = (reason: string) => ({ kind: 'bad' as const, reason });

/** A cursor over the ClientHello; each read returns null past the end. */
class Reader {
  at = 0;
  constructor(private readonly b: Buffer) {}
  get left(): number {
    return this.b.length - this.at;
  }
  u8(): number | null {
    return this.left >= 1 ? (this.b[this.at++] as number) : null;
  }
  u16(): number | null {
    if (this.left < 2) return null;
    const v = this.b.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  bytes(n: number | null): Buffer | null {
    if (n === null || this.left < n) return null;
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}

function parseHello(hello: Buffer): HelloRead {
  const r = new Reader(hello);
  if (r.bytes(2 + 32) === null) return bad('a truncated ClientHello');
  const session = r.bytes(r.u8());
  const suites = r.bytes(r.u16());
  const compression = r.bytes(r.u8());
  if (session === null || suites === null || compression === null) return bad('a truncated ClientHello');
  if (r.left === 0) return { kind: 'hello', serverName: null, alpn: [] };
  const extensions = r.bytes(r.u16());
  if (extensions === null || r.left !== 0) return bad('a malformed extensions block');
  return parseExtensions(new Reader(extensions));
}

function parseExtensions(r: Reader): HelloRead {
  const seen = new Set<number>();
  let serverName: string | null = null;
  let alpn: string[] = [];
  while (r.left > 0) {
    const type = r.u16();
    const data = r.bytes(r.u16());
    if (type === null || data === null) return bad('a truncated extension');
    if (seen.has(type)) return bad('an extension sent twice');
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = parseServerName(new Reader(data));
      if (typeof name !== 'string' && name !== null) return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const protocols = parseAlpn(new Reader(data));
      if (!Array.isArray(protocols)) return protocols;
      alpn = protocols;
    }
  }
  return { kind: 'hello', serverName, alpn };
}

/** RFC 6066 §3: one host_name, a DNS name (an IP literal is not allowed there and is refused like a missing one). */
function parseServerName(r: Reader): string | null | { kind: 'bad'; reason: string } {
  const list = r.bytes(r.u16());
  if (list === null || r.left !== 0) return bad('a malformed server_name extension');
  const entries = new Reader(list);
  const type = entries.u8();
  const name = entries.bytes(entries.u16());
  if (type !== 0 || name === null || entries.left !== 0) return bad('a malformed server_name extension');
  return hostName(name);
}

function hostName(raw: Buffer): string | { kind: 'bad'; reason: string } {
  if (raw.length === 0 || raw.length > 254) return bad('a server name of a forbidden length');
  const name = raw.toString('latin1').toLowerCase().replace(/\.$/, '');
  if (isIP(name) !== 0) return bad('an IP address as the server name');
  const labels = name.split('.');
  const ok =
    name.length <= 253 &&
    labels.length >= 2 &&
    labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
  return ok ? name : bad('a server name that is not a host name');
}

function parseAlpn(r: Reader): string[] | { kind: 'bad'; reason: string } {
  const list = r.bytes(r.u16());
  if (list === null || r.left !== 0 || list.length === 0) return bad('a malformed ALPN extension');
  const entries = new Reader(list);
  const protocols: string[] = [];
  while (entries.left > 0) {
    const p = entries.bytes(entries.u8());
    if (p === null || p.length === 0) return bad('a malformed ALPN extension');
    protocols.push(p.toString('latin1'));
  }
  return protocols;
}
