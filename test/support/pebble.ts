import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCa } from './test-ca.js';

/**
 * Debian's pebble (the ACME test server of Let's Encrypt) on loopback, started by a test: its own HTTPS listener with a
 * certificate from a test CA (the package ships none), its DNS questions sent to the test DNS server, and its
 * validation connections made to `tlsPort` (tls-alpn-01) and `httpPort` (http-01) of whatever address the test DNS
 * gives a name. Deterministic: no random validation sleep, no rejected nonces, no reused authorizations.
 */
export const PEBBLE = '/usr/bin/pebble';

export function pebbleMissing(): string | null {
  return existsSync(PEBBLE)
    ? null
    : `${PEBBLE} is missing (apt-get install pebble): the ACME tests are skipped`;
}

export interface PebbleOptions {
  /** host:port of the DNS server pebble asks. */
  dnsServer: string;
  tlsPort: number;
  httpPort?: number;
  /** Names pebble refuses to issue for (rejectedIdentifier). */
  blocklist?: string[];
  /** Seconds a certificate is valid (pebble's default: about five years). */
  validitySeconds?: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class Pebble {
  /** Trusts the test CA of pebble's own HTTPS listener (its name there is "localhost"), for the ACME client. */
  readonly agent: Agent;
  /** The root that pebble's issued chains lead to, read from its management endpoint. */
  rootPem = '';
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
    readonly managementPort: number,
    /** The test CA of pebble's own HTTPS listener (a test's front server for pebble may use it too). */
    readonly listenerCa: TestCa,
  ) {
    this.agent = new Agent({ ca: listenerCa.rootPem, servername: 'localhost', keepAlive: false });
    child.stdout?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20000);
    });
  }

  get directoryUrl(): string {
    return `https://127.0.0.1:${this.port}/dir`;
  }

  /** What pebble printed (the last 20 kB), for a failing test's message. */
  get log(): string {
    return this.output;
  }

  static async start(options: PebbleOptions): Promise<Pebble> {
    const ca = new TestCa('pebble listener Test Root');
    const issued = ca.issue({ names: ['localhost'] });
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-pebble-'));
    writeFileSync(join(dir, 'cert.pem'), issued.cert);
    writeFileSync(join(dir, 'key.pem'), issued.key);
    const [port, managementPort] = [await freePort(), await freePort()];
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: options.httpPort ?? 1,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        domainBlocklist: options.blocklist ?? [],
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    };
    writeFileSync(join(dir, 'pebble.json'), JSON.stringify(config));
    const child = spawn(PEBBLE, ['-config', join(dir, 'pebble.json'), '-dnsserver', options.dnsServer], {
      env: {
        PATH: process.env.PATH,
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
        PEBBLE_AUTHZREUSE: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pebble = new Pebble(child, dir, port, managementPort, ca);
    await pebble.ready();
    pebble.rootPem = await pebble.fetch(`https://127.0.0.1:${managementPort}/roots/0`);
    return pebble;
  }

  /** GET over pebble's HTTPS, trusting its test CA. */
  fetch(url: string): Promise<string> {
    return new Promise((resolve, reject) => {
      get(url, { agent: this.agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`)),
        );
      }).on('error', reject);
    });
  }

  /** Waits until the directory answers (pebble starts in well under a second; up to 200 tries, 50 ms apart). */
  private async ready(): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (this.child.exitCode !== null) break;
      try {
        await this.fetch(this.directoryUrl);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.child.kill();
    throw new Error(`pebble did not start:\n${this.output}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    this.agent.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
