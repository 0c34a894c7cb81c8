import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { HttpLimits } from '../config.js';

export interface ServerEvents {
  /** A connection closed at once: over the cap of all connections, or of one client address. */
  onDropped?: (why: 'all' | 'address', address: string) => void;
  /** The listener reported an error after it started (e.g. EMFILE on accept); it keeps serving. */
  onError?: (err: Error) => void;
}

/**
 * The HTTP listener of both modes, with limits that hold under slow and many connections: a request's headers must
 * arrive within `headersTimeoutMs` and the whole request within `requestTimeoutMs` (checked several times a second,
 * not Node's default 30 s), an idle kept-alive connection closes after `keepAliveTimeoutMs`, headers are capped at
 * `maxHeaderBytes` (431), and connections at `maxConnections` in all and `maxConnectionsPerAddress` per client address.
 */
export function limitedServer(
  limits: HttpLimits,
  listener: RequestListener,
  events: ServerEvents = {},
): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    listener,
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string }) =>
    events.onDropped?.('all', data?.remoteAddress ?? ''),
  );
  capPerAddress(server, limits.maxConnectionsPerAddress, events);
  return server;
}

/** Closes a connection at once when its client address already holds `cap` of them. */
function capPerAddress(server: Server, cap: number, events: ServerEvents): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > cap) {
      socket.destroy();
      events.onDropped?.('address', address);
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

/** Listens on `port` (0: any free one); resolves to the port in use. Errors after that are reported, not thrown. */
export function listen(server: Server, port: number, events: ServerEvents = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.removeListener('error', reject);
      server.on('error', (err) => events.onError?.(err));
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops listening; idle connections close now, requests in progress get `graceMs` to finish. */
export function closeServer(server: Server, graceMs = 1000): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
