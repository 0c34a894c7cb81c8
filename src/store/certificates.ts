import { type Db, sql } from './db.js';

/** A policy host's certificate as stored: its key, the chain the CA sent, and when it is valid. */
export interface StoredCertificate {
  name: string;
  keyPem: string;
  certPem: string;
  /** SHA-256 of the leaf (hex with colons, as node:crypto's X509Certificate prints it). */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
}

export interface CertificateFailure {
  name: string;
  /** Failures in a row since the last success. */
  failures: number;
  lastError: string;
  failedAt: string;
  retryAt: string;
}

export interface StoredChallenge {
  name: string;
  type: 'tls-alpn-01' | 'http-01';
  token: string;
  keyAuthorization: string;
  /** tls-alpn-01 only: the self-signed certificate carrying the acmeIdentifier extension, and its key. */
  alpnCertPem?: string;
  alpnKeyPem?: string;
  expiresAt: string;
}

interface CertificateRow {
  name: string;
  key_pem: string;
  cert_pem: string;
  fingerprint: string;
  not_before: string;
  not_after: string;
  issued_at: string;
}

interface ChallengeRow {
  name: string;
  type: string;
  token: string;
  key_authorization: string;
  alpn_cert_pem: string | null;
  alpn_key_pem: string | null;
  expires_at: string;
}

const toCertificate = (r: CertificateRow): StoredCertificate => ({
  name: r.name,
  keyPem: r.key_pem,
  certPem: r.cert_pem,
  fingerprint: r.fingerprint,
  notBefore: r.not_before,
  notAfter: r.not_after,
  issuedAt: r.issued_at,
});

const toChallenge = (r: ChallengeRow): StoredChallenge => ({
  name: r.name,
  type: r.type === 'http-01' ? 'http-01' : 'tls-alpn-01',
  token: r.token,
  keyAuthorization: r.key_authorization,
  ...(r.alpn_cert_pem ? { alpnCertPem: r.alpn_cert_pem } : {}),
  ...(r.alpn_key_pem ? { alpnKeyPem: r.alpn_key_pem } : {}),
  expiresAt: r.expires_at,
});

/**
 * The serving half's state in the database, shared by every replica: the ACME account key, each policy host's
 * current certificate, the lease of an order in progress (one per name), failures with the time of the next try,
 * and the pending challenge responses that whichever replica the CA reaches answers, on either engine (store/db.ts).
 */
export class CertificateStore {
  constructor(private readonly db: Db) {}

  /** The account key for `directory`: the stored one, else `candidate`, stored (the first writer wins a race). */
  async accountKey(directory: string, candidate: () => Promise<string>, now: Date): Promise<string> {
    const stored = await this.storedAccountKey(directory);
    if (stored !== undefined) return stored;
    const key = await candidate();
    await this.db.run(
      sql`INSERT INTO acme_accounts (directory, key_pem, created_at) VALUES (${directory}, ${key}, ${now.toISOString()}) ON CONFLICT (directory) DO NOTHING`,
    );
    return (await this.storedAccountKey(directory)) ?? key;
  }

  private async storedAccountKey(directory: string): Promise<string | undefined> {
    const row = (await this.db.get(sql`SELECT key_pem FROM acme_accounts WHERE directory = ${directory}`)) as
      | { key_pem: string }
      | undefined;
    return row?.key_pem;
  }

  async certificate(name: string): Promise<StoredCertificate | undefined> {
    const row = (await this.db.get(sql`SELECT * FROM hosting_certificates WHERE name = ${name}`)) as
      | CertificateRow
      | undefined;
    return row ? toCertificate(row) : undefined;
  }

  /** Every stored certificate's name and expiry (for the reconcile pass and the metrics). */
  async certificates(): Promise<Pick<StoredCertificate, 'name' | 'notAfter'>[]> {
    return (
      await this.db.all<{
        name: string;
        not_after: string;
      }>(sql`SELECT name, not_after FROM hosting_certificates ORDER BY name`)
    ).map((r) => ({ name: r.name, notAfter: r.not_after }));
  }

  /** Stores a new certificate for its name, replacing the previous one in one statement. */
  async putCertificate(c: StoredCertificate): Promise<void> {
    await this.db.run(sql`INSERT INTO hosting_certificates (name, key_pem, cert_pem, fingerprint, not_before, not_after, issued_at)
         VALUES (${c.name}, ${c.keyPem}, ${c.certPem}, ${c.fingerprint}, ${c.notBefore}, ${c.notAfter}, ${c.issuedAt})
         ON CONFLICT (name) DO UPDATE SET key_pem = excluded.key_pem, cert_pem = excluded.cert_pem,
           fingerprint = excluded.fingerprint, not_before = excluded.not_before, not_after = excluded.not_after,
           issued_at = excluded.issued_at`);
  }

  /** Deletes certificates that expired before `now` (a name that left the list keeps its own until then). */
  async deleteExpired(now: Date): Promise<number> {
    return this.db.run(sql`DELETE FROM hosting_certificates WHERE not_after < ${now.toISOString()}`);
  }

  /**
   * Takes the lease of an order for `name` until `now + ttlMs`: true when no other holder has an unexpired lease.
   * Atomic across processes sharing the database (one transaction, the row's primary key).
   */
  async claimOrder(name: string, holder: string, ttlMs: number, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const row = await this.db.get<{ holder: string }>(
      sql`INSERT INTO hosting_orders (name, holder, started_at, expires_at)
          VALUES (${name}, ${holder}, ${at}, ${new Date(now.getTime() + ttlMs).toISOString()})
          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, started_at = excluded.started_at,
            expires_at = excluded.expires_at
          WHERE hosting_orders.holder = excluded.holder OR hosting_orders.expires_at <= ${at}
          RETURNING holder`,
    );
    return row !== undefined;
  }

  async releaseOrder(name: string, holder: string): Promise<void> {
    await this.db.run(sql`DELETE FROM hosting_orders WHERE name = ${name} AND holder = ${holder}`);
  }

  /** Orders whose lease has not expired. */
  async ordersInProgress(now: Date): Promise<number> {
    const row = await this.db.get<{ n: number }>(
      sql`SELECT COUNT(*) AS n FROM hosting_orders WHERE expires_at > ${now.toISOString()}`,
    );
    return row?.n ?? 0;
  }

  async failure(name: string): Promise<CertificateFailure | undefined> {
    const row = (await this.db.get(sql`SELECT * FROM hosting_certificate_failures WHERE name = ${name}`)) as
      | { name: string; failures: number; last_error: string; failed_at: string; retry_at: string }
      | undefined;
    return row
      ? {
          name: row.name,
          failures: row.failures,
          lastError: row.last_error,
          failedAt: row.failed_at,
          retryAt: row.retry_at,
        }
      : undefined;
  }

  /** Records one more failure in a row; `retryAt(failures)` says when to try again. Returns the record. */
  async recordFailure(
    name: string,
    error: string,
    now: Date,
    retryAt: (failures: number) => Date,
  ): Promise<CertificateFailure> {
    return this.db.transaction(async (): Promise<CertificateFailure> => {
      const row = await this.db.get<{ failures: number }>(
        sql`SELECT failures FROM hosting_certificate_failures WHERE name = ${name}`,
      );
      const failures = (row?.failures ?? 0) + 1;
      const at = retryAt(failures).toISOString();
      await this.db.run(
        sql`INSERT INTO hosting_certificate_failures (name, failures, last_error, failed_at, retry_at)
            VALUES (${name}, ${failures}, ${error}, ${now.toISOString()}, ${at})
            ON CONFLICT (name) DO UPDATE SET failures = excluded.failures, last_error = excluded.last_error,
              failed_at = excluded.failed_at, retry_at = excluded.retry_at`,
      );
      return { name, failures, lastError: error, failedAt: now.toISOString(), retryAt: at };
    });
  }

  /** Until when orders to the CA at `directory` wait after its rate limit (undefined: not blocked, or never was). */
  async caBlockedUntil(directory: string): Promise<string | undefined> {
    const row = await this.db.get<{ blocked_until: string }>(
      sql`SELECT blocked_until FROM acme_rate_limits WHERE directory = ${directory}`,
    );
    return row?.blocked_until;
  }

  /** Blocks orders to the CA at `directory` until `until` (a later block already stored is kept). */
  async blockCa(directory: string, until: Date, error: string, now: Date): Promise<void> {
    await this.db.run(sql`INSERT INTO acme_rate_limits (directory, blocked_until, last_error, limited_at) VALUES (${directory}, ${until.toISOString()}, ${error}, ${now.toISOString()})
         ON CONFLICT (directory) DO UPDATE SET blocked_until = MAX(blocked_until, excluded.blocked_until),
           last_error = excluded.last_error, limited_at = excluded.limited_at`);
  }

  async clearFailure(name: string): Promise<void> {
    await this.db.run(sql`DELETE FROM hosting_certificate_failures WHERE name = ${name}`);
  }

  async putChallenge(c: StoredChallenge): Promise<void> {
    await this.db.run(sql`INSERT INTO acme_challenges (name, type, token, key_authorization, alpn_cert_pem, alpn_key_pem, expires_at)
         VALUES (${c.name}, ${c.type}, ${c.token}, ${c.keyAuthorization}, ${c.alpnCertPem ?? null}, ${c.alpnKeyPem ?? null}, ${c.expiresAt})
         ON CONFLICT (name, type, token) DO UPDATE SET key_authorization = excluded.key_authorization,
           alpn_cert_pem = excluded.alpn_cert_pem, alpn_key_pem = excluded.alpn_key_pem, expires_at = excluded.expires_at`);
  }

  /** The newest unexpired tls-alpn-01 challenge for `name`. */
  async alpnChallenge(name: string, now: Date): Promise<StoredChallenge | undefined> {
    const row =
      await this.db.get<ChallengeRow>(sql`SELECT * FROM acme_challenges WHERE name = ${name} AND type = 'tls-alpn-01' AND expires_at > ${now.toISOString()}
         ORDER BY expires_at DESC LIMIT 1`);
    return row ? toChallenge(row) : undefined;
  }

  /** The unexpired http-01 challenge with this token. */
  async httpChallenge(token: string, now: Date): Promise<StoredChallenge | undefined> {
    const row =
      await this.db.get<ChallengeRow>(sql`SELECT * FROM acme_challenges WHERE token = ${token} AND type = 'http-01' AND expires_at > ${now.toISOString()}
         ORDER BY expires_at DESC LIMIT 1`);
    return row ? toChallenge(row) : undefined;
  }

  /** Deletes the challenges of `name`, and any expired one. */
  async deleteChallenges(name: string, now: Date): Promise<void> {
    await this.db.run(
      sql`DELETE FROM acme_challenges WHERE name = ${name} OR expires_at <= ${now.toISOString()}`,
    );
  }
}
