import type { Duplex } from 'node:stream';

/**
 * A deliberately small HTTP/1.1 server for one connection of the policy listener: requests without a body only
 * (GET and HEAD are what it serves; any other method is answered and the connection closed, since its body is never
 * read), strict request and header lines, keep-alive with a request cap, and the limits of a public server:
 * header bytes (431), the time from a request's first byte to its last header line (408), and the idle time between
 * requests. Nothing from the request is ever written back.
 */
export interface Http1Limits {
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  maxRequestsPerConnection: number;
}

export interface Request {
  method: string;
  target: string;
  /** Lower-case header names; a repeated header keeps its first value (Host and Content-Length may not repeat). */
  headers: Map<string, string>;
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Handler = (request: Request) => Promise<Response>;

/** After the server has ended its side, the time a client gets to end its own before the connection is destroyed. */
export const CLOSE_GRACE_MS = 1000;

/** Ends the server's side of `socket`, and destroys it after CLOSE_GRACE_MS whatever the client does. */
export function endThenDestroy(socket: Duplex): void {
  socket.end();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  421: 'Misdirected Request',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** A fixed answer: status, a short body, the connection closed after it when `close`. */
export function plain(status: number, body: string, extra: Record<string, string> = {}): Response {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...extra }, body };
}

const REQUEST_LINE = /^([A-Z]{1,16}) ([\x21-\x7e]{1,2048}) HTTP\/1\.([01])$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}):[ \t]*([\x20-\x7e\t]*?)[ \t]*$/;

/** Headers that may appear once only. */
const SINGLE = new Set(['content-length', 'host', 'transfer-encoding']);

type Parsed = { request: Request; keepAlive: boolean } | { error: Response };

/** Parses a request head (without its final blank line). */
export function parseHead(head: string): Parsed {
  const lines = head.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0] ?? '');
  if (!m?.[1] || !m[2]) return { error: plain(400, 'bad request\n') };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const h = HEADER_LINE.exec(line);
    if (!h?.[1]) return { error: plain(400, 'bad request\n') };
    const name = h[1].toLowerCase();
    // Two Content-Lengths or two Hosts are how requests are smuggled past a proxy: refused, whatever the values.
    if (headers.has(name) && SINGLE.has(name)) return { error: plain(400, 'bad request\n') };
    if (!headers.has(name)) headers.set(name, h[2] ?? '');
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
  if (m[3] === '1' && !headers.has('host')) return { error: plain(400, 'bad request\n') };
  const length = headers.get('content-length');
  const hasBody = headers.has('transfer-encoding') || (length !== undefined && length !== '0');
  if (hasBody && (m[1] === 'GET' || m[1] === 'HEAD')) return { error: plain(400, 'bad request\n') };
  const connection = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = m[3] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
  return { request: { method: m[1], target: m[2], headers }, keepAlive };
}

function serialize(response: Response, method: string, close: boolean): Buffer {
  const body = Buffer.from(response.body, 'utf8');
  const lines = [
    `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? 'Error'}`,
    `Date: ${new Date().toUTCString()}`,
    ...Object.entries(response.headers).map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${body.length}`,
    'X-Content-Type-Options: nosniff',
    `Connection: ${close ? 'close' : 'keep-alive'}`,
  ];
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return method === 'HEAD' ? head : Buffer.concat([head, body]);
}

/** Serves requests on `socket` until the client leaves, a limit is hit, or an answer closes the connection. */
export function serveHttp1(socket: Duplex, limits: Http1Limits, handler: Handler): void {
  new Connection(socket, limits, handler).start();
}

class Connection {
  private buffer = Buffer.alloc(0);
  private busy = false;
  private closed = false;
  private served = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly limits: Http1Limits,
    private readonly handler: Handler,
  ) {}

  start(): void {
    this.socket.on('error', () => this.socket.destroy());
    this.socket.on('close', () => clearTimeout(this.timer));
    this.socket.on('data', (chunk: Buffer) => this.received(chunk));
    this.waitIdle();
  }

  private waitIdle(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.socket.destroy(), this.limits.keepAliveTimeoutMs);
  }

  private received(chunk: Buffer): void {
    const first = this.buffer.length === 0 && !this.busy;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (first) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.fail(plain(408, 'request timeout\n')), this.limits.headersTimeoutMs);
    }
    // Pipelined requests wait while one is answered, but no more of them than one head's worth of bytes.
    if (this.busy && this.buffer.length > this.limits.maxHeaderBytes)
      this.fail(plain(431, 'request header too large\n'));
    else this.next();
  }

  /** Handles the next complete request head in the buffer, if any and if none is in progress. */
  private next(): void {
    if (this.busy || this.closed || this.socket.destroyed) return;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buffer.length > this.limits.maxHeaderBytes)
        this.fail(plain(431, 'request header too large\n'));
      return;
    }
    if (end + 4 > this.limits.maxHeaderBytes) {
      this.fail(plain(431, 'request header too large\n'));
      return;
    }
    const head = this.buffer.subarray(0, end).toString('latin1');
    this.buffer = this.buffer.subarray(end + 4);
    clearTimeout(this.timer);
    const parsed = parseHead(head);
    if ('error' in parsed) this.fail(parsed.error);
    else {
      this.busy = true;
      void this.answer(parsed.request, parsed.keepAlive);
    }
  }

  private async answer(request: Request, keepAlive: boolean): Promise<void> {
    let response: Response;
    try {
      response = await this.handler(request);
    } catch {
      response = plain(503, 'try again later\n', { 'Retry-After': '60' });
    }
    this.served++;
    const bodyFollows = request.method !== 'GET' && request.method !== 'HEAD';
    const close =
      !keepAlive ||
      bodyFollows ||
      response.status >= 500 ||
      this.served >= this.limits.maxRequestsPerConnection;
    this.busy = false;
    if (this.socket.destroyed || this.closed) return;
    this.socket.write(serialize(response, request.method, close));
    if (close) return endThenDestroy(this.socket);
    if (this.buffer.length > 0) {
      this.timer = setTimeout(() => this.fail(plain(408, 'request timeout\n')), this.limits.headersTimeoutMs);
      this.next();
    } else this.waitIdle();
  }

  /** Answers a broken or over-limit request and closes the connection. */
  private fail(response: Response): void {
    clearTimeout(this.timer);
    if (this.socket.destroyed || this.closed) return;
    this.closed = true;
    this.socket.write(serialize(response, 'GET', true));
    this.socket.removeAllListeners('data');
    endThenDestroy(this.socket);
  }
}
