import { type Db, sql } from './db.js';

export interface Subscription {
  id: number;
  teamId: string;
  channelId: string;
  domain: string;
  createdBy: string;
  createdAt: string;
  pausedAt: string | null;
  pausedReason: string | null;
  mutedUntil: string | null;
}

/** Whether a subscription receives alerts now: not paused, and not muted. */
export function isActive(s: Subscription, now: Date): boolean {
  return s.pausedAt === null && (s.mutedUntil === null || Date.parse(s.mutedUntil) <= now.getTime());
}

export interface ChannelDomain extends Subscription {
  lastStatus: 'pass' | 'warn' | 'fail' | null;
  lastCheckedAt: string | null;
}

export interface TeamDomain {
  domain: string;
  channels: string[];
  lastStatus: 'pass' | 'warn' | 'fail' | null;
  lastCheckedAt: string | null;
}

/**
 * The watch list kept from the command line (`mtasts watch`): its subscriptions carry this team id, which no Slack
 * workspace has, and a destination of their own in place of a channel: `log`, or `webhook:NAME` (see
 * db/migrations/010_watch_destinations.sql). The monitor and the outbox treat them like any other subscription.
 */
export const WATCH_LIST_TEAM = 'watch-list';

/** The watch list's destination for alerts written to the app's log. */
export const LOG_DESTINATION = 'log';

/** The watch list's destination for a webhook named in MTASTS_WEBHOOKS. */
export function webhookDestination(name: string): string {
  return `webhook:${name}`;
}

/** The webhook name a watch-list destination names, or null for the log (or a Slack channel). */
export function webhookName(destination: string): string | null {
  return destination.startsWith('webhook:') ? destination.slice('webhook:'.length) : null;
}

/** A subscription's columns, named as its fields (quoted: PostgreSQL folds bare names to lower case). */
const COLUMNS =
  sql.raw(`s.id, s.team_id AS "teamId", s.channel_id AS "channelId", s.domain, s.created_by AS "createdBy",
  s.created_at AS "createdAt", s.paused_at AS "pausedAt", s.paused_reason AS "pausedReason", s.muted_until AS "mutedUntil"`);

export type WatchResult =
  | { kind: 'added'; subscription: Subscription }
  | { kind: 'exists' }
  /** It existed but was paused (alerts could not be posted, the app was uninstalled): now active again. */
  | { kind: 'resumed'; subscription: Subscription; pausedReason: string | null }
  | { kind: 'limit'; limit: number };

/** Subscriptions, always scoped to one workspace and channel: no call reaches another channel's rows. */
export class SubscriptionStore {
  constructor(private readonly db: Db) {}

  /**
   * Subscribes a channel; a second watch is not an error, and resumes the subscription if it was paused; the
   * per-workspace cap is enforced in one transaction.
   */
  watch(
    teamId: string,
    channelId: string,
    domain: string,
    userId: string,
    maxPerTeam: number,
    now: Date,
  ): Promise<WatchResult> {
    return this.db.transaction(async (): Promise<WatchResult> => {
      const existing = await this.get(teamId, channelId, domain);
      if (existing?.pausedAt) {
        await this.db.run(
          sql`UPDATE subscriptions SET paused_at = NULL, paused_reason = NULL WHERE id = ${existing.id}`,
        );
        const subscription = (await this.byId(existing.id)) as Subscription;
        return { kind: 'resumed', subscription, pausedReason: existing.pausedReason };
      }
      if (existing) return { kind: 'exists' };
      const count = await this.db.get<{ n: number }>(
        sql`SELECT COUNT(DISTINCT domain) AS n FROM subscriptions WHERE team_id = ${teamId}`,
      );
      const domainKnown = await this.db.get(
        sql`SELECT 1 AS one FROM subscriptions WHERE team_id = ${teamId} AND domain = ${domain}`,
      );
      if (!domainKnown && (count?.n ?? 0) >= maxPerTeam) return { kind: 'limit', limit: maxPerTeam };
      const row = await this.db.get<{ id: number }>(
        sql`INSERT INTO subscriptions (team_id, channel_id, domain, created_by, created_at)
            VALUES (${teamId}, ${channelId}, ${domain}, ${userId}, ${now.toISOString()}) RETURNING id`,
      );
      return { kind: 'added', subscription: (await this.byId(Number(row?.id))) as Subscription };
    });
  }

  /** Removes a channel's subscription; false when the channel did not watch the domain. */
  async unwatch(teamId: string, channelId: string, domain: string): Promise<boolean> {
    const n = await this.db.run(
      sql`DELETE FROM subscriptions WHERE team_id = ${teamId} AND channel_id = ${channelId} AND domain = ${domain}`,
    );
    return n > 0;
  }

  /** This channel's domains with their last status. */
  listChannel(teamId: string, channelId: string): Promise<ChannelDomain[]> {
    return this.db.all<ChannelDomain>(
      sql`SELECT ${COLUMNS}, c.status AS "lastStatus", c.checked_at AS "lastCheckedAt"
          FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
          WHERE s.team_id = ${teamId} AND s.channel_id = ${channelId} ORDER BY s.domain`,
    );
  }

  /** The workspace's watched domains, each with its channels and last status: the App Home overview. */
  async listTeam(teamId: string): Promise<TeamDomain[]> {
    const channels = this.db.pick(
      'group_concat(s.channel_id)',
      "string_agg(s.channel_id, ',' ORDER BY s.id)",
    );
    const rows = await this.db.all<Omit<TeamDomain, 'channels'> & { channels: string }>(
      sql`SELECT s.domain, ${channels} AS channels, c.status AS "lastStatus", c.checked_at AS "lastCheckedAt"
          FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
          WHERE s.team_id = ${teamId} GROUP BY s.domain, c.status, c.checked_at ORDER BY s.domain`,
    );
    return rows.map((r) => ({ ...r, channels: r.channels.split(',') }));
  }

  /** The workspace's paused subscriptions, by domain and channel: why alerts stopped, for App Home. */
  pausedInTeam(teamId: string): Promise<Subscription[]> {
    return this.db.all<Subscription>(
      sql`SELECT ${COLUMNS} FROM subscriptions s WHERE s.team_id = ${teamId} AND s.paused_at IS NOT NULL
          ORDER BY s.domain, s.channel_id`,
    );
  }

  /** The command line's watch list (WATCH_LIST_TEAM), by domain and destination, with each domain's last status. */
  watchList(): Promise<ChannelDomain[]> {
    return this.db.all<ChannelDomain>(
      sql`SELECT ${COLUMNS}, c.status AS "lastStatus", c.checked_at AS "lastCheckedAt"
          FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
          WHERE s.team_id = ${WATCH_LIST_TEAM} ORDER BY s.domain, s.channel_id`,
    );
  }

  get(teamId: string, channelId: string, domain: string): Promise<Subscription | undefined> {
    return this.db.get<Subscription>(
      sql`SELECT ${COLUMNS} FROM subscriptions s
          WHERE s.team_id = ${teamId} AND s.channel_id = ${channelId} AND s.domain = ${domain}`,
    );
  }

  /** Every subscription to a domain, across workspaces: whom the monitor tells. */
  forDomain(domain: string): Promise<Subscription[]> {
    return this.db.all<Subscription>(
      sql`SELECT ${COLUMNS} FROM subscriptions s WHERE s.domain = ${domain} ORDER BY s.id`,
    );
  }

  /** The distinct watched domains, in order, a page at a time (the monitor streams through them). */
  async domainsAfter(after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ domain: string }>(
      sql`SELECT DISTINCT domain FROM subscriptions WHERE domain > ${after} ORDER BY domain LIMIT ${limit}`,
    );
    return rows.map((r) => r.domain);
  }

  async setMute(teamId: string, channelId: string, domain: string, until: Date | null): Promise<boolean> {
    const n = await this.db.run(
      sql`UPDATE subscriptions SET muted_until = ${until ? until.toISOString() : null}
          WHERE team_id = ${teamId} AND channel_id = ${channelId} AND domain = ${domain}`,
    );
    return n > 0;
  }

  /** Pauses every subscription of a workspace (the app was uninstalled). */
  pauseTeam(teamId: string, reason: string, now: Date): Promise<number> {
    return this.db.run(
      sql`UPDATE subscriptions SET paused_at = ${now.toISOString()}, paused_reason = ${reason}
          WHERE team_id = ${teamId} AND paused_at IS NULL`,
    );
  }

  /** Resumes a workspace's subscriptions paused by an uninstall, when it installs the app again. */
  resumeTeam(teamId: string): Promise<number> {
    return this.db.run(
      sql`UPDATE subscriptions SET paused_at = NULL, paused_reason = NULL
          WHERE team_id = ${teamId} AND paused_reason LIKE 'uninstalled%'`,
    );
  }

  /** Pauses every subscription of a channel (the bot was removed, or the channel archived). */
  pauseChannel(teamId: string, channelId: string, reason: string, now: Date): Promise<number> {
    return this.db.run(
      sql`UPDATE subscriptions SET paused_at = ${now.toISOString()}, paused_reason = ${reason}
          WHERE team_id = ${teamId} AND channel_id = ${channelId} AND paused_at IS NULL`,
    );
  }

  private byId(id: number): Promise<Subscription | undefined> {
    return this.db.get<Subscription>(sql`SELECT ${COLUMNS} FROM subscriptions s WHERE s.id = ${id}`);
  }
}
