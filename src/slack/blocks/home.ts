import { type Block, code, context, divider, esc, header, LIMITS, STATUS_EMOJI, section } from './common.js';
import { USAGE } from './help.js';

export interface HomeRow {
  domain: string;
  channels: string[];
  lastStatus: 'pass' | 'warn' | 'fail' | null;
  lastCheckedAt: string | null;
}

/** The App Home tab: usage, then the workspace's watched domains grouped by status (failing first), within 100 blocks. */
export function homeView(rows: HomeRow[]): { type: 'home'; blocks: Block[] } {
  const blocks: Block[] = [header('mtasts-bot'), section(USAGE), divider];
  if (rows.length === 0) {
    blocks.push(
      section(
        'No channel in this workspace watches a domain yet. Try `/mtasts watch example.com` in a channel.',
      ),
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
    for (let i = 0; i < members.length; i += 15) {
      if (used >= room) {
        left += members.length - i;
        continue;
      }
      const lines = members.slice(i, i + 15).map((r) => {
        const when = r.lastCheckedAt ? ` · checked ${esc(r.lastCheckedAt.replace(/\.\d{3}Z$/, 'Z'))}` : '';
        const status = r.lastStatus ? STATUS_EMOJI[r.lastStatus] : ':hourglass:';
        return `${status} ${code(r.domain)} · ${r.channels.map((c) => `<#${esc(c)}>`).join(' ')}${when}`;
      });
      blocks.push(section(lines.join('\n')));
      used++;
    }
  }
  if (left > 0)
    blocks.push(context(`…and ${left} more domains; \`/mtasts list\` in a channel shows its own.`));
  return { type: 'home', blocks };
}
