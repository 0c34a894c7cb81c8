import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import type { PolicyServerLimits } from '../../src/hosting/server.js';
import type { HostedPolicies } from '../../src/hosting/types.js';
import type { CertificateStore } from '../../src/store/certificates.js';
import { type Db, openDatabase } from '../../src/store/db.js';
import type { IssuedCert } from '../support/test-ca.js';

/** The hosting state as the serving half sees it, held in a Map the test edits (engineer C's store stands in later). */
export class TestPolicies implements HostedPolicies {
  readonly policies = new Map<string, string>();
  /** Calls of policyFor, for assertions. */
  asked = 0;

  async policyFor(name: string): Promise<string | undefined> {
    this.asked++;
    return this.policies.get(name);
  }

  async namesNeedingCertificates(): Promise<string[]> {
    return [...this.policies.keys()];
  }
}

export const policyText = (mx: string) => `version: STSv1\nmode: enforce\nmx: ${mx}\nmax_age: 86400\n`;

/** A database file of its own (two "replicas" open it twice). */
export function tempDatabase(): { path: string; open: () => Db; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-hosting-'));
  const path = join(dir, 'db.sqlite');
  return {
    path,
    open: () => openDatabase(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const LIMITS: PolicyServerLimits = {
  handshakeTimeoutMs: 2000,
  headersTimeoutMs: 1000,
  keepAliveTimeoutMs: 2000,
  maxHeaderBytes: 4096,
  maxRequestsPerConnection: 100,
  maxConnections: 100,
  maxConnectionsPerAddress: 32,
  maxConnectionMs: 60_000,
  idleTimeoutMs: 10_000,
};

/** Stores a test-CA certificate for `name` as the manager would store an ACME one. */
export async function storeCertificate(
  store: CertificateStore,
  name: string,
  issued: IssuedCert,
): Promise<string> {
  const leaf = new X509Certificate(issued.cert);
  await store.putCertificate({
    name,
    keyPem: issued.key,
    certPem: issued.cert,
    fingerprint: leaf.fingerprint256,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    issuedAt: new Date().toISOString(),
  });
  return leaf.fingerprint256;
}

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  fingerprint: string;
}

/** One HTTPS request to the listener on 127.0.0.1 with `name` as SNI and Host, trusting `ca`. */
export function fetchPolicy(
  port: number,
  name: string,
  ca: string[],
  options: { method?: string; path?: string; host?: string } = {},
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: name,
        ca,
        method: options.method ?? 'GET',
        path: options.path ?? '/.well-known/mta-sts.txt',
        headers: { host: options.host ?? name },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (
          res.socket as unknown as { getPeerCertificate(): PeerCertificate }
        ).getPeerCertificate();
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            fingerprint: peer.fingerprint256,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A TLS handshake with `servername` (none when null): resolves to 'ok', or the error that ended it. */
export function handshake(
  port: number,
  servername: string | null,
  ca: string[],
  alpn?: string[],
): Promise<{ ok: boolean; error?: string; alpn?: string | false | null; cert?: PeerCertificate }> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca,
      ...(servername !== null ? { servername } : {}),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
      rejectUnauthorized: alpn === undefined,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      resolve({ ok: true, alpn: socket.alpnProtocol, cert });
      socket.destroy();
    });
    socket.once('error', (e: Error & { code?: string }) =>
      resolve({ ok: false, error: e.code ?? e.message }),
    );
    socket.once('close', () => resolve({ ok: false, error: 'closed' }));
  });
}
