import { domainArgument, recordsRequest } from '../../args.js';
import type { Domain } from '../../core/domain.js';
import { RecordsInputError, type RecordsRequest, type RolloutHistory } from '../../generate/records.js';
import { recordsFor } from '../../generate/service.js';
import { recordsMessage } from '../blocks/records.js';
import { db, rationed, type SlackContext } from '../context.js';
import { type Call, ephemeral, type Subcommand } from './subcommand.js';

interface RecordsArgs {
  domain: Domain;
  request: RecordsRequest;
}

/** The flags of `mtasts records`, read by the same function as the CLI's. */
function recordsArgs(words: string[]): RecordsArgs {
  const { positional, request } = recordsRequest(words);
  return { domain: domainArgument(positional), request };
}

/** Prepares the records (the domain's current state is looked up) and answers only to the user. */
async function answerRecords(c: Call, { domain, request }: RecordsArgs): Promise<void> {
  await c.ack(ephemeral(`:hourglass_flowing_sand: Preparing records for ${domain.ascii}…`));
  try {
    const history = await rolloutHistoryOf(c.ctx, domain.ascii);
    const result = await recordsFor(domain, request, c.ctx.engine, history);
    await c.respond({
      response_type: 'ephemeral',
      ...recordsMessage(result.plan, result.snippets, result.domainConnect),
    });
  } catch (err) {
    if (!(err instanceof RecordsInputError)) throw err;
    await c.respond(ephemeral(`:warning: ${err.message}`));
  }
}

/**
 * What the runtime's stores know of a domain for the rollout rule: whether it is watched, the monitor's clean-since
 * mark for it, and the last TLS-RPT report of failed sessions. Without the monitor's store (a context built without
 * it) no clean days are counted: the plan keeps testing and says that the monitor counts them.
 */
export function rolloutHistoryOf(ctx: SlackContext, domain: string): Promise<RolloutHistory> {
  return db(async () => {
    const watched = (await ctx.subscriptions.forDomain(domain)).length > 0;
    const monitor = ctx.monitorState;
    return {
      watched,
      monitorRead: monitor !== undefined,
      cleanSince: watched && monitor ? (await monitor.loadState(domain)).cleanSince : null,
      lastReportedFailureAt: await ctx.tlsrpt.lastFailureAt(domain),
    };
  });
}

export const records: Subcommand<RecordsArgs> = {
  usage: 'records example.com [--mode testing|enforce|none] [--max-age N] [--mx host] [--rua uri] [--id ID]',
  does: 'copy-ready DNS records and policy',
  args: recordsArgs,
  run: (c, args) =>
    rationed(
      c.ctx,
      c.scope,
      (message) => c.ack(ephemeral(message)),
      () => answerRecords(c, args),
    ),
};
