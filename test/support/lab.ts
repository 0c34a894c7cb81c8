import { createServer, type Server } from 'node:net';
import type { CliIo } from '../../src/cli.js';
import { loadEngineConfig } from '../../src/config.js';
import type { CheckDeps, CheckOptions } from '../../src/core/check.js';
import { defaultDeps } from '../../src/core/check.js';
import { TestDnsServer, type ZoneEntry } from './dns-server.js';
import { type Handler, servePolicy, TestHttpsServer } from './https-server.js';
import { TestSmtpServer } from './smtp-server.js';
import { type IssuedCert, type LeafOptions, TestCa } from './test-ca.js';

/** Finds a port free on every address, so that servers on several 127.x addresses can share it. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let nextNet = 0;

/** The production settings, for what a test does not set itself. */
const DEFAULTS = loadEngineConfig({});

/**
 * A small Internet on loopback: an authoritative DNS server, a test CA, HTTPS policy hosts and SMTP servers, each host
 * on its own 127.x address. All policy hosts share one port, all MX hosts another, as 443 and 25 are shared on the
 * Internet; the engine is told those ports, and trusts the test CA.
 */
export interface DomainSetup {
  mxHosts?: string[];
  mode?: 'enforce' | 'testing' | 'none';
  /** The policy text, or a handler for the policy host. */
  policy?: string | Handler;
  policyCert?: IssuedCert;
  /** Options for individual MX hosts. */
  mx?: Record<string, Parameters<Lab['mxHost']>[1]>;
}

export class Lab {
  readonly ca = new TestCa();
  readonly https: TestHttpsServer[] = [];
  readonly smtp: TestSmtpServer[] = [];
  private hostCount = 0;
  private readonly net: number;

  private constructor(
    readonly dns: TestDnsServer,
    readonly policyPort: number,
    readonly smtpPort: number,
  ) {
    // A /16 of 127.0.0.0/8 of its own for each lab in this process, away from 127.0.0.1.
    this.net = 10 + (((process.pid % 200) * 7 + nextNet++) % 240);
  }

  static async start(): Promise<Lab> {
    const [dns, policyPort, smtpPort] = await Promise.all([TestDnsServer.start(), freePort(), freePort()]);
    return new Lab(dns, policyPort, smtpPort);
  }

  /** A fresh loopback address for one host. */
  newAddress(): string {
    this.hostCount++;
    return `127.${this.net}.${Math.floor(this.hostCount / 250)}.${(this.hostCount % 250) + 1}`;
  }

  set(name: string, entry: ZoneEntry): void {
    this.dns.zone[name] = entry;
  }

  edit(name: string, change: Partial<ZoneEntry>): void {
    this.dns.zone[name] = { ...this.dns.zone[name], ...change };
  }

  cert(names: string[], options: Omit<LeafOptions, 'names'> = {}): IssuedCert {
    return this.ca.issue({ names, ...options });
  }

  /** Starts a policy host for `domain` serving `policy`, with a valid certificate unless one is given. */
  async policyHost(
    domain: string,
    policy: string | Handler,
    cert: IssuedCert = this.cert([`mta-sts.${domain}`]),
  ): Promise<TestHttpsServer> {
    const address = this.newAddress();
    const server = await TestHttpsServer.start(
      cert,
      typeof policy === 'string' ? servePolicy(policy) : policy,
      address,
      this.policyPort,
    );
    this.https.push(server);
    this.set(`mta-sts.${domain}`, { A: [address] });
    return server;
  }

  /** Starts an MX host with STARTTLS and a valid certificate unless told otherwise. */
  async mxHost(
    host: string,
    options: {
      cert?: IssuedCert;
      starttls?: boolean;
      tls?: Record<string, unknown>;
      banner?: string;
      onConnect?: () => Promise<void>;
    } = {},
  ): Promise<TestSmtpServer> {
    const address = this.newAddress();
    const server = await TestSmtpServer.start(
      {
        cert: options.cert ?? this.cert([host]),
        ...(options.starttls !== undefined ? { starttls: options.starttls } : {}),
        ...(options.banner ? { banner: options.banner } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.onConnect ? { onConnect: options.onConnect } : {}),
      },
      address,
      this.smtpPort,
    );
    this.smtp.push(server);
    this.set(host, { A: [address] });
    return server;
  }

  /**
   * Publishes a complete MTA-STS setup for `domain`, all served for real: healthy unless `setup` changes a piece.
   */
  async domain(domain: string, setup: DomainSetup = {}): Promise<{ policy: string }> {
    const mxHosts = setup.mxHosts ?? [`mx1.${domain}`, `mx2.${domain}`];
    const mode = setup.mode ?? 'enforce';
    const policy =
      typeof setup.policy === 'string'
        ? setup.policy
        : `version: STSv1\nmode: ${mode}\n${mxHosts.map((h) => `mx: ${h}\n`).join('')}max_age: 1209600\n`;
    this.set(domain, { MX: mxHosts.map((exchange, i) => ({ preference: 10 * (i + 1), exchange })) });
    this.set(`_mta-sts.${domain}`, { TXT: ['v=STSv1; id=20261129T000000'] });
    this.set(`_smtp._tls.${domain}`, { TXT: [`v=TLSRPTv1; rua=mailto:tls-reports@${domain}`] });
    await this.policyHost(
      domain,
      typeof setup.policy === 'function' ? setup.policy : policy,
      setup.policyCert,
    );
    for (const host of mxHosts) await this.mxHost(host, setup.mx?.[host] ?? {});
    return { policy };
  }

  options(overrides: Partial<CheckOptions> = {}): CheckOptions {
    return {
      timeoutMs: 3000,
      certWarnDays: 14,
      allowPrivateNetworks: true,
      smtpProbe: true,
      maxMxHosts: DEFAULTS.maxMxHosts,
      maxAddressesPerMx: DEFAULTS.maxAddressesPerMx,
      ehloName: 'checker.test',
      ca: [this.ca.rootPem],
      policyPort: this.policyPort,
      smtpPort: this.smtpPort,
      ...overrides,
    };
  }

  /** Streams and settings for running the CLI in process against this lab; `out()` and `err()` read what it wrote. */
  cliIo(env: Record<string, string> = {}): { value: CliIo; out: () => string; err: () => string } {
    const out: string[] = [];
    const err: string[] = [];
    const value: CliIo = {
      env: {
        MTASTS_DNS_SERVERS: this.dns.address,
        MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
        MTASTS_TIMEOUT_MS: '3000',
        ...env,
      },
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      engine: { ca: [this.ca.rootPem], policyPort: this.policyPort, smtpPort: this.smtpPort },
      domainConnectPort: this.policyPort,
    };
    return { value, out: () => out.join(''), err: () => err.join('') };
  }

  deps(timeoutMs = 3000): CheckDeps {
    return defaultDeps({ dnsServers: [this.dns.address], timeoutMs });
  }

  async stop(): Promise<void> {
    await Promise.all([
      ...this.https.map((s) => s.stop()),
      ...this.smtp.map((s) => s.stop()),
      this.dns.stop(),
    ]);
  }
}

/** A meeting point for `parties` callers: each call's promise resolves once all have arrived. */
export function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    arrived++;
    if (arrived >= parties) open();
    return opened;
  };
}

/** A TCP listener that counts the connections it accepts and closes each at once: proof that nothing connected. */
export class CountingListener {
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly address: string,
    readonly port: number,
  ) {}

  static async start(address: string, port: number): Promise<CountingListener> {
    const server = createServer();
    const listener = new CountingListener(server, address, port);
    server.on('connection', (socket) => {
      listener.connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    return listener;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
