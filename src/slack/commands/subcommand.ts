import type { AllMiddlewareArgs, RespondArguments, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { domainArgument, parseArgs, UsageError } from '../../args.js';
import type { Domain } from '../../core/domain.js';
import type { SlackContext } from '../context.js';

/** What Bolt hands a slash command's listener. */
export type CommandArgs = SlackCommandMiddlewareArgs & AllMiddlewareArgs;

/**
 * One slash subcommand, `/mtasts <usage>`: one entry of the table in index.ts. The help text, the manifest's
 * usage_hint and the usage shown beside an argument error all come from `usage` and `does`.
 */
export interface Subcommand<A = unknown> {
  /** Its name, then its arguments as a user types them: `example.com` where a domain goes, `[…]` if optional. */
  readonly usage: string;
  /** What it does, in a few words, for the help text. */
  readonly does: string;
  /**
   * Reads the words after the name, with src/args.ts (the parser the CLI shares). Throws UsageError or
   * RecordsInputError, which the user sees with the usage; nothing has been answered yet when it runs.
   */
  args(words: string[]): A;
  /** Answers: acknowledges within Slack's 3 s, then may answer again through response_url. */
  run(call: Call, args: A): Promise<unknown>;
}

/** One call of a subcommand: where it came from (workspace, channel, user) and how to answer it. */
export interface Call {
  ctx: SlackContext;
  scope: { team: string; channel: string; user: string };
  /** The subcommand's name, lower-cased. */
  name: string;
  triggerId: string;
  ack: CommandArgs['ack'];
  /** Answers through response_url, after the ack. */
  respond: CommandArgs['respond'];
  client: CommandArgs['client'];
  /** The table this call was dispatched from: what help lists. */
  subcommands: readonly Subcommand[];
}

/** A subcommand's name: the first word of its usage. */
export function nameOf(subcommand: Pick<Subcommand, 'usage'>): string {
  return subcommand.usage.split(' ')[0] ?? '';
}

/** Splits the command text into words; quotes are not special (domains and flags hold none). */
export function words(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

export const ephemeral = (text: string): RespondArguments => ({ response_type: 'ephemeral', text });

/** The arguments of a subcommand that takes one domain and no options. */
export function oneDomain(words: string[]): Domain {
  return domainArgument(parseArgs(words, {}).positional);
}

/** The arguments of a subcommand that takes none: words after it are ignored, as they always were. */
export function noArguments(): undefined {
  return undefined;
}

/** A domain and at most one more word (`mute example.com 24h`, `reports example.com 7`). */
export function domainAnd(words: string[]): { domain: Domain; extra: string | undefined } {
  const [name, extra, ...more] = parseArgs(words, {}).positional;
  if (more.length > 0) throw new UsageError('too many words');
  return { domain: domainArgument(name === undefined ? [] : [name]), extra };
}
