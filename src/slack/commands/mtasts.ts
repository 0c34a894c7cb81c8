import type { AllMiddlewareArgs, RespondArguments, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { domainArgument, recordsRequest, UsageError } from '../../args.js';
import type { Report } from '../../core/check.js';
import { type Domain, parseDomain } from '../../core/domain.js';
import { RecordsInputError } from '../../generate/records.js';
import { recordsFor } from '../../generate/service.js';
import { reportActions } from '../blocks/actions.js';
import { helpMessage, listMessage, watchLimitText } from '../blocks/help.js';
import { recordsMessage } from '../blocks/records.js';
import { reportMessage } from '../blocks/report.js';
import { reportsMessage } from '../blocks/tlsrpt.js';
import { checkAndRemember, type SlackContext } from '../context.js';
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

/**
 * `/mtasts check | watch | unwatch | list | records | help`. Every answer is scoped to the workspace and channel the
 * command came from. Slow work (a check) is acknowledged at once and answered through `response_url`.
 */
export function mtastsCommand(ctx: SlackContext) {
  return async (args: CommandArgs): Promise<void> => {
    const { command, ack, respond, logger } = args;
    const [sub = 'help', ...rest] = words(command.text ?? '');
    const scope = { team: command.team_id, channel: command.channel_id, user: command.user_id };
    const withActions = (report: Report) =>
      reportMessage(report, {
        extraBlocks: [
          reportActions(
            { domain: report.domain, team: scope.team, channel: scope.channel },
            ctx.subscriptions.get(scope.team, scope.channel, report.domain) !== undefined,
          ),
        ],
      });
    /** The one domain the words name, or null once the user has been told what is wrong with them. */
    const oneDomain = async (): Promise<Domain | null> => {
      try {
        return domainArgument(rest);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        await ack(ephemeral(`:warning: ${err.message}`));
        return null;
      }
    };
    const postReport = async (domain: Domain) =>
      respond({
        response_type: 'in_channel',
        replace_original: false,
        ...withActions(await checkAndRemember(ctx, domain)),
      });

    try {
      switch (sub.toLowerCase()) {
        case 'check': {
          const domain = await oneDomain();
          if (!domain) return;
          await ack(
            ephemeral(`:hourglass_flowing_sand: Checking ${domain.ascii}… (DNS, policy, every MX host)`),
          );
          await postReport(domain);
          return;
        }
        case 'setup': {
          const domain = await oneDomain();
          if (!domain) return;
          await ack();
          const target = { domain: domain.ascii, team: scope.team, channel: scope.channel };
          await openSetupModal(
            args.client,
            ctx,
            command.trigger_id,
            domain,
            target,
            ctx.checks.last(domain.ascii),
          );
          return;
        }
        case 'watch': {
          const domain = await oneDomain();
          if (!domain) return;
          const result = ctx.subscriptions.watch(
            scope.team,
            scope.channel,
            domain.ascii,
            scope.user,
            ctx.maxDomainsPerTeam,
            ctx.now(),
          );
          if (result.kind === 'exists')
            return await ack(ephemeral(`${domain.ascii} is already watched in this channel.`));
          if (result.kind === 'limit') {
            return await ack(ephemeral(watchLimitText(result.limit)));
          }
          await ack({
            response_type: 'in_channel',
            text: `<@${scope.user}> set this channel to watch ${domain.ascii}: it will hear when its MTA-STS or TLS-RPT setup changes or breaks.`,
          });
          await postReport(domain);
          return;
        }
        case 'unwatch': {
          const domain = await oneDomain();
          if (!domain) return;
          const removed = ctx.subscriptions.unwatch(scope.team, scope.channel, domain.ascii);
          return await ack(
            removed
              ? {
                  response_type: 'in_channel',
                  text: `<@${scope.user}> stopped watching ${domain.ascii} in this channel.`,
                }
              : ephemeral(`${domain.ascii} is not watched in this channel (see \`/mtasts list\`).`),
          );
        }
        case 'mute':
        case 'unmute': {
          const unmute = sub.toLowerCase() === 'unmute';
          const [name, duration, ...extra] = rest;
          const parsedDomain = parseDomain(name ?? '');
          if (!parsedDomain.ok || extra.length > 0) {
            return await ack(
              ephemeral(
                `:warning: ${parsedDomain.ok ? 'too many words' : parsedDomain.error}: \`/mtasts ${unmute ? 'unmute example.com' : 'mute example.com 24h'}\``,
              ),
            );
          }
          const d = parsedDomain.domain.ascii;
          let until: Date | null = null;
          if (!unmute) {
            const ms = parseDuration(duration ?? '24h');
            if (ms === null)
              return await ack(
                ephemeral(
                  ':warning: give the duration as minutes, hours or days, at most 30d: `24h`, `90m`, `7d`',
                ),
              );
            until = new Date(ctx.now().getTime() + ms);
          }
          if (!ctx.subscriptions.setMute(scope.team, scope.channel, d, until)) {
            return await ack(ephemeral(`${d} is not watched in this channel (see \`/mtasts list\`).`));
          }
          return await ack({
            response_type: 'in_channel',
            text: until
              ? `<@${scope.user}> muted alerts about ${d} in this channel until ${until.toISOString().replace(/\.\d{3}Z$/, 'Z')}.`
              : `<@${scope.user}> unmuted alerts about ${d} in this channel.`,
          });
        }
        case 'reports': {
          const [name, daysText, ...extra] = rest;
          const parsedDomain = parseDomain(name ?? '');
          const days =
            daysText === undefined ? 7 : /^\d{1,3}$/.test(daysText) ? Number(daysText) : Number.NaN;
          if (!parsedDomain.ok || extra.length > 0 || !(days >= 1 && days <= 365)) {
            const why = parsedDomain.ok ? 'give the number of days, 1 to 365' : parsedDomain.error;
            return await ack(ephemeral(`:warning: ${why}: \`/mtasts reports example.com 7\``));
          }
          const d = parsedDomain.domain.ascii;
          // Reports name sending servers and addresses: only channels that watch the domain see them.
          if (!ctx.subscriptions.get(scope.team, scope.channel, d)) {
            return await ack(
              ephemeral(
                `Watch ${d} in this channel first (\`/mtasts watch ${d}\`) to see its TLS reports here.`,
              ),
            );
          }
          const since = new Date(ctx.now().getTime() - days * 86_400_000).toISOString();
          return await ack({
            response_type: 'ephemeral',
            ...reportsMessage(ctx.tlsrpt.summary(d, since), days),
          });
        }
        case 'list':
          return await ack({
            response_type: 'ephemeral',
            ...listMessage(ctx.subscriptions.listChannel(scope.team, scope.channel)),
          });
        case 'records': {
          let parsed: ReturnType<typeof recordsRequest>;
          let domain: Domain;
          try {
            parsed = recordsRequest(rest);
            domain = domainArgument(parsed.positional);
          } catch (err) {
            if (err instanceof UsageError || err instanceof RecordsInputError) {
              return await ack(ephemeral(`:warning: ${err.message}`));
            }
            throw err;
          }
          await ack(ephemeral(`:hourglass_flowing_sand: Preparing records for ${domain.ascii}…`));
          try {
            const result = await recordsFor(domain, parsed.request, ctx.engine);
            await respond({
              response_type: 'ephemeral',
              ...recordsMessage(result.plan, result.snippets, result.domainConnect),
            });
          } catch (err) {
            if (err instanceof RecordsInputError)
              return void (await respond(ephemeral(`:warning: ${err.message}`)));
            throw err;
          }
          return;
        }
        case 'help':
          return await ack({ response_type: 'ephemeral', ...helpMessage() });
        default:
          return await ack({
            response_type: 'ephemeral',
            ...helpMessage(`Unknown subcommand "${sub.slice(0, 40)}".`),
          });
      }
    } catch (err) {
      logger.error(
        `/mtasts ${sub} failed (team ${scope.team}, channel ${scope.channel}, user ${scope.user}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      const apology = ephemeral(
        ':sweat: Sorry, something went wrong on our side. It has been logged; please try again later.',
      );
      try {
        await ack(apology);
      } catch {
        // Already acknowledged: answer through response_url instead.
        await respond(apology).catch(() => {});
      }
    }
  };
}
