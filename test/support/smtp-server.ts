import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { IssuedCert } from './test-ca.js';

/** A real SMTP server (nodemailer's smtp-server) on loopback, with or without STARTTLS. */
export class TestSmtpServer {
  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async start(
    options: {
      cert?: IssuedCert;
      starttls?: boolean;
      banner?: string;
      tls?: Partial<SMTPServerOptions>;
      /** Runs before the greeting is sent; the greeting waits for it. */
      onConnect?: () => Promise<void>;
    },
    host = '127.0.0.1',
    port = 0,
  ): Promise<TestSmtpServer> {
    const server = new SMTPServer({
      name: 'mx.test',
      banner: options.banner ?? 'test MX ready',
      secure: false,
      hideSTARTTLS: options.starttls === false,
      authOptional: true,
      disabledCommands: ['AUTH'],
      logger: false,
      closeTimeout: 200,
      disableReverseLookup: true,
      ...(options.cert ? { key: options.cert.key, cert: options.cert.cert } : {}),
      ...options.tls,
      onConnect(_session, callback) {
        Promise.resolve(options.onConnect?.()).then(() => callback());
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback());
      },
    });
    server.on('error', () => {});
    await new Promise<void>((resolve) => server.listen(port, host, () => resolve()));
    return new TestSmtpServer(server, (server.server.address() as AddressInfo).port);
  }

  setCertificate(cert: IssuedCert): void {
    this.server.updateSecureContext({ key: cert.key, cert: cert.cert });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
