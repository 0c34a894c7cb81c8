import { esc, type Message, section } from '../blocks/common.js';
import { nameOf, noArguments, type Subcommand } from './subcommand.js';

type Usage = Pick<Subcommand, 'usage' | 'does'>;

/** One line per subcommand, as help and App Home show them: `/mtasts check example.com` — what it does. */
export function usageText(subcommands: readonly Usage[]): string {
  return subcommands.map((s) => `\`/mtasts ${s.usage}\` — ${s.does}`).join('\n');
}

/**
 * The manifest's usage_hint (shown as the user types /mtasts): the names of the subcommands that take a domain, then
 * the others, e.g. `check | watch example.com · list · help`. test/slack/commands.test.ts holds manifest.yml to it.
 */
export function usageHint(subcommands: readonly Usage[]): string {
  const takesDomain = (s: Usage) => s.usage.split(' ')[1] === 'example.com';
  const withDomain = subcommands.filter(takesDomain).map(nameOf);
  const others = subcommands.filter((s) => !takesDomain(s)).map(nameOf);
  return [...(withDomain.length > 0 ? [`${withDomain.join(' | ')} example.com`] : []), ...others].join(' · ');
}

/** The answer to `/mtasts help` (and to an unknown subcommand, with `prefix` saying so). */
export function helpMessage(subcommands: readonly Usage[], prefix?: string): Message {
  const intro = prefix ? `${esc(prefix)}\n\n` : '';
  return {
    text: 'mtasts commands',
    blocks: [section(`${intro}*mtasts* keeps MTA-STS and TLS-RPT healthy.\n${usageText(subcommands)}`)],
  };
}

export const help: Subcommand<undefined> = {
  usage: 'help',
  does: 'this list',
  args: noArguments,
  run: (c) => c.ack({ response_type: 'ephemeral', ...helpMessage(c.subcommands) }),
};
