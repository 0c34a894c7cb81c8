import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { clientKey } from '../core/net/client-key.js';
import type { CertificateStore, StoredCertificate } from '../store/certificates.js';
import { ClientHelloReader } from './client-hello.js';
import {
  CLOSE_GRACE_MS,
  endThenDestroy,
  type Http1Limits,
  plain,
  type Request,
  type Response,
  serveHttp1,
} from './http1.js';
import type { HostedPolicies } from './types.js';

/**
 * The hosted policy listener (RFC 8461 §3.3): TLS on one public port, the certificate chosen per connection from the
 * server name in the ClientHello. An enrolled name with a certificate gets its policy at /.well-known/mta-sts.txt;
 * a ClientHello offering `acme-tls/1` for a name with a pending tls-alpn-01 challenge gets the challenge certificate
 * (RFC 8737) and nothing more; anything else (no name, an IP literal, an unknown name, bytes that are not TLS) is
 * refused before a certificate is shown. Stateless apart from the store: each handshake reads the current
 * certificate, each request the current policy, so a renewed certificate or a changed policy is used at once and any
 * replica answers the same.
 */
export interface PolicyServerLimits extends Http1Limits {
  /** From the connection to the end of the TLS handshake (the ClientHello included). */
  handshakeTimeoutMs: number;
  /** A connection is destroyed this long after it was accepted, whatever it is doing. */
  maxConnectionMs: number;
  /** A connection with no byte read or written for this long is destroyed (a handler that hangs included). */
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

export type Refusal = 'not-tls' | 'no-name' | 'unknown-name' | 'no-challenge' | 'handshake-timeout' | 'error';

export interface PolicyServerEvents {
  /** A connection closed at once: over the cap of all connections, or of one client address. */
  onDropped?: (why: 'all' | 'address') => void;
  /** A connection refused before or during the handshake. */
  onRefused?: (why: Refusal) => void;
  /** A tls-alpn-01 validation connection answered for `name`. */
  onChallenge?: (name: string) => void;
  /** An HTTP answer sent (its status). */
  onRequest?: (status: number) => void;
  /** The listener reported an error after it started (e.g. EMFILE on accept); it keeps serving. */
  onError?: (err: Error) => void;
}

export interface PolicyServerOptions {
  policies: HostedPolicies;
  certificates: Pick<CertificateStore, 'certificate' | 'alpnChallenge'>;
  limits: PolicyServerLimits;
  events?: PolicyServerEvents;
  now?: () => Date;
}

export const POLICY_PATH = '/.well-known/mta-sts.txt';
const ACME_TLS = 'acme-tls/1';
/** Secure contexts kept, by certificate fingerprint (one per hosted name is enough; more only costs memory). */
const CONTEXT_CACHE = 4096;
/** TLS alert, fatal, unrecognized_name (RFC 6066 §3): the refusal of a name not served here. */
const UNRECOGNIZED_NAME = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

export class PolicyServer {
  private readonly server: Server;
  private readonly contexts = new Map<string, SecureContext>();
  private readonly sockets = new Set<Socket>();
  private readonly events: PolicyServerEvents;
  private readonly now: () => Date;

  constructor(private readonly options: PolicyServerOptions) {
    this.events = options.events ?? {};
    this.now = options.now ?? (() => new Date());
    this.server = createServer({ pauseOnConnect: false }, (socket) => this.accept(socket));
    this.server.maxConnections = options.limits.maxConnections;
    this.server.on('drop', () => this.events.onDropped?.('all'));
  }

  /** Listens on `host:port` (port 0: any free one); resolves to the port in use. */
  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.removeListener('error', reject);
        this.server.on('error', (err) => this.events.onError?.(err));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening; open connections get `graceMs` to finish their request, then are closed. */
  close(graceMs = 1000): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, graceMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private readonly perAddress = new Map<string, number>();

  /** Counts the connection against its address's cap, then reads its ClientHello. */
  private accept(socket: Socket): void {
    // An IPv6 client counts by its /64 (one host is given a whole /64), an IPv4 one (mapped or not) by its address.
    const address = clientKey(socket.remoteAddress);
    const n = (this.perAddress.get(address) ?? 0) + 1;
    if (n > this.options.limits.maxConnectionsPerAddress) {
      socket.destroy();
      this.events.onDropped?.('address');
      return;
    }
    this.perAddress.set(address, n);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    socket.on('error', () => socket.destroy());
    const { handshakeTimeoutMs, maxConnectionMs, idleTimeoutMs } = this.options.limits;
    const deadline = setTimeout(() => this.refuse(socket, 'handshake-timeout'), handshakeTimeoutMs);
    const lifetime = setTimeout(() => socket.destroy(), maxConnectionMs);
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.once('close', () => {
      clearTimeout(deadline);
      clearTimeout(lifetime);
    });
    this.readHello(socket, deadline);
  }

  private readHello(socket: Socket, deadline: NodeJS.Timeout): void {
    const reader = new ClientHelloReader();
    const onData = (chunk: Buffer) => {
      const hello = reader.push(chunk);
      if (hello.kind === 'more') return;
      socket.removeListener('data', onData);
      socket.pause();
      if (hello.kind === 'bad') return this.refuse(socket, 'not-tls');
      if (hello.serverName === null) return this.refuse(socket, 'no-name', true);
      socket.unshift(reader.received());
      this.choose(socket, hello.serverName, hello.alpn.includes(ACME_TLS), deadline).catch(() =>
        this.refuse(socket, 'error'),
      );
    };
    socket.on('data', onData);
  }

  /** The certificate for this connection: the challenge's, the name's own, or none (refused). */
  private async choose(socket: Socket, name: string, acme: boolean, deadline: NodeJS.Timeout): Promise<void> {
    if (acme) {
      const challenge = await this.options.certificates.alpnChallenge(name, this.now());
      if (!challenge?.alpnCertPem || !challenge.alpnKeyPem) return this.refuse(socket, 'no-challenge', true);
      if (socket.destroyed) return;
      const context = createSecureContext({ key: challenge.alpnKeyPem, cert: challenge.alpnCertPem });
      const tls = this.handshake(socket, context, [ACME_TLS], deadline);
      tls.once('secure', () => {
        this.events.onChallenge?.(name);
        endThenDestroy(tls);
      });
      return;
    }
    const [policy, certificate] = await Promise.all([
      this.options.policies.policyFor(name),
      this.options.certificates.certificate(name),
    ]);
    if (policy === undefined || certificate === undefined) return this.refuse(socket, 'unknown-name', true);
    if (socket.destroyed) return;
    const tls = this.handshake(socket, this.context(certificate), ['http/1.1'], deadline);
    tls.once('secure', () => serveHttp1(tls, this.options.limits, (r) => this.respond(name, r)));
  }

  private handshake(
    socket: Socket,
    context: SecureContext,
    alpn: string[],
    deadline: NodeJS.Timeout,
  ): TLSSocket {
    const tls = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: alpn });
    tls.on('error', () => {
      this.events.onRefused?.('error');
      socket.destroy();
    });
    // Once TLS owns the connection, the raw socket no longer sees its traffic: the idle timer moves to the TLS socket.
    socket.setTimeout(0);
    tls.setTimeout(this.options.limits.idleTimeoutMs, () => tls.destroy());
    tls.once('secure', () => clearTimeout(deadline));
    socket.resume();
    return tls;
  }

  private context(certificate: StoredCertificate): SecureContext {
    const cached = this.contexts.get(certificate.fingerprint);
    if (cached) return cached;
    const context = createSecureContext({ key: certificate.keyPem, cert: certificate.certPem });
    if (this.contexts.size >= CONTEXT_CACHE) {
      const oldest = this.contexts.keys().next().value;
      if (oldest !== undefined) this.contexts.delete(oldest);
    }
    this.contexts.set(certificate.fingerprint, context);
    return context;
  }

  private refuse(socket: Socket, why: Refusal, alert = false): void {
    this.events.onRefused?.(why);
    if (socket.destroyed) return;
    if (alert) socket.end(UNRECOGNIZED_NAME);
    else socket.destroy();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** The answer to one request on a connection whose TLS name is `name`. */
  private async respond(name: string, request: Request): Promise<Response> {
    const response = await this.answer(name, request);
    this.events.onRequest?.(response.status);
    return response;
  }

  private async answer(name: string, request: Request): Promise<Response> {
    const host = (request.headers.get('host') ?? name)
      .toLowerCase()
      .replace(/:\d{1,5}$/, '')
      .replace(/\.$/, '');
    if (host !== name) return plain(421, 'misdirected request\n');
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return plain(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    if (request.target !== POLICY_PATH) return plain(404, 'not found\n');
    const policy = await this.options.policies.policyFor(name);
    if (policy === undefined) return plain(404, 'not found\n');
    return plain(200, policy, { 'Cache-Control': 'no-store' });
  }
}

export interface ChallengeServerOptions {
  certificates: Pick<CertificateStore, 'httpChallenge'>;
  limits: Pick<
    PolicyServerLimits,
    'headersTimeoutMs' | 'keepAliveTimeoutMs' | 'maxHeaderBytes' | 'maxConnections'
  >;
  now?: () => Date;
  onRequest?: (status: number) => void;
}

const TOKEN = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})$/;

/**
 * The http-01 listener (MTASTS_HOSTING_HTTP_LISTEN, plain HTTP): GET /.well-known/acme-challenge/<token> answers the
 * key authorization of a pending challenge from the store; everything else is 404 with a fixed body.
 */
export function challengeServer(options: ChallengeServerOptions): HttpServer {
  const { limits } = options;
  const now = options.now ?? (() => new Date());
  const server = createHttpServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (req, res) => {
      const send = (status: number, body: string) => {
        options.onRequest?.(status);
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      const token = TOKEN.exec(req.url ?? '')?.[1];
      if ((req.method !== 'GET' && req.method !== 'HEAD') || !token) return send(404, 'not found\n');
      options.certificates.httpChallenge(token, now()).then(
        (c) => (c ? send(200, c.keyAuthorization) : send(404, 'not found\n')),
        () => send(503, 'try again later\n'),
      );
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  return server;
}
