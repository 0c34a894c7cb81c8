import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
} from '@slack/bolt';
import type { z } from 'zod';
import { type Domain, parseDomain } from '../../core/domain.js';
import { recordsFor } from '../../generate/service.js';
import { DatabaseBusyError } from '../../store/busy.js';
import { ACTION, type ButtonScope, readButtonValue, reportActions } from '../blocks/actions.js';
import { esc } from '../blocks/common.js';
import { watchLimitText } from '../blocks/help.js';
import { recordsMessage } from '../blocks/records.js';
import { reportMessage } from '../blocks/report.js';
import { rolloutHistoryOf } from '../commands/records.js';
import { botMembership, notMemberText } from '../commands/watch.js';
import {
  CheckStopped,
  checkAndRemember,
  DB_BUSY_TEXT,
  db,
  rationed,
  type SlackContext,
  STOPPED_TEXT,
} from '../context.js';
import { publishHome } from '../events/app-home.js';
import { ButtonAction as ButtonActionInput, ButtonBody, MALFORMED } from '../input.js';
import { openSetupModal } from '../views/setup.js';
import { registerHostingButtons } from './hosting.js';

type ButtonArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;
type Body = z.infer<typeof ButtonBody>;

/** A click as the handlers use it: what Slack's payload says (checked), and the scope the button may act on. */
interface Click {
  body: Body;
  action: z.infer<typeof ButtonActionInput>;
  scope: ButtonScope;
  domain: Domain;
}

/**
 * The scope a click may act on: the domain from the button, the workspace and channel from Slack's payload. A button
 * naming another workspace or channel than the one it was clicked in is refused (null).
 */
export function verifiedScope(args: {
  body: Pick<Body, 'team' | 'user' | 'channel'>;
  action: { value?: string };
}): ButtonScope | null {
  const value = readButtonValue(args.action.value);
  if (!value) return null;
  const team = args.body.team?.id ?? args.body.user.team_id ?? '';
  const channel = args.body.channel?.id ?? '';
  if (value.team !== team || value.channel !== channel) return null;
  const parsed = parseDomain(value.domain);
  if (!parsed.ok || parsed.domain.ascii !== value.domain) return null;
  return value;
}

const REFUSED = ':no_entry: This button belongs to another workspace or channel; it was not acted on.';

const say = (args: ButtonArgs, text: string) =>
  args.respond?.({ response_type: 'ephemeral', replace_original: false, text }).catch(() => {});

/**
 * Acknowledges a click and returns what it may act on: a payload that is not what Slack sends, or a click from
 * another workspace or channel, is told so (ephemeral) and gets null.
 */
async function accept(args: ButtonArgs, needsChannel = false): Promise<Click | null> {
  await args.ack();
  const body = ButtonBody.safeParse(args.body);
  const action = ButtonActionInput.safeParse(args.action);
  if (!body.success || !action.success) {
    args.logger.warn(
      `button: malformed payload (${(body.error ?? action.error)?.issues[0]?.path.join('.')})`,
    );
    await say(args, MALFORMED);
    return null;
  }
  const scope = verifiedScope({ body: body.data, action: action.data });
  const parsed = scope ? parseDomain(scope.domain) : null;
  if (!scope || !parsed?.ok || (needsChannel && !scope.channel)) {
    await say(args, REFUSED);
    return null;
  }
  return { body: body.data, action: action.data, scope, domain: parsed.domain };
}

/** Runs a click's handler; "database busy" or an apology when it fails. */
function clicked(
  name: string,
  handle: (args: ButtonArgs, click: Click) => Promise<void>,
  needsChannel = false,
) {
  return async (args: ButtonArgs): Promise<void> => {
    const click = await accept(args, needsChannel);
    if (!click) return;
    try {
      await handle(args, click);
    } catch (err) {
      const busy = err instanceof DatabaseBusyError;
      const stopped = err instanceof CheckStopped;
      const where = `${name} of ${click.scope.domain} (team ${click.scope.team})`;
      if (busy || stopped) args.logger.warn(`${where}: ${err.message}`);
      else
        args.logger.error(
          `${where} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      const text = stopped
        ? STOPPED_TEXT
        : busy
          ? DB_BUSY_TEXT
          : `:sweat: Sorry, the ${name} failed; it has been logged.`;
      await say(args, text);
    }
  };
}

export function registerButtons(app: App, ctx: SlackContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION.recheck, recheck(ctx));
  app.action<BlockAction<ButtonAction>>(ACTION.watch, clicked('watch', toggleWatch(ctx, true), true));
  app.action<BlockAction<ButtonAction>>(ACTION.unwatch, clicked('unwatch', toggleWatch(ctx, false), true));
  app.action<BlockAction<ButtonAction>>(ACTION.mute, clicked('mute', toggleMute(ctx, true), true));
  app.action<BlockAction<ButtonAction>>(ACTION.unmute, clicked('unmute', toggleMute(ctx, false), true));
  app.action<BlockAction<ButtonAction>>(ACTION.records, clicked('records', showRecords(ctx)));
  registerHostingButtons(app, ctx);
}

const isWatched = (ctx: SlackContext, scope: ButtonScope) =>
  db(() => ctx.subscriptions.get(scope.team, scope.channel, scope.domain)).then((s) => s !== undefined);

/** Re-check: a report is replaced in place (its old verdict kept in the thread); an alert gets the report in its thread. */
export function recheck(ctx: SlackContext) {
  return clicked('re-check', async (args, { body, action, scope, domain }) => {
    const { respond, client, logger } = args;
    const who = { team: scope.team, user: body.user.id };
    const refused = (message: string) =>
      scope.channel ? say(args, message) : publishHome(client, ctx, scope.team, body.user.id, message);
    const report = await rationed(ctx, who, refused, () => checkAndRemember(ctx, domain));
    if (!report) return;
    if (!scope.channel) return publishHome(client, ctx, scope.team, body.user.id);
    const message = reportMessage(report, {
      extraBlocks: [reportActions(scope, await isWatched(ctx, scope))],
    });
    const ts = body.message?.ts ?? body.container?.message_ts;
    if (action.block_id === 'mtasts_alert_actions') {
      await client.chat.postMessage({
        channel: scope.channel,
        ...(ts ? { thread_ts: ts } : {}),
        ...message,
      } as never);
      return;
    }
    const first = body.message?.blocks?.[0] as { text?: { text?: unknown } } | null | undefined;
    const previous = typeof first?.text?.text === 'string' ? first.text.text : null;
    await respond({ replace_original: true, ...message });
    if (ts && previous) {
      await client.chat
        .postMessage({ channel: scope.channel, thread_ts: ts, text: `Before the re-check: ${esc(previous)}` })
        .catch((err: unknown) =>
          logger.warn(`re-check of ${scope.domain}: previous verdict not kept in thread: ${String(err)}`),
        );
    }
  });
}

function toggleWatch(ctx: SlackContext, watch: boolean) {
  return async (args: ButtonArgs, { body, scope }: Click): Promise<void> => {
    const user = body.user.id;
    let note: string;
    if (watch && (await botMembership(args.client, scope.channel)) === 'out') {
      await args.respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: notMemberText(scope.domain),
      });
      return; // alerts could not be posted there: nothing is set up
    }
    if (watch) {
      const r = await db(() =>
        ctx.subscriptions.watch(
          scope.team,
          scope.channel,
          scope.domain,
          user,
          ctx.maxDomainsPerTeam,
          ctx.now(),
        ),
      );
      note =
        r.kind === 'limit'
          ? watchLimitText(r.limit)
          : `<@${user}> set this channel to watch ${scope.domain}.`;
    } else {
      note = (await db(() => ctx.subscriptions.unwatch(scope.team, scope.channel, scope.domain)))
        ? `<@${user}> stopped watching ${scope.domain} in this channel.`
        : `${scope.domain} was not watched in this channel.`;
    }
    const last = await db(() => ctx.checks.last(scope.domain));
    if (last)
      await args.respond({
        replace_original: true,
        ...reportMessage(last, { extraBlocks: [reportActions(scope, await isWatched(ctx, scope))] }),
      });
    await args.respond({ response_type: 'in_channel', replace_original: false, text: note });
  };
}

function toggleMute(ctx: SlackContext, mute: boolean) {
  return async (args: ButtonArgs, { body, scope }: Click): Promise<void> => {
    const until = mute ? new Date(ctx.now().getTime() + 24 * 3600_000) : null;
    const done = await db(() => ctx.subscriptions.setMute(scope.team, scope.channel, scope.domain, until));
    await args.respond({
      response_type: done ? 'in_channel' : 'ephemeral',
      replace_original: false,
      text: !done
        ? `${scope.domain} is not watched in this channel.`
        : until
          ? `<@${body.user.id}> muted alerts about ${scope.domain} here until ${until.toISOString().replace(/\.\d{3}Z$/, 'Z')}.`
          : `<@${body.user.id}> unmuted alerts about ${scope.domain} here.`,
    });
  };
}

/** Show records: the guided setup for a domain without a policy, else the records only to the user who asked. */
function showRecords(ctx: SlackContext) {
  return async (args: ButtonArgs, { body, scope, domain }: Click): Promise<void> => {
    const { client, logger } = args;
    const last = await db(() => ctx.checks.last(scope.domain));
    if (!last?.evidence.policy.valid || !scope.channel) {
      await openSetupModal(client, ctx, body.trigger_id, domain, scope, last).catch((err: unknown) =>
        logger.error(`setup modal for ${scope.domain} not opened: ${String(err)}`),
      );
      return;
    }
    const who = { team: scope.team, user: body.user.id };
    await rationed(
      ctx,
      who,
      (message) => say(args, message),
      async () => {
        try {
          const history = await rolloutHistoryOf(ctx, domain.ascii);
          const result = await recordsFor(domain, {}, ctx.engine, history);
          await args.respond({
            response_type: 'ephemeral',
            replace_original: false,
            ...recordsMessage(result.plan, result.snippets, result.domainConnect),
          });
        } catch (err) {
          logger.error(`records for ${scope.domain} failed: ${String(err)}`);
          await say(args, `:warning: ${esc((err as Error).message)}`);
        }
      },
    );
  };
}
