import type { AllMiddlewareArgs, RespondArguments, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { domainArgument, recordsRequest, UsageError } from '../../args.js';
import type { Report } from '../../core/check.js';
import { type Domain, parseDomain } from '../../core/domain.js';
import { RecordsInputError } from '../../generate/records.js';
import { recordsFor } from '../../generate/service.js';
import { DatabaseBusyError } from '../../store/busy.js';
import { reportActions } from '../blocks/actions.js';
import { helpMessage, listMessage, watchLimitText } from '../blocks/help.js';
import { recordsMessage } from '../blocks/records.js';
import { reportMessage } from '../blocks/report.js';
import { reportsMessage } from '../blocks/tlsrpt.js';
import { checkAndRemember, DB_BUSY_TEXT, db, rationed, type SlackContext } from '../context.js';
import { CommandInput, MALFORMED } from '../input.js';
import { openSetupModal } from '../views/setup.js';

type CommandArgs = SlackCommandMiddlewareArgs & AllMiddlewareArgs;

/** "24h", "90m", "7d" (at most 30 days) in milliseconds, or null. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,5})([mhd])$/i.exec(text.trim());
  if (!m) return null;
  const ms =
    Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'h').toLowerCase() as 'm' | 'h' | 'd'];
  return ms > 0 && ms <= 30 * 86_400_000 ? ms : null;
}

/** Splits the command text into words; quotes are not special (domains and flags hold none). */
export function words(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

const ephemeral = (text: string): RespondArguments => ({ response_type: 'ephemeral', text });

/** One subcommand call: the listener's arguments, the checked scope, and the words after the subcommand. */
interface Call {
  ctx: SlackContext;
  args: CommandArgs;
  scope: { team: string; channel: string; user: string };
  sub: string;
  rest: string[];
  triggerId: string;
}

/** The one domain the words name, or null once the user has been told what is wrong with them. */
async function oneDomain(c: Call): Promise<Domain | null> {
  try {
    return domainArgument(c.rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    await c.args.ack(ephemeral(`:warning: ${err.message}`));
    return null;
  }
}

/** Checks the domain and posts the report in the channel, with its buttons. */
async function postReport(c: Call, domain: Domain): Promise<void> {
  const report: Report = await checkAndRemember(c.ctx, domain);
  const watched = await db(() => c.ctx.subscriptions.get(c.scope.team, c.scope.channel, report.domain)).then(
    (s) => s !== undefined,
    () => false,
  );
  const actions = reportActions(
    { domain: report.domain, team: c.scope.team, channel: c.scope.channel },
    watched,
  );
  await c.args.respond({
    response_type: 'in_channel',
    replace_original: false,
    ...reportMessage(report, { extraBlocks: [actions] }),
  });
}

async function check(c: Call): Promise<void> {
  const domain = await oneDomain(c);
  if (!domain) return;
  await rationed(
    c.ctx,
    c.scope,
    (message) => c.args.ack(ephemeral(message)),
    async () => {
      await c.args.ack(
        ephemeral(`:hourglass_flowing_sand: Checking ${domain.ascii}… (DNS, policy, every MX host)`),
      );
      await postReport(c, domain);
    },
  );
}

async function setup(c: Call): Promise<void> {
  const domain = await oneDomain(c);
  if (!domain) return;
  await c.args.ack();
  const target = { domain: domain.ascii, team: c.scope.team, channel: c.scope.channel };
  const last = await db(() => c.ctx.checks.last(domain.ascii));
  await openSetupModal(c.args.client, c.ctx, c.triggerId, domain, target, last);
}

async function watch(c: Call): Promise<void> {
  const domain = await oneDomain(c);
  if (!domain) return;
  const { team, channel, user } = c.scope;
  const result = await db(() =>
    c.ctx.subscriptions.watch(team, channel, domain.ascii, user, c.ctx.maxDomainsPerTeam, c.ctx.now()),
  );
  if (result.kind === 'exists')
    return c.args.ack(ephemeral(`${domain.ascii} is already watched in this channel.`));
  if (result.kind === 'limit') return c.args.ack(ephemeral(watchLimitText(result.limit)));
  await c.args.ack({
    response_type: 'in_channel',
    text: `<@${user}> set this channel to watch ${domain.ascii}: it will hear when its MTA-STS or TLS-RPT setup changes or breaks.`,
  });
  // The first report is a check like any other: when the user's checks are used up, the monitor's pass brings it.
  const later = (message: string) =>
    c.args.respond({
      ...ephemeral(
        `${message} The first report of ${domain.ascii} was not run now; the monitor checks it on its schedule.`,
      ),
      replace_original: false,
    });
  await rationed(c.ctx, c.scope, later, () => postReport(c, domain));
}

async function unwatch(c: Call): Promise<void> {
  const domain = await oneDomain(c);
  if (!domain) return;
  const removed = await db(() => c.ctx.subscriptions.unwatch(c.scope.team, c.scope.channel, domain.ascii));
  await c.args.ack(
    removed
      ? {
          response_type: 'in_channel',
          text: `<@${c.scope.user}> stopped watching ${domain.ascii} in this channel.`,
        }
      : ephemeral(`${domain.ascii} is not watched in this channel (see \`/mtasts list\`).`),
  );
}

async function mute(c: Call): Promise<void> {
  const unmute = c.sub === 'unmute';
  const [name, duration, ...extra] = c.rest;
  const parsedDomain = parseDomain(name ?? '');
  if (!parsedDomain.ok || extra.length > 0) {
    const usage = unmute ? 'unmute example.com' : 'mute example.com 24h';
    const why = parsedDomain.ok ? 'too many words' : parsedDomain.error;
    return c.args.ack(ephemeral(`:warning: ${why}: \`/mtasts ${usage}\``));
  }
  const d = parsedDomain.domain.ascii;
  let until: Date | null = null;
  if (!unmute) {
    const ms = parseDuration(duration ?? '24h');
    if (ms === null)
      return c.args.ack(
        ephemeral(':warning: give the duration as minutes, hours or days, at most 30d: `24h`, `90m`, `7d`'),
      );
    until = new Date(c.ctx.now().getTime() + ms);
  }
  if (!(await db(() => c.ctx.subscriptions.setMute(c.scope.team, c.scope.channel, d, until)))) {
    return c.args.ack(ephemeral(`${d} is not watched in this channel (see \`/mtasts list\`).`));
  }
  await c.args.ack({
    response_type: 'in_channel',
    text: until
      ? `<@${c.scope.user}> muted alerts about ${d} in this channel until ${until.toISOString().replace(/\.\d{3}Z$/, 'Z')}.`
      : `<@${c.scope.user}> unmuted alerts about ${d} in this channel.`,
  });
}

async function reports(c: Call): Promise<void> {
  const [name, daysText, ...extra] = c.rest;
  const parsedDomain = parseDomain(name ?? '');
  const days = daysText === undefined ? 7 : /^\d{1,3}$/.test(daysText) ? Number(daysText) : Number.NaN;
  if (!parsedDomain.ok || extra.length > 0 || !(days >= 1 && days <= 365)) {
    const why = parsedDomain.ok ? 'give the number of days, 1 to 365' : parsedDomain.error;
    return c.args.ack(ephemeral(`:warning: ${why}: \`/mtasts reports example.com 7\``));
  }
  const d = parsedDomain.domain.ascii;
  // Reports name sending servers and addresses: only channels that watch the domain see them.
  if (!(await db(() => c.ctx.subscriptions.get(c.scope.team, c.scope.channel, d)))) {
    return c.args.ack(
      ephemeral(`Watch ${d} in this channel first (\`/mtasts watch ${d}\`) to see its TLS reports here.`),
    );
  }
  const since = new Date(c.ctx.now().getTime() - days * 86_400_000).toISOString();
  const summary = await db(() => c.ctx.tlsrpt.summary(d, since));
  await c.args.ack({ response_type: 'ephemeral', ...reportsMessage(summary, days) });
}

async function list(c: Call): Promise<void> {
  const rows = await db(() => c.ctx.subscriptions.listChannel(c.scope.team, c.scope.channel));
  await c.args.ack({ response_type: 'ephemeral', ...listMessage(rows) });
}

async function records(c: Call): Promise<void> {
  let parsed: ReturnType<typeof recordsRequest>;
  let domain: Domain;
  try {
    parsed = recordsRequest(c.rest);
    domain = domainArgument(parsed.positional);
  } catch (err) {
    if (err instanceof UsageError || err instanceof RecordsInputError) {
      return c.args.ack(ephemeral(`:warning: ${err.message}`));
    }
    throw err;
  }
  await rationed(
    c.ctx,
    c.scope,
    (message) => c.args.ack(ephemeral(message)),
    async () => {
      await c.args.ack(ephemeral(`:hourglass_flowing_sand: Preparing records for ${domain.ascii}…`));
      try {
        const result = await recordsFor(domain, parsed.request, c.ctx.engine);
        await c.args.respond({
          response_type: 'ephemeral',
          ...recordsMessage(result.plan, result.snippets, result.domainConnect),
        });
      } catch (err) {
        if (!(err instanceof RecordsInputError)) throw err;
        await c.args.respond(ephemeral(`:warning: ${err.message}`));
      }
    },
  );
}

const SUBCOMMANDS = new Map<string, (c: Call) => Promise<unknown>>([
  ['check', check],
  ['setup', setup],
  ['watch', watch],
  ['unwatch', unwatch],
  ['mute', mute],
  ['unmute', mute],
  ['reports', reports],
  ['list', list],
  ['records', records],
  ['help', (c) => c.args.ack({ response_type: 'ephemeral', ...helpMessage() })],
]);

/** After a failure: the apology (or "database busy") as the ack, or through response_url once acknowledged. */
async function apologize(c: Pick<Call, 'args' | 'scope' | 'sub'>, err: unknown): Promise<void> {
  const busy = err instanceof DatabaseBusyError;
  if (busy) c.args.logger.warn(`/mtasts ${c.sub} (team ${c.scope.team}): ${err.message}`);
  else
    c.args.logger.error(
      `/mtasts ${c.sub} failed (team ${c.scope.team}, channel ${c.scope.channel}, user ${c.scope.user}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  const answer = ephemeral(
    busy
      ? DB_BUSY_TEXT
      : ':sweat: Sorry, something went wrong on our side. It has been logged; please try again later.',
  );
  try {
    await c.args.ack(answer);
  } catch {
    // Already acknowledged: answer through response_url instead.
    await c.args.respond?.({ ...answer, replace_original: false }).catch(() => {});
  }
}

/**
 * `/mtasts check | watch | unwatch | list | records | help`. Every answer is scoped to the workspace and channel the
 * command came from. Slow work (a check) is acknowledged at once and answered through `response_url`; checks are
 * rationed per user and workspace (ctx.limiter). A payload whose fields are not what Slack sends is answered, not
 * thrown on.
 */
export function mtastsCommand(ctx: SlackContext) {
  return async (args: CommandArgs): Promise<void> => {
    const input = CommandInput.safeParse(args.command);
    if (!input.success) {
      args.logger.warn(
        `/mtasts: malformed command payload (${input.error.issues[0]?.path.join('.') ?? '?'})`,
      );
      await args.ack(ephemeral(MALFORMED)).catch(() => {});
      return;
    }
    const { team_id: team, channel_id: channel, user_id: user, text, trigger_id: triggerId } = input.data;
    const [word = 'help', ...rest] = words(text);
    const sub = word.toLowerCase();
    const call: Call = { ctx, args, scope: { team, channel, user }, sub, rest, triggerId };
    try {
      const handler = SUBCOMMANDS.get(sub);
      if (handler) await handler(call);
      else
        await args.ack({
          response_type: 'ephemeral',
          ...helpMessage(`Unknown subcommand "${word.slice(0, 40)}".`),
        });
    } catch (err) {
      await apologize(call, err);
    }
  };
}
