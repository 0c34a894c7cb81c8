import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  ButtonAction,
  RespondArguments,
  SlackActionMiddlewareArgs,
} from '@slack/bolt';
import { parseDomain } from '../../core/domain.js';
import { DatabaseBusyError } from '../../store/busy.js';
import { readButtonValue } from '../blocks/actions.js';
import { HOST_ACTION, HOSTING_OFF_TEXT } from '../blocks/hosting.js';
import { type HostAction, type HostCaller, hostAction } from '../commands/host.js';
import { DB_BUSY_TEXT, rationed, type SlackContext } from '../context.js';
import { ButtonAction as ButtonActionInput, ButtonBody, MALFORMED } from '../input.js';

/**
 * The host message's buttons (and those under a hosted domain's alerts): Check DNS now, Move to enforce, Apply
 * proposed change, Stop hosting. Each acts for the workspace and channel Slack says it was clicked in, and only on a
 * domain that workspace hosts: the service refuses any other (another workspace's, one not hosted), and a value that
 * names another workspace or channel, or is not ours at all, is refused before it. Every rule (the rollout rule for
 * enforce, the safe order of an MX change) is the service's, asked again at the click.
 */

type ButtonArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

const REFUSED =
  ':no_entry: This button belongs to another workspace or channel, or is not one of ours; nothing was done.';

const say = (args: ButtonArgs, text: string) =>
  args.respond?.({ response_type: 'ephemeral', replace_original: false, text }).catch(() => {});

interface HostClick {
  who: HostCaller;
  domain: string;
  blockId: string;
}

/** Acknowledges the click; what it may act on, or null once the user has been told why not. */
async function accept(args: ButtonArgs): Promise<HostClick | null> {
  await args.ack();
  const body = ButtonBody.safeParse(args.body);
  const action = ButtonActionInput.safeParse(args.action);
  if (!body.success || !action.success) {
    args.logger.warn(
      `hosting button: malformed payload (${(body.error ?? action.error)?.issues[0]?.path.join('.')})`,
    );
    await say(args, MALFORMED);
    return null;
  }
  const value = readButtonValue(action.data.value);
  const team = body.data.team?.id ?? body.data.user.team_id ?? '';
  const channel = body.data.channel?.id ?? '';
  const parsed = value ? parseDomain(value.domain) : null;
  if (!value || !channel || value.team !== team || value.channel !== channel || !parsed?.ok) {
    await say(args, REFUSED);
    return null;
  }
  return {
    who: { team, channel, user: body.data.user.id, slack: args.client },
    domain: parsed.domain.ascii,
    blockId: action.data.block_id,
  };
}

/** Where the answer goes: a look replaces the host message it was clicked on; a change is posted to the channel. */
function answerOf(answer: RespondArguments, click: HostClick): RespondArguments {
  const onHostMessage = click.blockId === 'mtasts_host_actions';
  const look = answer.response_type !== 'in_channel' && 'blocks' in answer;
  return { ...answer, replace_original: onHostMessage && look };
}

function hostButton(ctx: SlackContext, name: string, action: HostAction) {
  return async (args: ButtonArgs): Promise<void> => {
    const click = await accept(args);
    if (!click) return;
    const hosting = ctx.hosting;
    if (!hosting) return void (await say(args, HOSTING_OFF_TEXT));
    try {
      const answer = await rationed(
        ctx,
        click.who,
        (message) => say(args, message),
        () => hostAction(ctx, hosting, click.who, click.domain, action),
      );
      if (answer) await args.respond(answerOf(answer, click));
    } catch (err) {
      const busy = err instanceof DatabaseBusyError;
      const where = `${name} of ${click.domain} (team ${click.who.team})`;
      if (busy) args.logger.warn(`${where}: ${err.message}`);
      else
        args.logger.error(
          `${where} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      await say(args, busy ? DB_BUSY_TEXT : `:sweat: Sorry, ${name} failed; it has been logged.`);
    }
  };
}

export function registerHostingButtons(app: App, ctx: SlackContext): void {
  const on = (id: string, name: string, action: HostAction) =>
    app.action<BlockAction<ButtonAction>>(id, hostButton(ctx, name, action));
  on(HOST_ACTION.check, 'Check DNS now', { kind: 'check' });
  on(HOST_ACTION.enforce, 'Move to enforce', { kind: 'set', change: { mode: 'enforce' } });
  on(HOST_ACTION.apply, 'Apply proposed change', { kind: 'apply' });
  on(HOST_ACTION.stop, 'Stop hosting', { kind: 'remove' });
}
