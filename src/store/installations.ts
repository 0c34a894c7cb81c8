import type { Installation, InstallationQuery, InstallationStore } from '@slack/bolt';
import { type Db, sql } from './db.js';

/**
 * Bolt's installation store in the database: one row per workspace (or enterprise, for org-wide installs). Tokens are stored
 * and returned, never logged.
 */
export class InstallationStoreSqlite implements InstallationStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
    /** Called after a workspace installs the app (again). */
    private readonly onInstalled: (teamId: string) => unknown = () => {},
  ) {}

  async storeInstallation(installation: Installation): Promise<void> {
    const enterprise = installation.isEnterpriseInstall
      ? (installation.enterprise?.id ?? '')
      : (installation.enterprise?.id ?? '');
    const team = installation.isEnterpriseInstall ? '' : (installation.team?.id ?? '');
    if (!team && !enterprise) throw new Error('an installation names neither a workspace nor an enterprise');
    await this.db.run(
      sql`INSERT INTO installations (team_id, enterprise_id, is_enterprise_install, bot_token, bot_user_id, installation_json, installed_at)
          VALUES (${team}, ${enterprise}, ${installation.isEnterpriseInstall ? 1 : 0}, ${installation.bot?.token ?? null},
            ${installation.bot?.userId ?? null}, ${JSON.stringify(installation)}, ${this.now().toISOString()})
          ON CONFLICT (team_id, enterprise_id) DO UPDATE SET is_enterprise_install = excluded.is_enterprise_install,
            bot_token = excluded.bot_token, bot_user_id = excluded.bot_user_id, installation_json = excluded.installation_json,
            installed_at = excluded.installed_at`,
    );
    if (team) await this.onInstalled(team);
  }

  async fetchInstallation(query: InstallationQuery<boolean>): Promise<Installation> {
    const row = await this.row(query);
    if (!row) throw new Error(`no installation for ${describe(query)}`);
    return JSON.parse(row.installation_json) as Installation;
  }

  async deleteInstallation(query: InstallationQuery<boolean>): Promise<void> {
    const { team, enterprise } = keys(query);
    await this.db.run(
      sql`DELETE FROM installations WHERE team_id = ${team} AND enterprise_id = ${enterprise}`,
    );
  }

  /** The bot token for a workspace, if it installed the app. */
  async botToken(teamId: string): Promise<string | null> {
    const row = await this.db.get<{ bot_token: string | null }>(
      sql`SELECT bot_token FROM installations WHERE team_id = ${teamId} ORDER BY installed_at DESC LIMIT 1`,
    );
    return row?.bot_token ?? null;
  }

  async has(teamId: string): Promise<boolean> {
    return (
      (await this.db.get(sql`SELECT 1 AS one FROM installations WHERE team_id = ${teamId}`)) !== undefined
    );
  }

  private row(query: InstallationQuery<boolean>): Promise<{ installation_json: string } | undefined> {
    const { team, enterprise } = keys(query);
    return this.db.get<{ installation_json: string }>(
      sql`SELECT installation_json FROM installations WHERE team_id = ${team} AND enterprise_id = ${enterprise}`,
    );
  }
}

function keys(query: InstallationQuery<boolean>): { team: string; enterprise: string } {
  return query.isEnterpriseInstall
    ? { team: '', enterprise: query.enterpriseId ?? '' }
    : { team: query.teamId ?? '', enterprise: query.enterpriseId ?? '' };
}

function describe(query: InstallationQuery<boolean>): string {
  return query.isEnterpriseInstall ? `enterprise ${query.enterpriseId}` : `workspace ${query.teamId}`;
}
