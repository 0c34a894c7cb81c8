import type { PolicyMode } from '../../core/policy.js';
import { type PausedSubscription, pauseExplained } from '../commands/list.js';
import {
  type Block,
  clip,
  code,
  context,
  divider,
  esc,
  header,
  LIMITS,
  STATUS_EMOJI,
  section,
} from './common.js';
import { USAGE } from './help.js';
import { type MailboxView, mailboxBlocks } from './mailbox.js';
import { slackDate } from './report.js';

export interface HomeRow {
  domain: string;
  channels: string[];
  lastStatus: 'pass' | 'warn' | 'fail' | null;
  lastCheckedAt: string | null;
  mode?: PolicyMode | null;
  /** The soonest certificate expiry among the policy host and the MX hosts. */
  nextExpiry?: string | null;
  /** What its last check found failing (or warned about): "title (subject)", worst first. */
  problems?: string[];
  /** Its subscriptions in the user's channels that are paused, with why. */
  paused?: PausedSubscription[];
}

/** The action id of each domain's menu in App Home. */
export const HOME_MENU = 'mtasts_home_menu';

/**
 * The App Home tab: usage, then the domains watched by the user's channels grouped by status (failing first), one
 * block each with its mode, next certificate expiry, last check and a menu (Re-check, Show records), within 100 blocks.
 */
export function homeView(
  rows: HomeRow[],
  team = '',
  notice: string | null = null,
  mailbox: MailboxView | null = null,
): { type: 'home'; blocks: Block[] } {
  const blocks: Block[] = [header('mtasts-bot'), section(USAGE), divider];
  if (notice) blocks.push(section(`:information_source: ${esc(notice)}`));
  if (mailbox) blocks.push(...mailboxBlocks(mailbox), divider);
  if (rows.length === 0) {
    if (!notice)
      blocks.push(
        section('No channel you are in watches a domain yet. Try `/mtasts watch example.com` in a channel.'),
      );
    return { type: 'home', blocks };
  }
  const groups: [string, (r: HomeRow) => boolean][] = [
    [':x: *Failing*', (r) => r.lastStatus === 'fail'],
    [':warning: *Warnings*', (r) => r.lastStatus === 'warn'],
    [':white_check_mark: *Healthy*', (r) => r.lastStatus === 'pass'],
    [':hourglass: *Not checked yet*', (r) => r.lastStatus === null],
  ];
  const room = LIMITS.blocksPerView - blocks.length - groups.length - 1;
  let used = 0;
  let left = 0;
  for (const [title, match] of groups) {
    const members = rows.filter(match);
    if (members.length === 0) continue;
    blocks.push(section(`${title} (${members.length})`));
    for (const r of members) {
      if (used >= room) {
        left++;
        continue;
      }
      blocks.push(domainBlock(r, team));
      used++;
    }
  }
  if (left > 0)
    blocks.push(context(`…and ${left} more domains; \`/mtasts list\` in a channel shows its own.`));
  return { type: 'home', blocks };
}

function domainBlock(r: HomeRow, team: string): Block {
  const facts = [
    r.mode ? `mode ${r.mode}` : 'no valid policy',
    r.nextExpiry ? `next certificate expiry ${slackDate(r.nextExpiry)}` : null,
    r.lastCheckedAt ? `checked ${slackDate(r.lastCheckedAt)}` : 'not checked yet',
  ].filter(Boolean);
  const problems = r.problems?.length
    ? [`${r.lastStatus === 'fail' ? 'Failing' : 'Warnings'}: ${r.problems.map(esc).join(' · ')}`]
    : [];
  const paused = (r.paused ?? []).map((p) => pauseExplained(p, 'there'));
  const status = r.lastStatus ? STATUS_EMOJI[r.lastStatus] : ':hourglass:';
  const option = (a: string, text: string) => ({
    text: { type: 'plain_text', text },
    value: JSON.stringify({ a, d: r.domain, t: team }),
  });
  return {
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: clip(
        [
          `${status} ${code(r.domain)} · ${r.channels.map((c) => `<#${esc(c)}>`).join(' ')}`,
          facts.join(' · '),
          ...problems,
          ...paused,
        ].join('\n'),
        LIMITS.sectionText,
      ),
    },
    accessory: {
      type: 'overflow',
      action_id: HOME_MENU,
      options: [option('recheck', 'Re-check'), option('records', 'Show records')],
    },
  };
}
