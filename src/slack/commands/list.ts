import type { ChannelDomain } from '../../store/subscriptions.js';
import { code, esc, type Message, quoted, STATUS_EMOJI, section } from '../blocks/common.js';
import { slackDate } from '../blocks/report.js';
import { db } from '../context.js';
import { noArguments, type Subcommand } from './subcommand.js';

export interface PausedSubscription {
  domain: string;
  channelId: string;
  pausedAt: string | null;
  pausedReason: string | null;
}

/**
 * Why a subscription is paused and how to resume it, in words. The reason is stored as the delivery worker wrote it
 * ("alerts cannot be posted: not_in_channel") or the uninstall did ("uninstalled: …"). `where` names the channel when
 * this is read elsewhere (App Home); in the channel itself it says "here".
 */
export function pauseExplained(s: PausedSubscription, where: 'here' | 'there' = 'here'): string {
  const reason = s.pausedReason ?? '';
  const since = s.pausedAt ? ` since ${slackDate(s.pausedAt)}` : '';
  const inChannel = where === 'here' ? 'here' : `in <#${esc(s.channelId)}>`;
  const again = `\`/mtasts watch ${esc(s.domain)}\` ${where === 'here' ? 'again' : 'there'}`;
  const paused = `:double_vertical_bar: *Paused*${since}`;
  if (/not_in_channel|channel_not_found/.test(reason))
    return `${paused}: the bot is not a member of ${where === 'here' ? 'this channel' : `<#${esc(s.channelId)}>`}, so its alerts could not be posted. To resume: \`/invite @mtasts\` ${inChannel}, then ${again}.`;
  if (/archived/.test(reason))
    return `${paused}: the channel was archived. To resume: unarchive it, \`/invite @mtasts\` ${inChannel}, then ${again}.`;
  if (/^uninstalled|not installed/.test(reason))
    return `${paused}: the app was removed from this workspace; installing it again resumes the alerts.`;
  return `${paused}: alerts could not be posted (${quoted(reason, 100)}). To resume: ${again}.`;
}

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
    const when = r.lastCheckedAt ? ` · checked ${slackDate(r.lastCheckedAt)}` : '';
    const muted =
      r.mutedUntil && r.mutedUntil > new Date().toISOString()
        ? ` · muted until ${slackDate(r.mutedUntil)}`
        : '';
    // A paused subscription gets no alerts: it says so on a line of its own, with why and how to resume.
    const paused = r.pausedAt ? `\n${pauseExplained(r)}` : '';
    return `${code(r.domain)} · ${status}${when}${muted}${paused}`;
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
