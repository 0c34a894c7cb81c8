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

/** An error that netError() names `aborted`: the caller's AbortSignal ended the step. */
export function abortError(what: string): Error {
  return Object.assign(new Error(`${what}: aborted`), { name: 'AbortError', code: 'ABORT_ERR' });
}

/**
 * Calls `stop` once when `signal` aborts, at once if it already has; the function returned stops listening. Without a
 * signal it does nothing.
 */
export function whenAborted(signal: AbortSignal | undefined, stop: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    stop();
    return () => {};
  }
  signal.addEventListener('abort', stop, { once: true });
  return () => signal.removeEventListener('abort', stop);
}

/** Rejects after `ms` (a timeout) or when `signal` aborts, calling `stop` first; whichever comes before `promise`. */
function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
  stop: () => void,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let unlisten = () => {};
  const cut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      stop();
      reject(Object.assign(new Error(`${what}: timed out after ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
    unlisten = whenAborted(signal, () => {
      stop();
      reject(abortError(what));
    });
  });
  return Promise.race([promise, cut]).finally(() => {
    clearTimeout(timer);
    unlisten();
  });
}

/** Opens a TCP connection within the timeout; an aborted `signal` destroys it (none is opened if it already was). */
export function tcpConnect(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Socket> {
  const what = `connect to ${hostPort(host, port)}`;
  if (signal?.aborted) return Promise.reject(abortError(what));
  const socket = netConnect({ host, port });
  socket.setNoDelay(true);
  const opened = new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
  return settle(opened, socket, timeoutMs, what, signal);
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
  /** Ends the handshake and destroys the socket when it aborts. */
  signal?: AbortSignal;
}

/**
 * Runs a TLS handshake on an open socket (or opens one), never rejecting unauthorized peers: they are judged later.
 * An aborted signal destroys the socket; none is opened if it had aborted already.
 */
export function tlsHandshake(
  target: { socket: Socket } | { host: string; port: number },
  options: TlsOptions,
): Promise<TLSSocket> {
  const what = `TLS handshake with ${options.servername}`;
  if (options.signal?.aborted) {
    if ('socket' in target) target.socket.destroy();
    return Promise.reject(abortError(what));
  }
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
  return settle(done, tls, options.timeoutMs, what, options.signal);
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Swaps the one-shot error listener for a silent one, so a late error on a socket being read or closed never crashes. */
function quiet(socket: Socket): void {
  socket.removeAllListeners('error');
  socket.on('error', () => {});
}

/**
 * Waits for a socket step within the timeout and until `signal` aborts; on failure the socket is destroyed, so no peer
 * is left waiting.
 */
function settle<T>(
  step: Promise<T>,
  socket: Socket,
  ms: number,
  what: string,
  signal: AbortSignal | undefined,
): Promise<T> {
  return withDeadline(step, ms, signal, () => socket.destroy(), what)
    .catch((err: unknown) => {
      socket.destroy();
      throw err;
    })
    .finally(() => quiet(socket));
}
