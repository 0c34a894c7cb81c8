import type { ChannelDomain } from '../../store/subscriptions.js';
import { code, esc, type Message, STATUS_EMOJI, section } from '../blocks/common.js';
import { db } from '../context.js';
import { noArguments, type Subcommand } from './subcommand.js';

/** The domains a channel watches, with their last status: 20 a section, at most 50 blocks. */
export function listMessage(rows: ChannelDomain[]): Message {
  if (rows.length === 0) {
    return {
      text: 'This channel watches no domains.',
      blocks: [section('This channel watches no domains. Try `/mtasts watch example.com`.')],
    };
  }
  const lines = rows.map((r) => {
    const status = r.lastStatus
      ? `${STATUS_EMOJI[r.lastStatus]} ${r.lastStatus}`
      : ':hourglass: not checked yet';
    const when = r.lastCheckedAt ? ` · checked ${esc(r.lastCheckedAt.replace(/\.\d{3}Z$/, 'Z'))}` : '';
    const paused = r.pausedAt ? ` · paused: ${esc(r.pausedReason ?? '')}` : '';
    const muted =
      r.mutedUntil && r.mutedUntil > new Date().toISOString() ? ` · muted until ${esc(r.mutedUntil)}` : '';
    return `${code(r.domain)} · ${status}${when}${paused}${muted}`;
  });
  // Sections hold 3000 characters: one per 20 domains keeps well inside, and 50 blocks hold 1000 domains.
  const blocks = [];
  for (let i = 0; i < lines.length && blocks.length < 49; i += 20)
    blocks.push(section(lines.slice(i, i + 20).join('\n')));
  if (lines.length > 49 * 20) blocks.push(section(`…and ${lines.length - 49 * 20} more`));
  return {
    text: `This channel watches ${rows.length} domain(s).`,
    blocks: [section(`*This channel watches ${rows.length} domain(s)*`), ...blocks].slice(0, 50),
  };
}

export const list: Subcommand<undefined> = {
  usage: 'list',
  does: 'the domains this channel watches, with their last status',
  args: noArguments,
  run: async (c) => {
    const rows = await db(() => c.ctx.subscriptions.listChannel(c.scope.team, c.scope.channel));
    await c.ack({ response_type: 'ephemeral', ...listMessage(rows) });
  },
};
