import type { PolicyMode } from '../core/policy.js';
import { type Db, sql } from './db.js';

/**
 * The hosting state (db/migrations/012_hosting.sql): hosted domains, every policy version served, and the events a
 * domain's channel should hear of. Every method is asynchronous although better-sqlite3 is not, so that the store
 * moves to the shared query layer (PostgreSQL) without changing its callers.
 */

export type HostingStatus = 'pending' | 'active' | 'leaving' | 'removed';

/** The owner of the command line's hosted domains; Slack workspaces own theirs by team id. */
export const CLI_OWNER = 'cli';

/**
 * A pending change of the mx patterns after the MX records changed (see hosting/policy-plan.ts for the rule). Step 1
 * (interim) serves the old patterns and the new hosts; step 2 (final) drops the patterns that match no MX host, not
 * before `waitMaxAge` seconds after step 1 went live (or after the proposal, when there is no step 1).
 */
export interface MxProposal {
  /** The MX hosts DNS listed when the change was seen, lower case, in DNS's order of preference. */
  observed: string[];
  /** Hosts DNS lists that no served pattern covers. */
  add: string[];
  /** Served patterns that cover none of the hosts DNS lists. */
  drop: string[];
  proposedAt: string;
  /** Step 1's patterns: the served ones and the new hosts; null when nothing is added (no step 1). */
  interim: string[] | null;
  /** The patterns at the end: the served ones still in use, then the new hosts. */
  final: string[];
  /** The max_age of the version senders may hold when step 2 is considered: the one served before step 1. */
  waitMaxAge: number;
  /** When step 1 went live; null before (or when there is no step 1). */
  interimServedAt: string | null;
  /** The id step 1 was served with: step 2 waits from when DNS was first seen carrying it (absent before step 1). */
  interimId?: string | null;
}

export interface CertificateState {
  state: 'issued' | 'renewed' | 'failed';
  at: string;
  notAfter: string | null;
  error: string | null;
  retryAt: string | null;
}

export interface HostedDomain {
  domain: string;
  policyHost: string;
  owner: string;
  channelId: string | null;
  /** This enrollment's secret: the CNAME target is `<token>.<MTASTS_HOSTING_NAME>`; never reused. */
  token: string;
  status: HostingStatus;
  mode: PolicyMode;
  maxAge: number;
  mx: string[];
  stsId: string;
  proposal: MxProposal | null;
  leavingUntil: string | null;
  nameLostAt: string | null;
  nameProblem: string | null;
  /** The id the `_mta-sts` TXT carried at the last look; null when it carried none (or nobody looked). */
  dnsId: string | null;
  dnsCheckedAt: string | null;
  /** When DNS was first seen carrying stsId; null while it does not (yet). */
  dnsCarriesAt: string | null;
  remindedAt: string | null;
  certificate: CertificateState | null;
  createdAt: string;
  activatedAt: string | null;
  /** Status removed: since when. */
  removedAt: string | null;
  updatedAt: string;
}

/** A rival request for a domain another owner holds pending: shown as a pending HostedDomain of its own. */
export interface RivalClaim {
  domain: string;
  owner: string;
  channelId: string | null;
  token: string;
  mode: PolicyMode;
  maxAge: number;
  mx: string[];
  stsId: string;
  createdAt: string;
}

/** Who asked for a domain and was dropped, because another owner's token reached DNS first. */
export interface DroppedRequest {
  owner: string;
  channelId: string | null;
}

export interface PolicyVersion {
  stsId: string;
  policyText: string;
  mode: PolicyMode;
  maxAge: number;
  createdAt: string;
  /** Null for a version never served (the domain was pending). */
  servedFrom: string | null;
  /** Null while it is the version served. */
  servedUntil: string | null;
}

/** The served policy of a domain: what a change replaces. */
export interface NewVersion {
  mode: PolicyMode;
  maxAge: number;
  mx: string[];
  stsId: string;
  policyText: string;
}

export type HostingEventKind =
  | 'active'
  | 'name-lost'
  | 'name-back'
  | 'removed'
  | 'certificate-issued'
  | 'certificate-renewed'
  | 'certificate-failed'
  /** A rival pending request lost to the winner's proof in DNS: written when the winner is activated. */
  | 'dropped';

export interface HostingEvent {
  id: number;
  domain: string;
  /** Who is told: the domain's owner and channel; for 'dropped', the losing request's (from its detail). */
  owner: string;
  channelId: string | null;
  kind: HostingEventKind;
  at: string;
  detail: Record<string, string | number | null>;
}

export type EnrollResult =
  /** replaced: the owner of a stale pending request this one took the place of. */
  | { kind: 'added'; hosted: HostedDomain; replaced: DroppedRequest | null }
  | { kind: 'exists'; hosted: HostedDomain }
  /** Another owner holds the domain pending (not stale): this owner's own rival request, with its own token. */
  | { kind: 'claim'; claim: RivalClaim; created: boolean };

/** What an enrollment asks of the store: the domain, who asks, and the rules of the cap and of stale requests. */
export interface EnrollRequest {
  domain: string;
  policyHost: string;
  owner: string;
  channelId: string | null;
  /** A fresh token, used only when a new row or claim is made. */
  token: string;
  maxPerOwner: number;
  /** A pending request by another owner created before this may be replaced. */
  staleBefore: Date;
}

/** The fields of a domain other than its policy that a caller may set. */
export type DomainFields = Partial<
  Pick<
    HostedDomain,
    | 'status'
    | 'proposal'
    | 'leavingUntil'
    | 'nameLostAt'
    | 'nameProblem'
    | 'dnsId'
    | 'dnsCheckedAt'
    | 'dnsCarriesAt'
    | 'remindedAt'
    | 'certificate'
    | 'activatedAt'
    | 'channelId'
  >
>;

interface Row {
  domain: string;
  policy_host: string;
  owner: string;
  channel_id: string | null;
  token: string;
  status: HostingStatus;
  mode: PolicyMode;
  max_age: number;
  mx_json: string;
  sts_id: string;
  proposal_json: string | null;
  leaving_until: string | null;
  name_lost_at: string | null;
  name_problem: string | null;
  dns_id: string | null;
  dns_checked_at: string | null;
  dns_carries_at: string | null;
  reminded_at: string | null;
  cert_state: CertificateState['state'] | null;
  cert_not_after: string | null;
  cert_error: string | null;
  cert_retry_at: string | null;
  cert_at: string | null;
  created_at: string;
  activated_at: string | null;
  removed_at: string | null;
  updated_at: string;
}

interface ClaimRow {
  domain: string;
  owner: string;
  channel_id: string | null;
  token: string;
  mode: PolicyMode;
  max_age: number;
  mx_json: string;
  sts_id: string;
  created_at: string;
}

function fromClaimRow(r: ClaimRow): RivalClaim {
  return {
    ...{ domain: r.domain, owner: r.owner, channelId: r.channel_id, token: r.token, mode: r.mode },
    ...{ maxAge: r.max_age, mx: JSON.parse(r.mx_json) as string[], stsId: r.sts_id, createdAt: r.created_at },
  };
}

function fromRow(r: Row): HostedDomain {
  return {
    ...{
      domain: r.domain,
      policyHost: r.policy_host,
      owner: r.owner,
      channelId: r.channel_id,
      token: r.token,
    },
    ...{ status: r.status, mode: r.mode, maxAge: r.max_age, mx: JSON.parse(r.mx_json) as string[] },
    stsId: r.sts_id,
    proposal: r.proposal_json ? (JSON.parse(r.proposal_json) as MxProposal) : null,
    ...{ leavingUntil: r.leaving_until, nameLostAt: r.name_lost_at, nameProblem: r.name_problem },
    ...{ dnsId: r.dns_id, dnsCheckedAt: r.dns_checked_at, dnsCarriesAt: r.dns_carries_at },
    remindedAt: r.reminded_at,
    certificate: r.cert_state
      ? {
          state: r.cert_state,
          at: r.cert_at ?? '',
          notAfter: r.cert_not_after,
          error: r.cert_error,
          retryAt: r.cert_retry_at,
        }
      : null,
    ...{ createdAt: r.created_at, activatedAt: r.activated_at, removedAt: r.removed_at },
    updatedAt: r.updated_at,
  };
}

/** Each settable field's column(s) and value(s). */
function columnsOf(fields: DomainFields): [string, unknown][] {
  const out: [string, unknown][] = [];
  const simple: [keyof DomainFields, string][] = [
    ['status', 'status'],
    ['leavingUntil', 'leaving_until'],
    ['nameLostAt', 'name_lost_at'],
    ['nameProblem', 'name_problem'],
    ['dnsId', 'dns_id'],
    ['dnsCheckedAt', 'dns_checked_at'],
    ['dnsCarriesAt', 'dns_carries_at'],
    ['remindedAt', 'reminded_at'],
    ['activatedAt', 'activated_at'],
    ['channelId', 'channel_id'],
  ];
  for (const [field, column] of simple) if (field in fields) out.push([column, fields[field]]);
  if ('proposal' in fields)
    out.push(['proposal_json', fields.proposal ? JSON.stringify(fields.proposal) : null]);
  if ('certificate' in fields) {
    const c = fields.certificate ?? null;
    out.push(['cert_state', c?.state ?? null], ['cert_at', c?.at ?? null]);
    out.push(['cert_not_after', c?.notAfter ?? null], ['cert_error', c?.error ?? null]);
    out.push(['cert_retry_at', c?.retryAt ?? null]);
  }
  return out;
}

const SERVED = "('active', 'leaving')";

export class HostingStore {
  constructor(private readonly db: Db) {}

  async get(domain: string): Promise<HostedDomain | undefined> {
    const row = (await this.db.get(sql`SELECT * FROM hosted_domains WHERE domain = ${domain}`)) as
      | Row
      | undefined;
    return row ? fromRow(row) : undefined;
  }

  async byPolicyHost(name: string): Promise<HostedDomain | undefined> {
    const row = (await this.db.get(sql`SELECT * FROM hosted_domains WHERE policy_host = ${name}`)) as
      | Row
      | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** An owner's domains (removed ones too: their history), by name. */
  async listByOwner(owner: string): Promise<HostedDomain[]> {
    return (
      await this.db.all<Row>(sql`SELECT * FROM hosted_domains WHERE owner = ${owner} ORDER BY domain`)
    ).map(fromRow);
  }

  async withStatus(statuses: readonly HostingStatus[]): Promise<HostedDomain[]> {
    if (statuses.length === 0) return [];
    const rows = await this.db.all<Row>(
      sql`SELECT * FROM hosted_domains WHERE status IN (${sql.join(statuses)}) ORDER BY domain`,
    );
    return rows.map(fromRow);
  }

  /** The text served at a policy host: its domain active or leaving; undefined otherwise. */
  async servedText(policyHost: string): Promise<string | undefined> {
    const row = await this.db.get<{ text: string }>(sql`SELECT v.policy_text AS text FROM hosted_domains d
         JOIN hosted_versions v ON v.domain = d.domain AND v.sts_id = d.sts_id
         WHERE d.policy_host = ${policyHost} AND d.status IN ${sql.raw(SERVED)}`);
    return row?.text;
  }

  /** The policy hosts that need a certificate: active (and still pointing at the bot) or leaving. */
  async certificateNames(): Promise<string[]> {
    return (
      await this.db.all<{ policy_host: string }>(sql`SELECT policy_host FROM hosted_domains
           WHERE status = 'leaving' OR (status = 'active' AND name_lost_at IS NULL) ORDER BY policy_host`)
    ).map((r) => r.policy_host);
  }

  /**
   * Enrolls a domain in one transaction: an owner's second request for its own domain is `exists`; a domain another
   * owner serves (active, leaving) is `taken`; one another owner holds pending since `staleBefore` or later gets a
   * rival `claim` with its own token; an older pending one is replaced. An owner at its cap is `limit`: its domains
   * not removed, those removed in the last day, and its rival claims count. A removed domain is enrolled afresh with
   * the new token (its versions stay, so that no id is used twice).
   */
  async enroll(
    request: EnrollRequest,
    policy: Omit<NewVersion, 'stsId'>,
    makeId: (used: readonly string[]) => string,
    now: Date,
  ): Promise<EnrollResult | { kind: 'taken' } | { kind: 'limit'; limit: number }> {
    const at = now.toISOString();
    const { domain, owner } = request;
    return this.db.transaction(async () => {
      const existing = (await this.db.get(sql`SELECT * FROM hosted_domains WHERE domain = ${domain}`)) as
        | Row
        | undefined;
      if (existing && existing.status !== 'removed' && existing.owner === owner) {
        return { kind: 'exists' as const, hosted: fromRow(existing) };
      }
      const held = existing && existing.status !== 'removed';
      if (held && existing.status !== 'pending') return { kind: 'taken' as const };
      const rival = held && Date.parse(existing.created_at) >= request.staleBefore.getTime();
      if (rival) {
        const own = await this.claimRow(domain, owner);
        if (own) return { kind: 'claim' as const, claim: fromClaimRow(own), created: false };
      }
      const limit = request.maxPerOwner;
      if ((await this.countTowardCap(owner, domain, now)) >= limit) return { kind: 'limit' as const, limit };
      const first = { ...policy, stsId: makeId(await this.usedIds(domain)) };
      if (rival) {
        await this.insertClaim(request, first, at);
        return {
          kind: 'claim' as const,
          claim: fromClaimRow((await this.claimRow(domain, owner)) as ClaimRow),
          created: true,
        };
      }
      const replaced = held ? { owner: existing.owner, channelId: existing.channel_id } : null;
      // An own rival request left from before keeps its token, which its owner may have published already.
      const token = (await this.claimRow(domain, owner))?.token ?? request.token;
      await this.db.run(sql`DELETE FROM hosting_claims WHERE domain = ${domain} AND owner = ${owner}`);
      await this.writeEnrollment(request, token, first, at);
      return { kind: 'added' as const, hosted: fromRow(await this.row(domain)), replaced };
    });
  }

  /** The domains an owner holds toward its cap (leaving out `domain`, which a new request replaces). */
  private async countTowardCap(owner: string, domain: string, now: Date): Promise<number> {
    const dayAgo = new Date(now.getTime() - 86_400_000).toISOString();
    const n =
      (
        await this.db.get<{
          n: number;
        }>(sql`SELECT COUNT(*) AS n FROM hosted_domains WHERE owner = ${owner} AND domain <> ${domain}
           AND (status <> 'removed' OR removed_at > ${dayAgo})`)
      )?.n ?? 0;
    const c =
      (
        await this.db.get<{ c: number }>(
          sql`SELECT COUNT(*) AS c FROM hosting_claims WHERE owner = ${owner} AND domain <> ${domain}`,
        )
      )?.c ?? 0;
    return n + c;
  }

  /** The domain's row made a fresh pending enrollment (events of an earlier one deleted), with its first version. */
  private async writeEnrollment(
    hosted: { domain: string; policyHost: string; owner: string; channelId: string | null },
    token: string,
    first: NewVersion,
    at: string,
  ): Promise<void> {
    await this.db.run(sql`DELETE FROM hosting_events WHERE domain = ${hosted.domain}`);
    await this.db.run(
      sql`INSERT INTO hosted_domains (domain, policy_host, owner, channel_id, token, status, mode, max_age, mx_json,
           sts_id, created_at, updated_at) VALUES (${hosted.domain}, ${hosted.policyHost}, ${hosted.owner},
           ${hosted.channelId}, ${token}, 'pending', ${first.mode}, ${first.maxAge}, ${JSON.stringify(first.mx)},
           ${first.stsId}, ${at}, ${at})
         ON CONFLICT (domain) DO UPDATE SET owner = excluded.owner, channel_id = excluded.channel_id,
           token = excluded.token, status = 'pending', mode = excluded.mode, max_age = excluded.max_age,
           mx_json = excluded.mx_json, sts_id = excluded.sts_id, proposal_json = NULL, leaving_until = NULL,
           name_lost_at = NULL, name_problem = NULL, dns_id = NULL, dns_checked_at = NULL, dns_carries_at = NULL,
           reminded_at = NULL, cert_state = NULL, cert_not_after = NULL, cert_error = NULL, cert_retry_at = NULL,
           cert_at = NULL, created_at = excluded.created_at, activated_at = NULL, removed_at = NULL,
           updated_at = excluded.updated_at`,
    );
    await this.insertVersion(hosted.domain, first, at, null);
  }

  private async claimRow(domain: string, owner: string): Promise<ClaimRow | undefined> {
    return await this.db.get<ClaimRow>(
      sql`SELECT * FROM hosting_claims WHERE domain = ${domain} AND owner = ${owner}`,
    );
  }

  private async insertClaim(request: EnrollRequest, first: NewVersion, at: string): Promise<void> {
    await this.db.run(
      sql`INSERT INTO hosting_claims (domain, owner, channel_id, token, mode, max_age, mx_json, sts_id, created_at)
          VALUES (${request.domain}, ${request.owner}, ${request.channelId}, ${request.token}, ${first.mode},
            ${first.maxAge}, ${JSON.stringify(first.mx)}, ${first.stsId}, ${at})`,
    );
    // The version row keeps the claim's id from being used again by anyone; it is never served.
    await this.insertVersion(request.domain, first, at, null);
  }

  /** The rival requests for a domain, oldest first. */
  async claims(domain: string): Promise<RivalClaim[]> {
    return (
      await this.db.all<ClaimRow>(
        sql`SELECT * FROM hosting_claims WHERE domain = ${domain} ORDER BY created_at`,
      )
    ).map(fromClaimRow);
  }

  /** An owner's rival requests, by domain. */
  async claimsByOwner(owner: string): Promise<RivalClaim[]> {
    return (
      await this.db.all<ClaimRow>(sql`SELECT * FROM hosting_claims WHERE owner = ${owner} ORDER BY domain`)
    ).map(fromClaimRow);
  }

  /** An owner withdraws its rival request; false when it had none. */
  async dropClaim(domain: string, owner: string): Promise<boolean> {
    return (
      (await this.db.run(sql`DELETE FROM hosting_claims WHERE domain = ${domain} AND owner = ${owner}`)) > 0
    );
  }

  /**
   * A rival request whose token DNS shows takes the pending domain and is activated, in one transaction: its claim
   * becomes the domain's row, served from now (see activate), and every other request for the domain (the one that
   * held the row, the other claims) is dropped, each with a `dropped` event for its owner. False when the domain is
   * no longer pending or the claim is gone.
   */
  async promoteClaim(domain: string, owner: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    return this.db.transaction(async () => {
      const current = (await this.db.get(sql`SELECT * FROM hosted_domains WHERE domain = ${domain}`)) as
        | Row
        | undefined;
      const claim = await this.claimRow(domain, owner);
      if (current?.status !== 'pending' || !claim) return false;
      const held = { owner: current.owner, channelId: current.channel_id };
      const c = fromClaimRow(claim);
      const version = { ...c, policyText: await this.versionText(domain, c.stsId) };
      await this.db.run(sql`DELETE FROM hosted_versions WHERE domain = ${domain} AND sts_id = ${c.stsId}`);
      await this.writeEnrollment({ ...c, policyHost: current.policy_host }, c.token, version, at);
      return this.activateRow(domain, at, [held]);
    });
  }

  /** Every rival request for a domain but `keep`'s deleted; who asked, to be told. */
  private async dropOtherClaims(domain: string, keep: string): Promise<DroppedRequest[]> {
    const rows = await this.db.all<{ owner: string; channel_id: string | null }>(
      sql`SELECT owner, channel_id FROM hosting_claims WHERE domain = ${domain} AND owner <> ${keep} ORDER BY created_at`,
    );
    await this.db.run(sql`DELETE FROM hosting_claims WHERE domain = ${domain}`);
    return rows.map((r) => ({ owner: r.owner, channelId: r.channel_id }));
  }

  private async versionText(domain: string, stsId: string): Promise<string> {
    const row = await this.db.get<{ policy_text: string }>(
      sql`SELECT policy_text FROM hosted_versions WHERE domain = ${domain} AND sts_id = ${stsId}`,
    );
    if (!row) throw new Error(`${domain}: no version ${stsId}`);
    return row.policy_text;
  }

  /**
   * Serves a new policy version in one transaction, its id made by `makeId` from every id the domain used (in the
   * same transaction, so two changes at once never get one id): the version served so far ends now, the new one starts now (when
   * the domain is served; it waits for activation while pending), the domain's policy and other fields are updated,
   * and whether DNS carries the new id starts over.
   */
  async serve(
    domain: string,
    policy: Omit<NewVersion, 'stsId'>,
    makeId: (used: readonly string[]) => string,
    fields: DomainFields,
    now: Date,
  ): Promise<HostedDomain> {
    const at = now.toISOString();
    return this.db.transaction(async () => {
      const current = await this.row(domain);
      const next = { ...policy, stsId: makeId(await this.usedIds(domain)) };
      const status = fields.status ?? current.status;
      const served = status === 'active' || status === 'leaving';
      await this.db.run(
        sql`UPDATE hosted_versions SET served_until = ${at} WHERE domain = ${domain} AND served_from IS NOT NULL AND served_until IS NULL`,
      );
      await this.insertVersion(domain, next, at, served ? at : null);
      await this.db.run(sql`UPDATE hosted_domains SET mode = ${next.mode}, max_age = ${next.maxAge}, mx_json = ${JSON.stringify(next.mx)}, sts_id = ${next.stsId}, dns_carries_at = NULL,
             reminded_at = NULL, updated_at = ${at} WHERE domain = ${domain}`);
      await this.setFields(domain, fields, at);
      return fromRow(await this.row(domain));
    });
  }

  /** Sets fields other than the policy (status, proposal, DNS and reminder state, certificate state). */
  async update(domain: string, fields: DomainFields, now: Date): Promise<HostedDomain | undefined> {
    await this.setFields(domain, fields, now.toISOString());
    return this.get(domain);
  }

  /**
   * A pending domain becomes active in one transaction (false when it was no longer pending): its current version
   * is served from now, an `active` event is recorded, and the rival requests for it are dropped, each with a
   * `dropped` event for its owner (so that a crash after this loses no loser's news).
   */
  async activate(domain: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    return this.db.transaction(() => this.activateRow(domain, at, []));
  }

  /** Inside a transaction: activate's work; `dropped` are requests dropped already (told first, with the claims). */
  private async activateRow(domain: string, at: string, dropped: DroppedRequest[]): Promise<boolean> {
    const changed = await this.db.run(
      sql`UPDATE hosted_domains SET status = 'active', activated_at = ${at}, name_lost_at = NULL, name_problem = NULL,
            updated_at = ${at} WHERE domain = ${domain} AND status = 'pending'`,
    );
    if (changed === 0) return false;
    await this.db.run(
      sql`UPDATE hosted_versions SET served_from = ${at} WHERE domain = ${domain} AND served_from IS NULL
            AND sts_id = (SELECT sts_id FROM hosted_domains WHERE domain = ${domain})`,
    );
    await this.insertEvent(domain, 'active', at, {});
    const losers = [...dropped, ...(await this.dropOtherClaims(domain, (await this.row(domain)).owner))];
    for (const l of losers)
      await this.insertEvent(domain, 'dropped', at, { owner: l.owner, channelId: l.channelId });
    return true;
  }

  /** Ends serving: the version served so far ends now, and the domain is removed (with a `removed` event). */
  async retire(domain: string, now: Date): Promise<void> {
    const at = now.toISOString();
    await this.db.transaction(async () => {
      await this.db.run(
        sql`UPDATE hosted_versions SET served_until = ${at} WHERE domain = ${domain} AND served_from IS NOT NULL AND served_until IS NULL`,
      );
      await this.db.run(sql`UPDATE hosted_domains SET status = 'removed', proposal_json = NULL, removed_at = ${at}, updated_at = ${at}
           WHERE domain = ${domain}`);
      await this.insertEvent(domain, 'removed', at, {});
    });
  }

  /** Every version of a domain, oldest first. */
  async versions(domain: string): Promise<PolicyVersion[]> {
    return await this.db.all<PolicyVersion>(sql`SELECT sts_id AS "stsId", policy_text AS "policyText", mode, max_age AS "maxAge", created_at AS "createdAt",
           served_from AS "servedFrom", served_until AS "servedUntil" FROM hosted_versions WHERE domain = ${domain} ORDER BY id`);
  }

  async addEvent(domain: string, kind: HostingEventKind, at: Date, detail: HostingEvent['detail']) {
    await this.insertEvent(domain, kind, at.toISOString(), detail);
  }

  /** Events no channel has been told of yet, oldest first. */
  async unannouncedEvents(limit: number): Promise<HostingEvent[]> {
    const rows =
      (await this.db.all(sql`SELECT e.id, e.domain, d.owner, d.channel_id AS "channelId", e.kind, e.at, e.detail_json
         FROM hosting_events e JOIN hosted_domains d ON d.domain = e.domain
         WHERE e.announced_at IS NULL ORDER BY e.id LIMIT ${limit}`)) as (Omit<HostingEvent, 'detail'> & {
        detail_json: string;
      })[];
    return rows.map(({ detail_json, ...e }) => {
      const detail = JSON.parse(detail_json) as HostingEvent['detail'];
      if (e.kind !== 'dropped') return { ...e, detail };
      // Told to the request that lost, never to the domain's owner (the winner).
      const owner = typeof detail.owner === 'string' ? detail.owner : '';
      const channelId = typeof detail.channelId === 'string' ? detail.channelId : null;
      return { ...e, owner, channelId, detail };
    });
  }

  async markAnnounced(ids: readonly number[], now: Date): Promise<number> {
    return this.db.transaction(async () => {
      let n = 0;
      for (const id of ids)
        n += await this.db.run(
          sql`UPDATE hosting_events SET announced_at = ${now.toISOString()} WHERE id = ${id} AND announced_at IS NULL`,
        );
      return n;
    });
  }

  private async row(domain: string): Promise<Row> {
    const row = (await this.db.get(sql`SELECT * FROM hosted_domains WHERE domain = ${domain}`)) as
      | Row
      | undefined;
    if (!row) throw new Error(`${domain} is not hosted`);
    return row;
  }

  private async usedIds(domain: string): Promise<string[]> {
    return (
      await this.db.all<{
        sts_id: string;
      }>(sql`SELECT sts_id FROM hosted_versions WHERE domain = ${domain}`)
    ).map((r) => r.sts_id);
  }

  private async setFields(domain: string, fields: DomainFields, at: string): Promise<void> {
    const columns = columnsOf(fields);
    if (columns.length === 0) return;
    // The column names come from columnsOf's fixed list, never from input.
    const set = sql.join(columns.map(([c, v]) => sql`${sql.ref(c)} = ${v}`));
    await this.db.run(sql`UPDATE hosted_domains SET ${set}, updated_at = ${at} WHERE domain = ${domain}`);
  }

  private async insertVersion(
    domain: string,
    v: NewVersion,
    at: string,
    servedFrom: string | null,
  ): Promise<void> {
    await this.db.run(sql`INSERT INTO hosted_versions (domain, sts_id, policy_text, mode, max_age, created_at, served_from)
         VALUES (${domain}, ${v.stsId}, ${v.policyText}, ${v.mode}, ${v.maxAge}, ${at}, ${servedFrom})`);
  }

  private async insertEvent(
    domain: string,
    kind: HostingEventKind,
    at: string,
    detail: HostingEvent['detail'],
  ): Promise<void> {
    await this.db.run(
      sql`INSERT INTO hosting_events (domain, kind, at, detail_json) VALUES (${domain}, ${kind}, ${at}, ${JSON.stringify(detail)})`,
    );
  }
}
