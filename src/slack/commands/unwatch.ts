import type { Domain } from '../../core/domain.js';
import { db } from '../context.js';
import { ephemeral, oneDomain, type Subcommand } from './subcommand.js';

export const unwatch: Subcommand<Domain> = {
  usage: 'unwatch example.com',
  does: 'stop watching',
  args: oneDomain,
  run: async (c, domain) => {
    const removed = await db(() => c.ctx.subscriptions.unwatch(c.scope.team, c.scope.channel, domain.ascii));
    await c.ack(
      removed
        ? {
            response_type: 'in_channel',
            text: `<@${c.scope.user}> stopped watching ${domain.ascii} in this channel.`,
          }
        : ephemeral(`${domain.ascii} is not watched in this channel (see \`/mtasts list\`).`),
    );
  },
};
