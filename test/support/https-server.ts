import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { IssuedCert } from './test-ca.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTPS server on loopback whose certificate and answers a test can change between requests. */
export class TestHttpsServer {
  handler: Handler;
  readonly requests: {
    host: string | undefined;
    path: string | undefined;
    servername: string | undefined;
  }[] = [];
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(handler: Handler) {
    this.handler = handler;
  }

  static async start(
    cert: IssuedCert,
    handler: Handler,
    host = '127.0.0.1',
    port = 0,
  ): Promise<TestHttpsServer> {
    const s = new TestHttpsServer(handler);
    s.server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      const servername = (req.socket as unknown as { servername?: string }).servername;
      s.requests.push({ host: req.headers.host, path: req.url, servername });
      s.handler(req, res);
    });
    s.server.on('connection', (socket: Socket) => {
      s.sockets.add(socket);
      socket.on('close', () => s.sockets.delete(socket));
    });
    s.server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => s.server.listen(port, host, resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  setCertificate(cert: IssuedCert): void {
    this.server.setSecureContext({ cert: cert.cert, key: cert.key });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Serves a policy as a correct policy host does. */
export function servePolicy(text: string, contentType = 'text/plain; charset=utf-8'): Handler {
  return (req, res) => {
    if (req.url !== '/.well-known/mta-sts.txt') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': contentType }).end(text);
  };
}
