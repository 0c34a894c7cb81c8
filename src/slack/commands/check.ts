import type { Report } from '../../core/check.js';
import type { Domain } from '../../core/domain.js';
import { reportActions } from '../blocks/actions.js';
import { reportMessage } from '../blocks/report.js';
import { checkAndRemember, db, rationed } from '../context.js';
import { type Call, ephemeral, oneDomain, type Subcommand } from './subcommand.js';

/** Checks the domain and posts the report in the channel, with its buttons. */
export async function postReport(c: Call, domain: Domain): Promise<void> {
  const report: Report = await checkAndRemember(c.ctx, domain);
  const watched = await db(() => c.ctx.subscriptions.get(c.scope.team, c.scope.channel, report.domain)).then(
    (s) => s !== undefined,
    () => false,
  );
  const actions = reportActions(
    { domain: report.domain, team: c.scope.team, channel: c.scope.channel },
    watched,
  );
  await c.respond({
    response_type: 'in_channel',
    replace_original: false,
    ...reportMessage(report, { extraBlocks: [actions] }),
  });
}

export const check: Subcommand<Domain> = {
  usage: 'check example.com',
  does: 'full MTA-STS and TLS-RPT check, explained',
  args: oneDomain,
  run: (c, domain) =>
    rationed(
      c.ctx,
      c.scope,
      (message) => c.ack(ephemeral(message)),
      async () => {
        await c.ack(
          ephemeral(`:hourglass_flowing_sand: Checking ${domain.ascii}… (DNS, policy, every MX host)`),
        );
        await postReport(c, domain);
      },
    ),
};
