import type { Server as HttpServer } from 'node:http';
import { CertificateManager, type CertificateManagerOptions } from '../../src/hosting/certificates.js';
import { challengeServer, PolicyServer } from '../../src/hosting/server.js';
import type { CertificateEvent, HostedPolicies } from '../../src/hosting/types.js';
import { CertificateStore } from '../../src/store/certificates.js';
import type { Db } from '../../src/store/db.js';
import { TestDnsServer } from '../support/dns-server.js';
import { Pebble } from '../support/pebble.js';
import { LIMITS, TestPolicies, tempDatabase } from './fixtures.js';

/**
 * The serving half against pebble on loopback: the test DNS server gives every hosted name 127.0.0.1, where the policy
 * listener (pebble's tls-alpn-01 port) and the http-01 listener (its http-01 port) run; managers order through pebble.
 */
export class AcmeRig {
  readonly events: CertificateEvent[] = [];
  private readonly dbs: Db[] = [];
  private ownDns = true;

  private constructor(
    readonly dns: TestDnsServer,
    readonly pebble: Pebble,
    readonly server: PolicyServer,
    readonly port: number,
    readonly http: HttpServer,
    readonly httpPort: number,
    readonly db: Db,
    readonly store: CertificateStore,
    readonly policies: HostedPolicies,
    private readonly file: ReturnType<typeof tempDatabase>,
  ) {}

  /** `dns`: a DNS server of the test's own (a Lab's), left running at stop; else one of the rig's. */
  static async start(
    options: { blocklist?: string[]; dns?: TestDnsServer; policies?: (db: Db) => HostedPolicies } = {},
  ): Promise<AcmeRig> {
    const { dns: given, policies: makePolicies, ...pebbleOptions } = options;
    const dns = given ?? (await TestDnsServer.start());
    const file = tempDatabase();
    const db = file.open();
    const store = new CertificateStore(db);
    const policies = makePolicies ? makePolicies(db) : new TestPolicies();
    const server = new PolicyServer({ policies, certificates: store, limits: LIMITS });
    const port = await server.listen(0, '127.0.0.1');
    const http = challengeServer({ certificates: store, limits: LIMITS });
    const httpPort = await new Promise<number>((resolve) =>
      http.listen(0, '127.0.0.1', () => resolve((http.address() as { port: number }).port)),
    );
    const pebble = await Pebble.start({ dnsServer: dns.address, tlsPort: port, httpPort, ...pebbleOptions });
    const rig = new AcmeRig(dns, pebble, server, port, http, httpPort, db, store, policies, file);
    rig.ownDns = given === undefined;
    return rig;
  }

  /** Enrolls `name` (the test's HostedPolicies) and points it at the listener. */
  host(name: string, policy: string): void {
    this.testPolicies.policies.set(name, policy);
    this.dns.zone[name] = { A: ['127.0.0.1'] };
  }

  /** The test's own HostedPolicies (when the rig was not given another). */
  get testPolicies(): TestPolicies {
    if (!(this.policies instanceof TestPolicies)) throw new Error('this rig serves another HostedPolicies');
    return this.policies;
  }

  /** A manager as a replica would run it; `ownDatabase` opens a connection of its own to the same file. */
  manager(options: Partial<CertificateManagerOptions> & { ownDatabase?: boolean } = {}): CertificateManager {
    let store = this.store;
    if (options.ownDatabase) {
      const db = this.file.open();
      this.dbs.push(db);
      store = new CertificateStore(db);
    }
    return new CertificateManager({
      store,
      policies: this.policies,
      directoryUrl: this.pebble.directoryUrl,
      email: 'hostmaster@example.com',
      requestTimeoutMs: 10_000,
      challengeTypes: ['tls-alpn-01', 'http-01'],
      poll: { attempts: 20, minMs: 50, maxMs: 500 },
      httpsAgent: this.pebble.agent,
      renewBeforeDays: 30,
      retryMinMs: 3_600_000,
      retryMaxMs: 86_400_000,
      maxOrdersPerPass: 10,
      maxNewOrdersPerPass: 10,
      orderTimeoutMs: 120_000,
      onEvent: (e) => {
        this.events.push(e);
      },
      ...options,
    });
  }

  async stop(): Promise<void> {
    await this.server.close(100);
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
    await this.pebble.stop();
    if (this.ownDns) await this.dns.stop();
    for (const db of [...this.dbs, this.db]) await db.close();
    this.file.remove();
  }
}
