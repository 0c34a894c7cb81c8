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

/**
 * A ClientHello may span records, but a real client sends it in one (post-quantum key shares included); more than
 * this many records, or a record before the last one shorter than MIN_SPLIT_RECORD_BYTES, is refused: dripping a
 * hello in tiny records would otherwise hold a connection and cost work for every byte.
 */
export const MAX_HELLO_RECORDS = 4;
export const MIN_SPLIT_RECORD_BYTES = 512;
const RECORD_HEADER = 5;
const MAX_RECORD = 16384;

/** Reads the ClientHello at the start of `data` (the bytes received so far), across several records if need be. */
export function readClientHello(data: Buffer): HelloRead {
  return new ClientHelloReader().push(data);
}

/**
 * The ClientHello of one connection, read chunk by chunk as it arrives: each byte is looked at a bounded number of
 * times (a record is joined once when it is whole, the handshake once when the hello is whole), so the work is linear
 * in the bytes received however they are cut. The first verdict other than 'more' is final.
 */
export class ClientHelloReader {
  private readonly chunks: Buffer[] = [];
  /** The record being received (its bytes so far, joined lazily). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly handshake: Buffer[] = [];
  private handshakeBytes = 0;
  private records = 0;
  private verdict: HelloRead = { kind: 'more' };

  push(chunk: Buffer): HelloRead {
    if (this.verdict.kind !== 'more' || chunk.length === 0) return this.verdict;
    this.chunks.push(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.verdict = this.drain();
    return this.verdict;
  }

  /** Every byte pushed so far, in order (to hand back to the socket for the TLS handshake). */
  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Takes each whole record off `pending`, then judges the handshake bytes they carried. */
  private drain(): HelloRead {
    for (;;) {
      const first = this.pending[0];
      if (first === undefined) return { kind: 'more' };
      if (first[0] !== HANDSHAKE) return bad('not a TLS handshake record');
      if (this.pendingBytes < RECORD_HEADER) return { kind: 'more' };
      const head = this.joined();
      if (head[1] !== 3) return bad('not a TLS record version');
      const length = head.readUInt16BE(3);
      if (length === 0 || length > MAX_RECORD) return bad('a TLS record of a forbidden length');
      if (this.pendingBytes < RECORD_HEADER + length) return { kind: 'more' };
      this.handshake.push(head.subarray(RECORD_HEADER, RECORD_HEADER + length));
      this.handshakeBytes += length;
      this.records++;
      const rest = head.subarray(RECORD_HEADER + length);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      const judged = this.judge(length);
      if (judged.kind !== 'more') return judged;
    }
  }

  /** The pending bytes as one buffer (joined at most once per record header, once per whole record). */
  private joined(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0] as Buffer;
  }

  /** After a whole record of `recordLength` bytes: the hello, 'more', or why the records are refused. */
  private judge(recordLength: number): HelloRead {
    if (this.handshakeBytes > MAX_CLIENT_HELLO_BYTES + 4) return bad('the ClientHello is too large');
    const start =
      this.handshake.length === 1 ? (this.handshake[0] as Buffer) : Buffer.concat(this.handshake.slice(0, 2));
    if (start.length >= 4) {
      if (start[0] !== CLIENT_HELLO) return bad('the first handshake message is not a ClientHello');
      const length = start.readUIntBE(1, 3);
      if (length > MAX_CLIENT_HELLO_BYTES) return bad('the ClientHello is too large');
      if (this.handshakeBytes >= 4 + length) {
        const hello = Buffer.concat(this.handshake);
        return parseHello(hello.subarray(4, 4 + length));
      }
    }
    if (recordLength < MIN_SPLIT_RECORD_BYTES) return bad('a ClientHello split into small records');
    if (this.records >= MAX_HELLO_RECORDS) return bad('a ClientHello spread over too many records');
    return { kind: 'more' };
  }
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
