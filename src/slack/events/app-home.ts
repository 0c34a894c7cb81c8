import type { AllMiddlewareArgs, SlackEventMiddlewareArgs } from '@slack/bolt';
import { homeView } from '../blocks/home.js';
import type { SlackContext } from '../context.js';

/** Publishes the App Home tab when a user opens it. */
export function appHomeOpened(ctx: SlackContext) {
  return async ({
    event,
    client,
    context,
    logger,
  }: SlackEventMiddlewareArgs<'app_home_opened'> & AllMiddlewareArgs) => {
    if (event.tab !== 'home') return;
    const teamId = context.teamId ?? '';
    try {
      const view = homeView(ctx.subscriptions.listTeam(teamId)) as unknown as Parameters<
        typeof client.views.publish
      >[0]['view'];
      await client.views.publish({ user_id: event.user, view });
    } catch (err) {
      logger.error(`App Home for ${event.user} (team ${teamId}) not published: ${(err as Error).message}`);
    }
  };
}
