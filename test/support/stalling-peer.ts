import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import type { IssuedCert } from './test-ca.js';

/**
 * Where a peer stops answering: `accept` takes the TCP connection, reads and says nothing (an SMTP server that never
 * greets, an HTTPS host that never answers the ClientHello); `starttls` greets, answers EHLO with STARTTLS and STARTTLS with
 * 220, then never answers the ClientHello.
 */
export type Stall = 'accept' | 'starttls';

/**
 * A TCP peer on loopback that stops answering at a chosen point and counts its connections: how many it accepted, how
 * many are still open (a client that gave up properly closed them).
 */
export class StallingPeer {
  accepted = 0;
  /** Connections that reached the stall point (for `starttls`: the client's ClientHello arrived). */
  stalls = 0;
  private readonly sockets = new Set<Socket>();
  private readonly waiters: (() => void)[] = [];
  private readonly stallWaiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly address: string,
    readonly port: number,
  ) {}

  static async start(stall: Stall, address: string, port: number): Promise<StallingPeer> {
    const server = createServer();
    const peer = new StallingPeer(server, address, port);
    server.on('connection', (socket) => {
      peer.track(socket);
      if (stall === 'starttls') smtpUntilStarttls(socket, () => peer.stalled());
      else {
        socket.resume(); // reads and drops what comes, so that the client's close is seen
        peer.stalled();
      }
    });
    await listen(server, address, port);
    return peer;
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Resolves once a connection has reached the stall point. */
  reached(): Promise<void> {
    return this.stalls > 0 ? Promise.resolve() : new Promise((resolve) => this.stallWaiters.push(resolve));
  }

  /** Resolves once every connection it accepted has been closed. */
  idle(): Promise<void> {
    return this.sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  private stalled(): void {
    this.stalls++;
    for (const resolve of this.stallWaiters.splice(0)) resolve();
  }

  private track(socket: Socket): void {
    this.accepted++;
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) for (const resolve of this.waiters.splice(0)) resolve();
    });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Greets, offers STARTTLS, says 220 to it, then reads on and never answers: the TLS handshake stalls. */
function smtpUntilStarttls(socket: Socket, onClientHello: () => void): void {
  socket.write('220 stall.test ESMTP\r\n');
  let buffer = '';
  let started = false;
  let hello = false;
  socket.on('data', (chunk: Buffer) => {
    if (started) {
      if (!hello) onClientHello();
      hello = true;
      return;
    }
    buffer += chunk.toString('latin1');
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      const command = buffer.slice(0, end).trim().toUpperCase();
      buffer = buffer.slice(end + 1);
      if (command.startsWith('EHLO')) socket.write('250-stall.test\r\n250 STARTTLS\r\n');
      else if (command === 'STARTTLS') {
        started = true;
        socket.write('220 go ahead\r\n');
        return;
      } else socket.write('500 not here\r\n');
    }
  });
}

/**
 * An HTTPS host that completes the TLS handshake, reads the request and never answers it; it counts requests and the
 * connections still open.
 */
export class SilentHttpsPeer {
  requests = 0;
  private readonly sockets = new Set<Socket>();
  private readonly waiters: (() => void)[] = [];
  private readonly seen: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async start(cert: IssuedCert, address: string, port: number): Promise<SilentHttpsPeer> {
    const server = createHttpsServer({ cert: cert.cert, key: cert.key }, () => {
      peer.requests++;
      for (const resolve of peer.seen.splice(0)) resolve();
    });
    const peer = new SilentHttpsPeer(server, address);
    server.on('connection', (socket: Socket) => {
      peer.sockets.add(socket);
      socket.on('close', () => {
        peer.sockets.delete(socket);
        if (peer.sockets.size === 0) for (const resolve of peer.waiters.splice(0)) resolve();
      });
    });
    server.on('tlsClientError', () => {});
    await listen(server, address, port);
    return peer;
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Resolves once a request has arrived (it will not be answered). */
  requested(): Promise<void> {
    return this.requests > 0 ? Promise.resolve() : new Promise((resolve) => this.seen.push(resolve));
  }

  idle(): Promise<void> {
    return this.sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function listen(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
}
