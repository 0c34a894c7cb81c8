import type { AllMiddlewareArgs, App, SlackEventMiddlewareArgs } from '@slack/bolt';
import { db, type SlackContext } from '../context.js';
import { TokensRevoked } from '../input.js';

/**
 * A workspace removes the app (app_uninstalled) or revokes its bot token (tokens_revoked): its installation and
 * token are deleted, and its subscriptions paused, so that the monitor stops trying to post there.
 */
export function uninstalled(ctx: SlackContext, reason: 'uninstalled' | 'tokens revoked') {
  return async ({
    event,
    context,
    logger,
  }: (SlackEventMiddlewareArgs<'app_uninstalled'> | SlackEventMiddlewareArgs<'tokens_revoked'>) &
    AllMiddlewareArgs) => {
    if (event.type === 'tokens_revoked') {
      const revoked = TokensRevoked.safeParse(event);
      if (!revoked.success) return logger.warn('tokens_revoked: malformed event ignored');
      if ((revoked.data.tokens?.bot ?? []).length === 0) return; // only user tokens
    }
    const team = context.teamId ?? '';
    const enterprise = context.enterpriseId;
    if (!team && !enterprise) return;
    const installations = ctx.installations;
    if (installations) {
      const query = {
        teamId: team || undefined,
        enterpriseId: enterprise,
        isEnterpriseInstall: context.isEnterpriseInstall ?? false,
      };
      await db(() => installations.deleteInstallation(query));
    }
    const paused = team
      ? await db(() => ctx.subscriptions.pauseTeam(team, `uninstalled: ${reason}`, ctx.now()))
      : 0;
    logger.info(
      `workspace ${team || enterprise}: app ${reason}; installation removed, ${paused} subscription(s) paused`,
    );
  };
}

export function registerUninstall(app: App, ctx: SlackContext): void {
  app.event('app_uninstalled', uninstalled(ctx, 'uninstalled'));
  app.event('tokens_revoked', uninstalled(ctx, 'tokens revoked'));
}
