import { UsageError } from '../../args.js';
import { RecordsInputError } from '../../generate/records.js';
import { DatabaseBusyError } from '../../store/busy.js';
import { esc } from '../blocks/common.js';
import { CheckStopped, DB_BUSY_TEXT, type SlackContext, STOPPED_TEXT } from '../context.js';
import { CommandInput, MALFORMED } from '../input.js';
import { helpMessage } from './help.js';
import { SUBCOMMANDS } from './index.js';
import { type Call, type CommandArgs, ephemeral, nameOf, type Subcommand, words } from './subcommand.js';

/** The command's fields, checked; null once a malformed payload has been answered. */
async function readPayload(args: CommandArgs) {
  const input = CommandInput.safeParse(args.command);
  if (input.success) return input.data;
  args.logger.warn(`/mtasts: malformed command payload (${input.error.issues[0]?.path.join('.') ?? '?'})`);
  await args.ack(ephemeral(MALFORMED)).catch(() => {});
  return null;
}

/** The subcommand's arguments read by its own reader, or null once the user has been told what is wrong. */
async function readArguments(
  c: Call,
  subcommand: Subcommand,
  rest: string[],
): Promise<{ value: unknown } | null> {
  try {
    return { value: subcommand.args(rest) };
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof RecordsInputError)) throw err;
    await c.ack(ephemeral(`:warning: ${esc(err.message)} — \`/mtasts ${subcommand.usage}\``));
    return null;
  }
}

/** Finds the subcommand by name (help, saying so, when there is none), reads its arguments and runs it. */
async function dispatch(c: Call, word: string, rest: string[]): Promise<void> {
  const subcommand = c.subcommands.find((s) => nameOf(s) === c.name);
  if (!subcommand) {
    const prefix = `Unknown subcommand "${word.slice(0, 40)}".`;
    await c.ack({ response_type: 'ephemeral', ...helpMessage(c.subcommands, prefix) });
    return;
  }
  const args = await readArguments(c, subcommand, rest);
  if (args) await subcommand.run(c, args.value);
}

/** After a failure: the apology (or "database busy") as the ack, or through response_url once acknowledged. */
async function apologize(args: CommandArgs, c: Pick<Call, 'scope' | 'name'>, err: unknown): Promise<void> {
  const busy = err instanceof DatabaseBusyError;
  const stopped = err instanceof CheckStopped;
  if (busy || stopped) args.logger.warn(`/mtasts ${c.name} (team ${c.scope.team}): ${err.message}`);
  else
    args.logger.error(
      `/mtasts ${c.name} failed (team ${c.scope.team}, channel ${c.scope.channel}, user ${c.scope.user}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  const answer = ephemeral(
    stopped
      ? STOPPED_TEXT
      : busy
        ? DB_BUSY_TEXT
        : ':sweat: Sorry, something went wrong on our side. It has been logged; please try again later.',
  );
  try {
    await args.ack(answer);
  } catch {
    // Already acknowledged: answer through response_url instead.
    await args.respond?.({ ...answer, replace_original: false }).catch(() => {});
  }
}

/**
 * `/mtasts <subcommand> …`, the subcommands being the table in index.ts (a test may pass its own). Every answer is
 * scoped to the workspace and channel the command came from. Slow work (a check) is acknowledged at once and answered
 * through `response_url`; checks are rationed per user and workspace (ctx.limiter). A payload whose fields are not
 * what Slack sends is answered, not thrown on; so is any failure.
 */
export function mtastsCommand(ctx: SlackContext, subcommands: readonly Subcommand[] = SUBCOMMANDS) {
  return async (args: CommandArgs): Promise<void> => {
    const input = await readPayload(args);
    if (!input) return;
    const { team_id: team, channel_id: channel, user_id: user, text, trigger_id: triggerId } = input;
    const [word = 'help', ...rest] = words(text);
    const { ack, respond, client } = args;
    const scope = { team, channel, user };
    const call: Call = { ctx, scope, name: word.toLowerCase(), triggerId, ack, respond, client, subcommands };
    try {
      await dispatch(call, word, rest);
    } catch (err) {
      await apologize(args, call, err);
    }
  };
}
