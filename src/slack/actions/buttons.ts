import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
} from '@slack/bolt';
import { type Domain, parseDomain } from '../../core/domain.js';
import { recordsFor } from '../../generate/service.js';
import { ACTION, type ButtonScope, readButtonValue, reportActions } from '../blocks/actions.js';
import { esc } from '../blocks/common.js';
import { watchLimitText } from '../blocks/help.js';
import { recordsMessage } from '../blocks/records.js';
import { reportMessage } from '../blocks/report.js';
import { checkAndRemember, type SlackContext } from '../context.js';
import { publishHome } from '../events/app-home.js';
import { openSetupModal } from '../views/setup.js';

type ButtonArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

/**
 * The scope a click may act on: the domain from the button, the workspace and channel from Slack's payload. A button
 * naming another workspace or channel than the one it was clicked in is refused (null).
 */
export function verifiedScope(args: Pick<ButtonArgs, 'body' | 'action'>): ButtonScope | null {
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

/** Acknowledges a click and returns what it may act on; a refused click is told so (ephemeral) and gets null. */
async function accept(
  args: ButtonArgs,
  needsChannel = false,
): Promise<{ scope: ButtonScope; domain: Domain } | null> {
  await args.ack();
  const scope = verifiedScope(args);
  const parsed = scope ? parseDomain(scope.domain) : null;
  if (!scope || !parsed?.ok || (needsChannel && !scope.channel)) {
    await args.respond({ response_type: 'ephemeral', replace_original: false, text: REFUSED });
    return null;
  }
  return { scope, domain: parsed.domain };
}

export function registerButtons(app: App, ctx: SlackContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION.recheck, recheck(ctx));
  app.action<BlockAction<ButtonAction>>(ACTION.watch, toggleWatch(ctx, true));
  app.action<BlockAction<ButtonAction>>(ACTION.unwatch, toggleWatch(ctx, false));
  app.action<BlockAction<ButtonAction>>(ACTION.mute, toggleMute(ctx, true));
  app.action<BlockAction<ButtonAction>>(ACTION.unmute, toggleMute(ctx, false));
  app.action<BlockAction<ButtonAction>>(ACTION.records, showRecords(ctx));
}

/** Re-check: a report is replaced in place (its old verdict kept in the thread); an alert gets the report in its thread. */
export function recheck(ctx: SlackContext) {
  return async (args: ButtonArgs): Promise<void> => {
    const { body, respond, client, logger } = args;
    const target = await accept(args);
    if (!target) return;
    const { scope, domain } = target;
    try {
      const report = await checkAndRemember(ctx, domain);
      if (!scope.channel) {
        await publishHome(client, ctx, scope.team, body.user.id);
        return;
      }
      const watched = ctx.subscriptions.get(scope.team, scope.channel, scope.domain) !== undefined;
      const message = reportMessage(report, { extraBlocks: [reportActions(scope, watched)] });
      const ts = body.message?.ts ?? body.container?.message_ts;
      if (args.action.block_id === 'mtasts_alert_actions') {
        await client.chat.postMessage({
          channel: scope.channel,
          ...(ts ? { thread_ts: ts } : {}),
          ...message,
        } as never);
        return;
      }
      const previous = (body.message?.blocks?.[0] as { text?: { text?: string } } | undefined)?.text?.text;
      await respond({ replace_original: true, ...message });
      if (ts && previous) {
        await client.chat
          .postMessage({
            channel: scope.channel,
            thread_ts: ts,
            text: `Before the re-check: ${esc(previous)}`,
          })
          .catch((err: unknown) =>
            logger.warn(`re-check of ${scope.domain}: previous verdict not kept in thread: ${String(err)}`),
          );
      }
    } catch (err) {
      logger.error(
        `re-check of ${scope.domain} (team ${scope.team}) failed: ${(err as Error).stack ?? String(err)}`,
      );
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: ':sweat: Sorry, the re-check failed; it has been logged.',
      });
    }
  };
}

function toggleWatch(ctx: SlackContext, watch: boolean) {
  return async (args: ButtonArgs): Promise<void> => {
    const { body, respond } = args;
    const target = await accept(args, true);
    if (!target) return;
    const { scope } = target;
    let note: string;
    if (watch) {
      const r = ctx.subscriptions.watch(
        scope.team,
        scope.channel,
        scope.domain,
        body.user.id,
        ctx.maxDomainsPerTeam,
        ctx.now(),
      );
      note =
        r.kind === 'limit'
          ? watchLimitText(r.limit)
          : `<@${body.user.id}> set this channel to watch ${scope.domain}.`;
    } else {
      note = ctx.subscriptions.unwatch(scope.team, scope.channel, scope.domain)
        ? `<@${body.user.id}> stopped watching ${scope.domain} in this channel.`
        : `${scope.domain} was not watched in this channel.`;
    }
    const last = ctx.checks.last(scope.domain);
    const watched = ctx.subscriptions.get(scope.team, scope.channel, scope.domain) !== undefined;
    if (last)
      await respond({
        replace_original: true,
        ...reportMessage(last, { extraBlocks: [reportActions(scope, watched)] }),
      });
    await respond({ response_type: 'in_channel', replace_original: false, text: note });
  };
}

function toggleMute(ctx: SlackContext, mute: boolean) {
  return async (args: ButtonArgs): Promise<void> => {
    const { body, respond } = args;
    const target = await accept(args, true);
    if (!target) return;
    const { scope } = target;
    const until = mute ? new Date(ctx.now().getTime() + 24 * 3600_000) : null;
    const done = ctx.subscriptions.setMute(scope.team, scope.channel, scope.domain, until);
    await respond({
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
  return async (args: ButtonArgs): Promise<void> => {
    const { body, respond, client, logger } = args;
    const target = await accept(args);
    if (!target) return;
    const { scope, domain } = target;
    const last = ctx.checks.last(scope.domain);
    if (!last?.evidence.policy.valid || !scope.channel) {
      await openSetupModal(client, ctx, body.trigger_id, domain, scope, last).catch((err: unknown) =>
        logger.error(`setup modal for ${scope.domain} not opened: ${String(err)}`),
      );
      return;
    }
    try {
      const result = await recordsFor(domain, {}, ctx.engine);
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        ...recordsMessage(result.plan, result.snippets, result.domainConnect),
      });
    } catch (err) {
      logger.error(`records for ${scope.domain} failed: ${String(err)}`);
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: `:warning: ${esc((err as Error).message)}`,
      });
    }
  };
}
