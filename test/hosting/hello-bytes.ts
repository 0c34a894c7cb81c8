import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { connect } from 'node:tls';

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);

/** A ClientHello built by hand (TLS 1.2 layout), so that a test can send what no TLS library would. */
export function clientHello(options: { sni?: string; alpn?: string[]; recordSize?: number }): Buffer {
  const extensions: Buffer[] = [];
  if (options.sni !== undefined) {
    const name = Buffer.from(options.sni, 'latin1');
    const list = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    extensions.push(u16(0), u16(list.length + 2), u16(list.length), list);
  }
  if (options.alpn) {
    const list = Buffer.concat(
      options.alpn.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    );
    extensions.push(u16(16), u16(list.length + 2), u16(list.length), list);
  }
  const ext = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    randomBytes(32),
    Buffer.from([0]),
    u16(2),
    Buffer.from([0xc0, 0x2b]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  const handshake = Buffer.concat([Buffer.from([1]), u24(body.length), body]);
  const size = options.recordSize ?? 16384;
  const records: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    const part = handshake.subarray(at, at + size);
    records.push(Buffer.from([0x16, 3, 1]), u16(part.length), part);
  }
  return Buffer.concat(records);
}

/** The ClientHello Node's own TLS client sends for `servername` and `alpn`, captured by a plain TCP server. */
export async function realClientHello(servername: string, alpn?: string[]): Promise<Buffer> {
  let done: (b: Buffer) => void = () => {};
  const captured = new Promise<Buffer>((r) => {
    done = r;
  });
  const server = createServer((s) => {
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // One whole record (Node sends its ClientHello in one).
      if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) done(got);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const socket = connect({ host: '127.0.0.1', port, servername, ...(alpn ? { ALPNProtocols: alpn } : {}) });
  socket.on('error', () => {});
  const hello = await captured;
  socket.destroy();
  server.close();
  return hello;
}
