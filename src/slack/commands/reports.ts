import { UsageError } from '../../args.js';
import type { Domain } from '../../core/domain.js';
import { type Message, section } from '../blocks/common.js';
import { mailboxBlocks } from '../blocks/mailbox.js';
import { reportsMessage } from '../blocks/tlsrpt.js';
import { db, mailboxFor } from '../context.js';
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
    // The operator (of a single workspace, or of MTASTS_OPERATOR_CHANNEL's with OAuth) also sees the mailbox's status.
    const mailbox = await mailboxFor(c.ctx, c.scope.team);
    const more = mailbox ? mailboxBlocks(mailbox) : [];
    // Reports name sending servers and addresses: only channels that watch the domain see them.
    if (!(await db(() => c.ctx.subscriptions.get(c.scope.team, c.scope.channel, d)))) {
      const text = `Watch ${d} in this channel first (\`/mtasts watch ${d}\`) to see its TLS reports here.`;
      const answer: Message = { text, blocks: [section(text), ...more] };
      return c.ack(mailbox ? { response_type: 'ephemeral', ...answer } : ephemeral(text));
    }
    const since = new Date(c.ctx.now().getTime() - days * 86_400_000).toISOString();
    const summary = await db(() => c.ctx.tlsrpt.summary(d, since));
    const message = reportsMessage(summary, days);
    message.blocks.push(...more);
    await c.ack({ response_type: 'ephemeral', ...message });
  },
};
