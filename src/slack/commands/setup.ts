import type { Domain } from '../../core/domain.js';
import { db } from '../context.js';
import { openSetupModal } from '../views/setup.js';
import { oneDomain, type Subcommand } from './subcommand.js';

export const setup: Subcommand<Domain> = {
  usage: 'setup example.com',
  does: 'the same, guided, in a form',
  args: oneDomain,
  run: async (c, domain) => {
    await c.ack();
    const target = { domain: domain.ascii, team: c.scope.team, channel: c.scope.channel };
    const last = await db(() => c.ctx.checks.last(domain.ascii));
    await openSetupModal(c.client, c.ctx, c.triggerId, domain, target, last);
  },
};
