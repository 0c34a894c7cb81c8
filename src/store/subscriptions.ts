import type { Db } from './db.js';

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

const COLUMNS = `s.id, s.team_id AS teamId, s.channel_id AS channelId, s.domain, s.created_by AS createdBy,
  s.created_at AS createdAt, s.paused_at AS pausedAt, s.paused_reason AS pausedReason, s.muted_until AS mutedUntil`;

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
  ): WatchResult {
    return this.db.transaction((): WatchResult => {
      const existing = this.get(teamId, channelId, domain);
      if (existing?.pausedAt) {
        this.db
          .prepare('UPDATE subscriptions SET paused_at = NULL, paused_reason = NULL WHERE id = ?')
          .run(existing.id);
        const subscription = this.byId(existing.id) as Subscription;
        return { kind: 'resumed', subscription, pausedReason: existing.pausedReason };
      }
      if (existing) return { kind: 'exists' };
      const { n } = this.db
        .prepare('SELECT COUNT(DISTINCT domain) AS n FROM subscriptions WHERE team_id = ?')
        .get(teamId) as { n: number };
      const domainKnown = this.db
        .prepare('SELECT 1 FROM subscriptions WHERE team_id = ? AND domain = ?')
        .get(teamId, domain);
      if (!domainKnown && n >= maxPerTeam) return { kind: 'limit', limit: maxPerTeam };
      const info = this.db
        .prepare(
          'INSERT INTO subscriptions (team_id, channel_id, domain, created_by, created_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(teamId, channelId, domain, userId, now.toISOString());
      return { kind: 'added', subscription: this.byId(Number(info.lastInsertRowid)) as Subscription };
    })();
  }

  /** Removes a channel's subscription; false when the channel did not watch the domain. */
  unwatch(teamId: string, channelId: string, domain: string): boolean {
    return (
      this.db
        .prepare('DELETE FROM subscriptions WHERE team_id = ? AND channel_id = ? AND domain = ?')
        .run(teamId, channelId, domain).changes > 0
    );
  }

  /** This channel's domains with their last status. */
  listChannel(teamId: string, channelId: string): ChannelDomain[] {
    return this.db
      .prepare(
        `SELECT ${COLUMNS}, c.status AS lastStatus, c.checked_at AS lastCheckedAt
         FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
         WHERE s.team_id = ? AND s.channel_id = ? ORDER BY s.domain`,
      )
      .all(teamId, channelId) as ChannelDomain[];
  }

  /** The workspace's watched domains, each with its channels and last status: the App Home overview. */
  listTeam(teamId: string): TeamDomain[] {
    const rows = this.db
      .prepare(
        `SELECT s.domain, group_concat(s.channel_id) AS channels, c.status AS lastStatus, c.checked_at AS lastCheckedAt
         FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
         WHERE s.team_id = ? GROUP BY s.domain ORDER BY s.domain`,
      )
      .all(teamId) as (Omit<TeamDomain, 'channels'> & { channels: string })[];
    return rows.map((r) => ({ ...r, channels: r.channels.split(',') }));
  }

  /** The workspace's paused subscriptions, by domain and channel: why alerts stopped, for App Home. */
  pausedInTeam(teamId: string): Subscription[] {
    return this.db
      .prepare(
        `SELECT ${COLUMNS} FROM subscriptions s WHERE s.team_id = ? AND s.paused_at IS NOT NULL ORDER BY s.domain, s.channel_id`,
      )
      .all(teamId) as Subscription[];
  }

  /** The command line's watch list (WATCH_LIST_TEAM), by domain and destination, with each domain's last status. */
  watchList(): ChannelDomain[] {
    return this.db
      .prepare(
        `SELECT ${COLUMNS}, c.status AS lastStatus, c.checked_at AS lastCheckedAt
         FROM subscriptions s LEFT JOIN domain_checks c ON c.domain = s.domain
         WHERE s.team_id = ? ORDER BY s.domain, s.channel_id`,
      )
      .all(WATCH_LIST_TEAM) as ChannelDomain[];
  }

  get(teamId: string, channelId: string, domain: string): Subscription | undefined {
    return this.db
      .prepare(
        `SELECT ${COLUMNS} FROM subscriptions s WHERE s.team_id = ? AND s.channel_id = ? AND s.domain = ?`,
      )
      .get(teamId, channelId, domain) as Subscription | undefined;
  }

  /** Every subscription to a domain, across workspaces: whom the monitor tells. */
  forDomain(domain: string): Subscription[] {
    return this.db
      .prepare(`SELECT ${COLUMNS} FROM subscriptions s WHERE s.domain = ? ORDER BY s.id`)
      .all(domain) as Subscription[];
  }

  /** The distinct watched domains, in order, a page at a time (the monitor streams through them). */
  domainsAfter(after: string, limit: number): string[] {
    return this.db
      .prepare('SELECT DISTINCT domain FROM subscriptions WHERE domain > ? ORDER BY domain LIMIT ?')
      .all(after, limit)
      .map((r) => (r as { domain: string }).domain);
  }

  setMute(teamId: string, channelId: string, domain: string, until: Date | null): boolean {
    return (
      this.db
        .prepare(
          'UPDATE subscriptions SET muted_until = ? WHERE team_id = ? AND channel_id = ? AND domain = ?',
        )
        .run(until ? until.toISOString() : null, teamId, channelId, domain).changes > 0
    );
  }

  /** Pauses every subscription of a workspace (the app was uninstalled). */
  pauseTeam(teamId: string, reason: string, now: Date): number {
    return this.db
      .prepare(
        'UPDATE subscriptions SET paused_at = ?, paused_reason = ? WHERE team_id = ? AND paused_at IS NULL',
      )
      .run(now.toISOString(), reason, teamId).changes;
  }

  /** Resumes a workspace's subscriptions paused by an uninstall, when it installs the app again. */
  resumeTeam(teamId: string): number {
    return this.db
      .prepare(
        "UPDATE subscriptions SET paused_at = NULL, paused_reason = NULL WHERE team_id = ? AND paused_reason LIKE 'uninstalled%'",
      )
      .run(teamId).changes;
  }

  /** Pauses every subscription of a channel (the bot was removed, or the channel archived). */
  pauseChannel(teamId: string, channelId: string, reason: string, now: Date): number {
    return this.db
      .prepare(
        'UPDATE subscriptions SET paused_at = ?, paused_reason = ? WHERE team_id = ? AND channel_id = ? AND paused_at IS NULL',
      )
      .run(now.toISOString(), reason, teamId, channelId).changes;
  }

  private byId(id: number): Subscription | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM subscriptions s WHERE s.id = ?`).get(id) as
      | Subscription
      | undefined;
  }
}
