import { UsageError } from '../../args.js';
import type { Domain } from '../../core/domain.js';
import { db } from '../context.js';
import { type Call, domainAnd, ephemeral, oneDomain, type Subcommand } from './subcommand.js';

/** "24h", "90m", "7d" (at most 30 days) in milliseconds, or null. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,5})([mhd])$/i.exec(text.trim());
  if (!m) return null;
  const ms =
    Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'h').toLowerCase() as 'm' | 'h' | 'd'];
  return ms > 0 && ms <= 30 * 86_400_000 ? ms : null;
}

/** mute's arguments: the domain, and for how long (24 hours unless given). */
function muteArgs(words: string[]): { domain: Domain; ms: number } {
  const { domain, extra } = domainAnd(words);
  const ms = parseDuration(extra ?? '24h');
  if (ms === null) {
    throw new UsageError('give the duration as minutes, hours or days, at most 30d: `24h`, `90m`, `7d`');
  }
  return { domain, ms };
}

/** Mutes this channel's alerts about the domain until a time, or unmutes them (null). */
async function setMute(c: Call, domain: Domain, until: Date | null): Promise<unknown> {
  const d = domain.ascii;
  if (!(await db(() => c.ctx.subscriptions.setMute(c.scope.team, c.scope.channel, d, until)))) {
    return c.ack(ephemeral(`${d} is not watched in this channel (see \`/mtasts list\`).`));
  }
  return c.ack({
    response_type: 'in_channel',
    text: until
      ? `<@${c.scope.user}> muted alerts about ${d} in this channel until ${until.toISOString().replace(/\.\d{3}Z$/, 'Z')}.`
      : `<@${c.scope.user}> unmuted alerts about ${d} in this channel.`,
  });
}

export const mute: Subcommand<{ domain: Domain; ms: number }> = {
  usage: 'mute example.com [duration]',
  does: 'silence alerts in this channel for a while: `90m`, `24h` (the default), `7d`, at most 30 days',
  args: muteArgs,
  run: (c, { domain, ms }) => setMute(c, domain, new Date(c.ctx.now().getTime() + ms)),
};

export const unmute: Subcommand<Domain> = {
  usage: 'unmute example.com',
  does: 'alerts again in this channel',
  args: oneDomain,
  run: (c, domain) => setMute(c, domain, null),
};
