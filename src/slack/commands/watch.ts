import type { Domain } from '../../core/domain.js';
import { esc } from '../blocks/common.js';
import { db, rationed } from '../context.js';
import { postReport } from './check.js';
import { type Call, ephemeral, oneDomain, type Subcommand } from './subcommand.js';

/** Said when a workspace has reached its cap of watched domains (by the command and the Watch button). */
export function watchLimitText(limit: number): string {
  return `:no_entry: This workspace already watches ${limit} domains, its limit. Unwatch one first.`;
}

/** The first report is a check like any other: when the user's checks are used up, the monitor's pass brings it. */
function firstReport(c: Call, domain: Domain): Promise<unknown> {
  const later = (message: string) =>
    c.respond({
      ...ephemeral(
        `${message} The first report of ${domain.ascii} was not run now; the monitor checks it on its schedule.`,
      ),
      replace_original: false,
    });
  return rationed(c.ctx, c.scope, later, () => postReport(c, domain));
}

/** Slack expects the command acknowledged within 3 s: asking whether the bot may post here gets half of that. */
const MEMBERSHIP_DEADLINE_MS = 1500;

/**
 * Whether the bot can post in a channel, as Slack's conversations.info tells it (channels:read, groups:read): a
 * channel it is not in, or a private one it cannot see, is `out`. Anything else (a direct message, a missing scope,
 * Slack slow to answer) is not known, and the watch goes ahead as before.
 */
export async function botMembership(
  client: Pick<Call['client'], 'conversations'>,
  channel: string,
): Promise<'in' | 'out' | 'unknown'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'unknown'>((resolve) => {
    timer = setTimeout(() => resolve('unknown'), MEMBERSHIP_DEADLINE_MS);
  });
  const asked = client.conversations.info({ channel }).then(
    (res) => (res.channel?.is_member === true ? 'in' : res.channel?.is_member === false ? 'out' : 'unknown'),
    (err: { data?: { error?: string } }) => (err?.data?.error === 'channel_not_found' ? 'out' : 'unknown'),
  );
  try {
    return await Promise.race([asked, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Said instead of watching where the bot cannot post: alerts would fail there. */
export function notMemberText(domain: string): string {
  return `:no_entry: I am not a member of this channel, so I could not post alerts about ${domain} here; nothing was set up. Invite me with \`/invite @mtasts\`, then run \`/mtasts watch ${domain}\` again. (A direct message between people cannot hold the bot: watch from a channel.)`;
}

export const watch: Subcommand<Domain> = {
  usage: 'watch example.com',
  does: 'this channel hears when something changes',
  args: oneDomain,
  run: async (c, domain) => {
    const { team, channel, user } = c.scope;
    if ((await botMembership(c.client, channel)) === 'out')
      return c.ack(ephemeral(notMemberText(domain.ascii)));
    const result = await db(() =>
      c.ctx.subscriptions.watch(team, channel, domain.ascii, user, c.ctx.maxDomainsPerTeam, c.ctx.now()),
    );
    if (result.kind === 'exists')
      return c.ack(ephemeral(`${domain.ascii} is already watched in this channel.`));
    if (result.kind === 'limit') return c.ack(ephemeral(watchLimitText(result.limit)));
    const what =
      result.kind === 'resumed'
        ? `resumed the alerts about ${domain.ascii} in this channel (they were paused${result.pausedReason ? `: ${esc(result.pausedReason)}` : ''})`
        : `set this channel to watch ${domain.ascii}: it will hear when its MTA-STS or TLS-RPT setup changes or breaks`;
    await c.ack({ response_type: 'in_channel', text: `<@${user}> ${what}.` });
    await firstReport(c, domain);
  },
};
