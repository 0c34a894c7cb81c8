import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  OverflowAction,
  SlackActionMiddlewareArgs,
  SlackEventMiddlewareArgs,
  webApi,
} from '@slack/bolt';
import { parseDomain } from '../../core/domain.js';
import { HOME_MENU, type HomeRow, homeView } from '../blocks/home.js';
import { checkAndRemember, type SlackContext } from '../context.js';
import { openSetupModal } from '../views/setup.js';

/** The channels a user is in (public and private ones the bot can see), or null when Slack will not say. */
async function channelsOf(client: webApi.WebClient, user: string): Promise<Set<string> | null> {
  const channels = new Set<string>();
  let cursor: string | undefined;
  try {
    for (let page = 0; page < 10; page++) {
      const res = await client.users.conversations({
        user,
        types: 'public_channel,private_channel',
        exclude_archived: true,
        limit: 200,
        ...(cursor ? { cursor } : {}),
      });
      for (const c of res.channels ?? []) if (c.id) channels.add(c.id);
      cursor = res.response_metadata?.next_cursor || undefined;
      if (!cursor) break;
    }
    return channels;
  } catch {
    return null;
  }
}

/** Builds and publishes a user's App Home: the domains watched by channels they are in, by status. */
export async function publishHome(
  client: webApi.WebClient,
  ctx: SlackContext,
  team: string,
  user: string,
): Promise<void> {
  const channels = await channelsOf(client, user);
  const rows: HomeRow[] =
    channels === null
      ? []
      : ctx.subscriptions
          .listTeam(team)
          .filter((r) => r.channels.some((c) => channels.has(c)))
          .map((r) => {
            const last = ctx.checks.last(r.domain);
            const certs = [
              last?.evidence.policy.fetch?.tls?.certificate?.notAfter,
              ...(last?.evidence.mx.hosts.flatMap((h) => h.probes.map((p) => p.tls?.certificate?.notAfter)) ??
                []),
            ].filter((x): x is string => typeof x === 'string' && x !== 'unknown');
            return {
              ...r,
              channels: r.channels.filter((c) => channels.has(c)),
              mode: last?.evidence.policy.valid ? (last.evidence.policy.policy?.mode ?? null) : null,
              nextExpiry: certs.sort()[0] ?? null,
            };
          });
  const view = homeView(
    rows,
    team,
    channels === null ? 'Slack did not tell which channels you are in, so no domain can be shown.' : null,
  );
  await client.views.publish({ user_id: user, view: view as never });
}

/** Publishes the App Home tab when a user opens it. */
export function appHomeOpened(ctx: SlackContext) {
  return async ({
    event,
    client,
    context,
    logger,
  }: SlackEventMiddlewareArgs<'app_home_opened'> & AllMiddlewareArgs) => {
    if (event.tab !== 'home') return;
    const team = context.teamId ?? '';
    try {
      await publishHome(client, ctx, team, event.user);
    } catch (err) {
      logger.error(`App Home for ${event.user} (team ${team}) not published: ${(err as Error).message}`);
    }
  };
}

type MenuArgs = SlackActionMiddlewareArgs<BlockAction<OverflowAction>> & AllMiddlewareArgs;

/** A domain's menu in App Home: re-check (and publish the tab again), or the guided setup. */
export function homeMenu(ctx: SlackContext) {
  return async ({ ack, body, action, client, logger }: MenuArgs): Promise<void> => {
    await ack();
    let choice: { a?: unknown; d?: unknown; t?: unknown };
    try {
      choice = JSON.parse(action.selected_option.value) as typeof choice;
    } catch {
      return;
    }
    const team = body.team?.id ?? body.user.team_id ?? '';
    const parsed = typeof choice.d === 'string' ? parseDomain(choice.d) : null;
    // The menu names its workspace; one from another workspace, or a domain that is not watched here, is refused.
    if (
      choice.t !== team ||
      !parsed?.ok ||
      !ctx.subscriptions.listTeam(team).some((r) => r.domain === parsed.domain.ascii)
    ) {
      logger.warn(`App Home menu refused for user ${body.user.id} (team ${team})`);
      return;
    }
    const scope = { domain: parsed.domain.ascii, team, channel: '' };
    try {
      if (choice.a === 'records') {
        await openSetupModal(
          client,
          ctx,
          body.trigger_id,
          parsed.domain,
          scope,
          ctx.checks.last(scope.domain),
        );
        return;
      }
      await checkAndRemember(ctx, parsed.domain);
      await publishHome(client, ctx, team, body.user.id);
    } catch (err) {
      logger.error(`App Home ${String(choice.a)} of ${scope.domain} failed: ${String(err)}`);
    }
  };
}

export function registerHome(app: App, ctx: SlackContext): void {
  app.event('app_home_opened', appHomeOpened(ctx));
  app.action<BlockAction<OverflowAction>>(HOME_MENU, homeMenu(ctx));
}
