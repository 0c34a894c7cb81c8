import { UsageError } from '../../args.js';
import type { Domain } from '../../core/domain.js';
import { reportsMessage } from '../blocks/tlsrpt.js';
import { db } from '../context.js';
import { domainAnd, ephemeral, type Subcommand } from './subcommand.js';

/** reports' arguments: the domain, and how many days back (7 unless given). */
function reportsArgs(words: string[]): { domain: Domain; days: number } {
  const { domain, extra } = domainAnd(words);
  const days = extra === undefined ? 7 : /^\d{1,3}$/.test(extra) ? Number(extra) : Number.NaN;
  if (!(days >= 1 && days <= 365)) throw new UsageError('give the number of days, 1 to 365');
  return { domain, days };
}

export const reports: Subcommand<{ domain: Domain; days: number }> = {
  usage: 'reports example.com [days]',
  does: 'what senders reported about TLS to this domain (TLS-RPT), over 7 days unless told',
  args: reportsArgs,
  run: async (c, { domain, days }) => {
    const d = domain.ascii;
    // Reports name sending servers and addresses: only channels that watch the domain see them.
    if (!(await db(() => c.ctx.subscriptions.get(c.scope.team, c.scope.channel, d)))) {
      return c.ack(
        ephemeral(`Watch ${d} in this channel first (\`/mtasts watch ${d}\`) to see its TLS reports here.`),
      );
    }
    const since = new Date(c.ctx.now().getTime() - days * 86_400_000).toISOString();
    const summary = await db(() => c.ctx.tlsrpt.summary(d, since));
    await c.ack({ response_type: 'ephemeral', ...reportsMessage(summary, days) });
  },
};
