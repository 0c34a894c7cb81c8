import type { ChannelDomain } from '../../store/subscriptions.js';
import { code, esc, type Message, STATUS_EMOJI, section } from './common.js';

export const USAGE = [
  '`/mtasts check example.com` — full MTA-STS and TLS-RPT check, explained',
  '`/mtasts watch example.com` — this channel hears when something changes',
  '`/mtasts unwatch example.com` — stop watching',
  '`/mtasts list` — the domains this channel watches, with their last status',
  '`/mtasts mute example.com 24h` / `/mtasts unmute example.com` — silence alerts in this channel for a while',
  '`/mtasts records example.com [--mode testing|enforce] [--mx host] [--rua uri]` — copy-ready DNS records and policy',
  '`/mtasts setup example.com` — the same, guided, in a form',
  '`/mtasts reports example.com [days]` — what senders reported about TLS to this domain (TLS-RPT)',
  '`/mtasts help` — this list',
].join('\n');

export function helpMessage(prefix?: string): Message {
  const intro = prefix ? `${esc(prefix)}\n\n` : '';
  return {
    text: 'mtasts commands',
    blocks: [section(`${intro}*mtasts* keeps MTA-STS and TLS-RPT healthy.\n${USAGE}`)],
  };
}

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

/** Said when a workspace has reached its cap of watched domains. */
export function watchLimitText(limit: number): string {
  return `:no_entry: This workspace already watches ${limit} domains, its limit. Unwatch one first.`;
}
