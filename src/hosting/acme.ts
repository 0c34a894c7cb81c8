import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Agent } from 'node:https';
import * as acme from 'acme-client';
import type { StoredCertificate, StoredChallenge } from '../store/certificates.js';

/**
 * One ACME order with acme-client (RFC 8555): an account per CA, a new ECDSA P-256 key per certificate, tls-alpn-01
 * (RFC 8737) first and http-01 when that listener is on, the challenge response handed to the store so that whichever
 * replica the CA reaches can answer. acme-client talks through one shared axios instance; what differs per manager
 * (the trust of a test CA's HTTPS, the request timeout) and what a CA answered (429 and its Retry-After) travel in an
 * AsyncLocalStorage context, so nothing is changed for other code and verification is never turned off.
 */
interface AcmeContext {
  agent?: Agent;
  timeoutMs: number;
  /** Aborted when the order is given up: a request under way is cancelled, and any later one fails at once. */
  signal?: AbortSignal;
  /** Set when the CA answered 429 or a rateLimited problem: the wait it asked for (ms, 0 when it named none). */
  rateLimitedMs?: number;
}

const context = new AsyncLocalStorage<AcmeContext>();

// The manager owns retries: a failed order is recorded with a backoff, a 429 with the CA's Retry-After. acme-client's
// own retries would sleep inside an order (for as long as Retry-After says) and send the same request again.
(
  acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }
).acmeSettings.retryMaxAttempts = 0;
acme.axios.interceptors.request.use((config) => {
  const ctx = context.getStore();
  if (ctx) {
    config.timeout = ctx.timeoutMs;
    if (ctx.agent) config.httpsAgent = ctx.agent;
    if (ctx.signal) config.signal = ctx.signal;
  }
  return config;
});
acme.axios.interceptors.response.use((response) => {
  const ctx = context.getStore();
  const type = (response.data as { type?: unknown } | undefined)?.type;
  if (ctx && (response.status === 429 || type === 'urn:ietf:params:acme:error:rateLimited'))
    ctx.rateLimitedMs = retryAfterMs(response.headers['retry-after']);
  return response;
});

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now; 0 when absent or unreadable. */
export function retryAfterMs(value: unknown, now = Date.now()): number {
  if (typeof value !== 'string' || value.trim() === '') return 0;
  if (/^\d{1,10}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

export type ChallengeType = 'tls-alpn-01' | 'http-01';

export interface AcmeSettings {
  directoryUrl: string;
  email: string | null;
  /** Each HTTP request to the CA is abandoned after this. */
  requestTimeoutMs: number;
  /** Challenge types in order of preference: tls-alpn-01, then http-01 where the plain HTTP listener is on. */
  challengeTypes: ChallengeType[];
  /** Polling of a challenge, authorization or order: tries, and the first and longest wait between them. */
  poll: { attempts: number; minMs: number; maxMs: number };
  /** For tests: trust of the CA's own HTTPS listener. */
  httpsAgent?: Agent;
}

/** Where challenges go while an order runs (the certificate store). */
export interface ChallengeSink {
  putChallenge(c: StoredChallenge): Promise<void>;
}

/** The outcome of an order that failed: one line for the channel, and the wait a CA's rate limit asked for. */
export class AcmeFailure extends Error {
  constructor(
    message: string,
    readonly rateLimitedMs: number | null,
  ) {
    super(message);
  }
}

/** A client for one CA, its account registered (or found again) once with the stored key. */
export class AcmeAccount {
  private client: acme.Client | null = null;

  constructor(
    private readonly settings: AcmeSettings,
    private readonly accountKey: () => Promise<string>,
  ) {}

  /** Runs one order for `name` to its certificate, or throws AcmeFailure; `signal` cancels it (its CA requests). */
  async issue(
    name: string,
    challenges: ChallengeSink,
    expiresAt: Date,
    now: Date,
    signal?: AbortSignal,
  ): Promise<StoredCertificate> {
    const ctx: AcmeContext = {
      timeoutMs: this.settings.requestTimeoutMs,
      ...(this.settings.httpsAgent ? { agent: this.settings.httpsAgent } : {}),
      ...(signal ? { signal } : {}),
    };
    return context.run(ctx, async () => {
      try {
        return await this.order(name, challenges, expiresAt, now, signal);
      } catch (e) {
        throw new AcmeFailure(oneLine(e), ctx.rateLimitedMs ?? null);
      }
    });
  }

  private async registered(): Promise<acme.Client> {
    if (this.client) return this.client;
    const client = new acme.Client({
      directoryUrl: this.settings.directoryUrl,
      accountKey: await this.accountKey(),
      backoffAttempts: this.settings.poll.attempts,
      backoffMin: this.settings.poll.minMs,
      backoffMax: this.settings.poll.maxMs,
    });
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.settings.email ? { contact: [`mailto:${this.settings.email}`] } : {}),
    });
    this.client = client;
    return client;
  }

  private async order(
    name: string,
    challenges: ChallengeSink,
    expiresAt: Date,
    now: Date,
    signal?: AbortSignal,
  ): Promise<StoredCertificate> {
    const client = await this.registered();
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    for (const authz of await client.getAuthorizations(order)) {
      signal?.throwIfAborted();
      if (authz.status === 'valid') continue;
      await this.prove(client, name, authz, challenges, expiresAt);
    }
    signal?.throwIfAborted();
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, key);
    const finalized = await client.finalizeOrder(order, csr);
    const chain = await client.getCertificate(finalized);
    return certificateRecord(name, key, chain, now);
  }

  /** Answers one authorization: stores the response, tells the CA, waits for its verdict. */
  private async prove(
    client: acme.Client,
    name: string,
    authz: acme.Authorization,
    challenges: ChallengeSink,
    expiresAt: Date,
  ): Promise<void> {
    // acme-client's types know http-01 and dns-01 only; tls-alpn-01 is a string it passes through.
    const offered = (type: ChallengeType) => authz.challenges.find((c) => (c.type as string) === type);
    const type = this.settings.challengeTypes.find((t) => offered(t));
    const challenge = type ? offered(type) : undefined;
    if (!type || !challenge)
      throw new Error(`the CA offers no ${this.settings.challengeTypes.join(' or ')} challenge`);
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    const base = { name, token: challenge.token, keyAuthorization, expiresAt: expiresAt.toISOString() };
    if (type === 'tls-alpn-01') {
      const key = await acme.crypto.createPrivateEcdsaKey('P-256');
      const [, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, key);
      await challenges.putChallenge({
        ...base,
        type: 'tls-alpn-01',
        alpnCertPem: cert.toString(),
        alpnKeyPem: key.toString(),
      });
    } else await challenges.putChallenge({ ...base, type: 'http-01' });
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(authz);
  }
}

/** Checks what the CA sent (for this name, for this key) and makes the stored record. */
export function certificateRecord(
  name: string,
  keyPem: string,
  chain: string,
  issuedAt: Date,
): StoredCertificate {
  const leaf = new X509Certificate(chain);
  if (leaf.checkHost(name) === undefined) throw new Error(`the CA's certificate is not for ${name}`);
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
    throw new Error("the CA's certificate is not for our key");
  return {
    name,
    keyPem,
    certPem: chain,
    fingerprint: leaf.fingerprint256,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    issuedAt: issuedAt.toISOString(),
  };
}

/** An error as one line of at most 300 characters (what the CA or the validation said). */
export function oneLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.replace(/\s+/g, ' ').trim() || 'unknown error';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
