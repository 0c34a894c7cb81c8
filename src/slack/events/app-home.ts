import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  OverflowAction,
  SlackActionMiddlewareArgs,
  SlackEventMiddlewareArgs,
  webApi,
} from '@slack/bolt';
import type { Report } from '../../core/check.js';
import { parseDomain } from '../../core/domain.js';
import { CATALOG } from '../../core/findings.js';
import { HOME_MENU, type HomeRow, homeView } from '../blocks/home.js';
import { checkAndRemember, db, mailboxFor, rationed, type SlackContext } from '../context.js';
import { HomeOpened, MenuAction, MenuBody } from '../input.js';
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

/** What a last check found, worst first: "title (subject)", at most three and how many more. */
function problemsOf(report: Report | null): string[] {
  const worst = report?.findings.filter((f) => f.severity === 'error') ?? [];
  const shown = worst.length > 0 ? worst : (report?.findings.filter((f) => f.severity === 'warning') ?? []);
  const names = shown.map((f) => `${CATALOG[f.code].title} (${f.subject})`);
  return names.length > 3 ? [...names.slice(0, 3), `${names.length - 3} more`] : names;
}

/** The rows of a user's App Home: the workspace's domains watched by channels the user is in, with their state. */
async function homeRows(ctx: SlackContext, team: string, channels: Set<string>): Promise<HomeRow[]> {
  const domains = await db(() => ctx.subscriptions.listTeam(team));
  const paused = (await db(() => ctx.subscriptions.pausedInTeam(team))).filter((p) =>
    channels.has(p.channelId),
  );
  const rows: HomeRow[] = [];
  for (const r of domains.filter((d) => d.channels.some((c) => channels.has(c)))) {
    const last = await db(() => ctx.checks.last(r.domain));
    const certs = [
      last?.evidence.policy.fetch?.tls?.certificate?.notAfter,
      ...(last?.evidence.mx.hosts.flatMap((h) => h.probes.map((p) => p.tls?.certificate?.notAfter)) ?? []),
    ].filter((x): x is string => typeof x === 'string' && x !== 'unknown');
    rows.push({
      ...r,
      channels: r.channels.filter((c) => channels.has(c)),
      mode: last?.evidence.policy.valid ? (last.evidence.policy.policy?.mode ?? null) : null,
      nextExpiry: certs.sort()[0] ?? null,
      problems: problemsOf(last),
      paused: paused.filter((p) => p.domain === r.domain),
    });
  }
  return rows;
}

/**
 * Builds and publishes a user's App Home: the domains watched by channels they are in, by status; in the operator's
 * workspace, the TLS-RPT mailbox's status too. `notice` (e.g. why a re-check was not run) is shown at the top.
 */
export async function publishHome(
  client: webApi.WebClient,
  ctx: SlackContext,
  team: string,
  user: string,
  notice: string | null = null,
): Promise<void> {
  const channels = await channelsOf(client, user);
  const rows = channels === null ? [] : await homeRows(ctx, team, channels);
  const unknown =
    channels === null ? 'Slack did not tell which channels you are in, so no domain can be shown.' : null;
  const mailbox = await mailboxFor(ctx, team);
  const view = homeView(rows, team, [notice, unknown].filter(Boolean).join(' ') || null, mailbox);
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
    const input = HomeOpened.safeParse(event);
    if (!input.success) return logger.warn('app_home_opened: malformed event ignored');
    if (input.data.tab !== 'home') return;
    const team = context.teamId ?? '';
    try {
      await publishHome(client, ctx, team, input.data.user);
    } catch (err) {
      logger.error(`App Home for ${input.data.user} (team ${team}) not published: ${(err as Error).message}`);
    }
  };
}

type MenuArgs = SlackActionMiddlewareArgs<BlockAction<OverflowAction>> & AllMiddlewareArgs;

/** The menu's value: what to do, to which domain, in which workspace; null when it is not one of ours. */
function readChoice(value: string): { a: unknown; d: unknown; t: unknown } | null {
  try {
    const choice = JSON.parse(value) as unknown;
    return typeof choice === 'object' && choice !== null
      ? (choice as { a: unknown; d: unknown; t: unknown })
      : null;
  } catch {
    return null;
  }
}

/** A domain's menu in App Home: re-check (and publish the tab again), or the guided setup. */
export function homeMenu(ctx: SlackContext) {
  return async ({ ack, body: rawBody, action: rawAction, client, logger }: MenuArgs): Promise<void> => {
    await ack();
    const body = MenuBody.safeParse(rawBody);
    const action = MenuAction.safeParse(rawAction);
    const choice = action.success ? readChoice(action.data.selected_option.value) : null;
    if (!body.success || !choice) return logger.warn('App Home menu: malformed payload ignored');
    const user = body.data.user.id;
    const team = body.data.team?.id ?? body.data.user.team_id ?? '';
    const parsed = typeof choice.d === 'string' ? parseDomain(choice.d) : null;
    try {
      // The menu names its workspace; one from another workspace, or a domain that is not watched here, is refused.
      const watched = parsed?.ok && (await db(() => ctx.subscriptions.listTeam(team)));
      if (
        choice.t !== team ||
        !parsed?.ok ||
        !watched ||
        !watched.some((r) => r.domain === parsed.domain.ascii)
      ) {
        logger.warn(`App Home menu refused for user ${user} (team ${team})`);
        return;
      }
      const scope = { domain: parsed.domain.ascii, team, channel: '' };
      if (choice.a === 'records') {
        const last = await db(() => ctx.checks.last(scope.domain));
        await openSetupModal(client, ctx, body.data.trigger_id, parsed.domain, scope, last);
        return;
      }
      const refused = (message: string) => publishHome(client, ctx, team, user, message);
      const report = await rationed(ctx, { team, user }, refused, () => checkAndRemember(ctx, parsed.domain));
      if (report) await publishHome(client, ctx, team, user);
    } catch (err) {
      logger.error(
        `App Home ${String(choice.a).slice(0, 20)} of ${String(choice.d).slice(0, 80)} failed: ${String(err)}`,
      );
    }
  };
}

export function registerHome(app: App, ctx: SlackContext): void {
  app.event('app_home_opened', appHomeOpened(ctx));
  app.action<BlockAction<OverflowAction>>(HOME_MENU, homeMenu(ctx));
}
