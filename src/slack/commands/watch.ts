import type { Domain } from '../../core/domain.js';
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

export const watch: Subcommand<Domain> = {
  usage: 'watch example.com',
  does: 'this channel hears when something changes',
  args: oneDomain,
  run: async (c, domain) => {
    const { team, channel, user } = c.scope;
    const result = await db(() =>
      c.ctx.subscriptions.watch(team, channel, domain.ascii, user, c.ctx.maxDomainsPerTeam, c.ctx.now()),
    );
    if (result.kind === 'exists')
      return c.ack(ephemeral(`${domain.ascii} is already watched in this channel.`));
    if (result.kind === 'limit') return c.ack(ephemeral(watchLimitText(result.limit)));
    await c.ack({
      response_type: 'in_channel',
      text: `<@${user}> set this channel to watch ${domain.ascii}: it will hear when its MTA-STS or TLS-RPT setup changes or breaks.`,
    });
    await firstReport(c, domain);
  },
};
