import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One WebSocket frame, server to client (never masked), RFC 6455 §5.2. */
function frame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x80 | opcode, n])
      : n < 65536
        ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 0xff])
        : Buffer.concat([
            Buffer.from([0x80 | opcode, 127]),
            Buffer.from(new BigUint64Array([BigInt(n)]).buffer).reverse(),
          ]);
  return Buffer.concat([head, payload]);
}

/** Takes complete client frames (always masked) off the front of `buffer`; what is left is an incomplete frame. */
function readFrames(buffer: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (buffer.length - at < 2) break;
    const opcode = (buffer[at] ?? 0) & 0x0f;
    let length = (buffer[at + 1] ?? 0) & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (buffer.length < offset + 2) break;
      length = buffer.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (buffer.length < offset + 8) break;
      length = Number(buffer.readBigUInt64BE(offset));
      offset += 8;
    }
    if (buffer.length < offset + 4 + length) break;
    const mask = buffer.subarray(offset, offset + 4);
    const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length));
    for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
    frames.push({ opcode, payload });
    at = offset + 4 + length;
  }
  return { frames, rest: buffer.subarray(at) };
}

/**
 * Slack's Socket Mode end on loopback: `apps.connections.open` (answered by the fake Web API) hands out `url`; the
 * app's client connects, gets `hello`, and from then on the test sends envelopes and reads the app's acks. A minimal
 * RFC 6455 server: text frames, ping/pong, close. As Slack does, it can ask the client to reconnect (`disconnect`
 * with a reason), and a test can cut the TCP connection without a close frame (a network drop).
 */
export class FakeSocketMode {
  readonly acks: { envelope_id: string; payload?: Record<string, unknown> }[] = [];
  /** WebSocket connections opened so far, and those the client closed with a close frame. */
  connections = 0;
  closedByClient = 0;
  private server!: Server;
  private socket: Socket | null = null;
  port = 0;

  static async start(): Promise<FakeSocketMode> {
    const fake = new FakeSocketMode();
    fake.server = createServer((_req, res) => res.writeHead(426).end());
    fake.server.on('upgrade', (req: IncomingMessage, socket: Socket) => fake.upgrade(req, socket));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/link`;
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  private upgrade(req: IncomingMessage, socket: Socket): void {
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}${GUID}`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    this.socket = socket;
    this.connections++;
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const { frames, rest } = readFrames(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const f of frames) this.receive(socket, f.opcode, f.payload);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
    });
    this.sendText({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A1' } });
  }

  private receive(socket: Socket, opcode: number, payload: Buffer): void {
    if (opcode === 0x9) socket.write(frame(0xa, payload));
    else if (opcode === 0x8) {
      this.closedByClient++;
      socket.end(frame(0x8, Buffer.alloc(0)));
    } else if (opcode === 0x1) {
      try {
        this.acks.push(JSON.parse(payload.toString('utf8')) as FakeSocketMode['acks'][number]);
      } catch {
        // not an ack
      }
    }
  }

  /** Sends one text message (an envelope, or anything else a test wants to try). */
  sendText(message: unknown): void {
    this.socket?.write(
      frame(0x1, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message))),
    );
  }

  /** Slack's `disconnect` message: the client is to open a new connection (refresh_requested, link_disabled…). */
  askToReconnect(reason = 'refresh_requested'): void {
    this.sendText({ type: 'disconnect', reason, debug_info: { host: 'fake-socket-mode' } });
  }

  /** Cuts the TCP connection with no close frame, as a network failure or a dead load balancer would. */
  drop(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  /** Resolves once `n` connections have been opened in all and one is open; fails after `ms`. */
  async waitForConnections(n: number, ms = 10000): Promise<void> {
    const start = Date.now();
    while (this.connections < n || !this.socket) {
      if (Date.now() - start > ms)
        throw new Error(`FakeSocketMode: ${this.connections} connection(s), not ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves with the app's ack of an envelope; fails after `ms`. */
  async ackOf(envelopeId: string, ms = 10000): Promise<FakeSocketMode['acks'][number]> {
    const start = Date.now();
    for (;;) {
      const ack = this.acks.find((a) => a.envelope_id === envelopeId);
      if (ack) return ack;
      if (Date.now() - start > ms) throw new Error(`FakeSocketMode: no ack of ${envelopeId} in time`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.socket?.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
