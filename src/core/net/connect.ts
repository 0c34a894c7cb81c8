import { connect as netConnect, type Socket } from 'node:net';
import { type SecureVersion, type TLSSocket, connect as tlsConnect } from 'node:tls';

/** How a network step ended when it did not succeed. */
export interface NetError {
  kind: 'timeout' | 'refused' | 'reset' | 'unreachable' | 'tls' | 'protocol' | 'too-large' | 'aborted';
  message: string;
}

export function netError(err: unknown, what: string): NetError {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const detail = e?.message ?? String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return { kind: 'refused', message: `${what}: connection refused` };
    case 'ECONNRESET':
    case 'EPIPE':
      return { kind: 'reset', message: `${what}: connection reset by the peer` };
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EADDRNOTAVAIL':
      return { kind: 'unreachable', message: `${what}: no route to the address (${code})` };
    case 'ETIMEDOUT':
      return {
        kind: 'timeout',
        message: `${what}: ${/\d+ ms/.test(detail) ? oneLine(detail) : 'timed out'}`,
      };
    case 'ABORT_ERR':
      return { kind: 'aborted', message: `${what}: aborted` };
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /ssl|tls|alert|handshake/i.test(detail)) {
    return { kind: 'tls', message: `${what}: TLS handshake failed (${oneLine(detail)})` };
  }
  return { kind: 'protocol', message: `${what}: ${oneLine(detail)}` };
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').slice(0, 200);
}

/** Rejects with a timeout NetError-shaped error after `ms`, destroying `socket`. */
function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(Object.assign(new Error(`${what}: timed out after ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Opens a TCP connection within the timeout. */
export function tcpConnect(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Socket> {
  const socket = netConnect({ host, port, signal });
  socket.setNoDelay(true);
  const opened = new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
  return settle(opened, socket, timeoutMs, `connect to ${hostPort(host, port)}`);
}

export interface TlsOptions {
  servername: string;
  /** Trusted roots; Node's bundled roots plus NODE_EXTRA_CA_CERTS when absent. */
  ca?: string[];
  timeoutMs: number;
  /** Lowest version offered, so that a server stuck on TLS 1.0/1.1 is seen and named rather than just failing. */
  minVersion?: SecureVersion;
  ciphers?: string;
  ALPNProtocols?: string[];
}

/** Runs a TLS handshake on an open socket (or opens one), never rejecting unauthorized peers: they are judged later. */
export function tlsHandshake(
  target: { socket: Socket } | { host: string; port: number },
  options: TlsOptions,
): Promise<TLSSocket> {
  const tls = tlsConnect({
    ...('socket' in target ? { socket: target.socket } : { host: target.host, port: target.port }),
    servername: options.servername,
    ...(options.ca ? { ca: options.ca } : {}),
    rejectUnauthorized: false,
    ...(options.minVersion ? { minVersion: options.minVersion } : {}),
    ...(options.ciphers ? { ciphers: options.ciphers } : {}),
    ...(options.ALPNProtocols ? { ALPNProtocols: options.ALPNProtocols } : {}),
  });
  const done = new Promise<TLSSocket>((resolve, reject) => {
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', reject);
  });
  return settle(done, tls, options.timeoutMs, `TLS handshake with ${options.servername}`);
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Swaps the one-shot error listener for a silent one, so a late error on a socket being read or closed never crashes. */
function quiet(socket: Socket): void {
  socket.removeAllListeners('error');
  socket.on('error', () => {});
}

/** Waits for a socket step within the timeout; on failure the socket is destroyed, so no peer is left waiting. */
function settle<T>(step: Promise<T>, socket: Socket, ms: number, what: string): Promise<T> {
  return withTimeout(step, ms, () => socket.destroy(), what)
    .catch((err: unknown) => {
      socket.destroy();
      throw err;
    })
    .finally(() => quiet(socket));
}
