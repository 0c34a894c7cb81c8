import { domainArgument, parseArgs, UsageError } from '../args.js';
import {
  LOG_DESTINATION,
  type SubscriptionStore,
  WATCH_LIST_TEAM,
  webhookDestination,
  webhookName,
} from '../store/subscriptions.js';
import { WEBHOOK_NAME } from './destinations.js';

export const WATCH_USAGE = `usage:
  mtasts watch add <domain> [--webhook NAME]      watch a domain: alerts to the log, or to a webhook of MTASTS_WEBHOOKS
  mtasts watch list                               the watch list, with each domain's last status
  mtasts watch remove <domain> [--webhook NAME]   stop watching (for that destination)
  mtasts watch mute <domain> [24h|90m|7d|off] [--webhook NAME]   silence alerts for a while (24h unless given)
`;

export interface WatchDeps {
  subscriptions: SubscriptionStore;
  /** The names MTASTS_WEBHOOKS gives. */
  webhooks: readonly string[];
  maxDomains: number;
  now: Date;
  /** "24h", "90m", "7d" in milliseconds, or null: the Slack command's rule (slack/commands/mute.ts). */
  parseDuration: (text: string) => number | null;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Where a watch-list entry sends alerts, in words. */
const where = (destination: string) => {
  const name = webhookName(destination);
  return name ? `webhook ${name}` : 'the log';
};

/** `--webhook NAME` as a destination (the log when not given); the name must be one MTASTS_WEBHOOKS gives. */
function destinationOf(flags: Map<string, string[]>, webhooks: readonly string[]): string {
  const names = flags.get('webhook') ?? [];
  if (names.length > 1) throw new UsageError('--webhook may be given once');
  const name = names[0];
  if (name === undefined) return LOG_DESTINATION;
  if (!WEBHOOK_NAME.test(name))
    throw new UsageError('--webhook takes a name of 1-40 letters, digits, "-" or "_"');
  if (!webhooks.includes(name)) {
    throw new UsageError(
      webhooks.length === 0
        ? `no webhook "${name}": MTASTS_WEBHOOKS names none (e.g. MTASTS_WEBHOOKS=${name}=https://hooks.slack.com/services/...)`
        : `no webhook "${name}" in MTASTS_WEBHOOKS (it names ${webhooks.join(', ')})`,
    );
  }
  return webhookDestination(name);
}

/** `mtasts watch …`: the command line's watch list. Returns the exit code (usage errors throw UsageError). */
export async function watchCommand(args: string[], d: WatchDeps): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add':
      return add(rest, d);
    case 'list':
      return list(rest, d);
    case 'remove':
      return remove(rest, d);
    case 'mute':
      return mute(rest, d);
    case undefined:
    case 'help':
      d.stdout(WATCH_USAGE);
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown watch command "${sub}"; use add, list, remove or mute`);
  }
}

async function add(args: string[], d: WatchDeps): Promise<number> {
  const { positional, flags } = parseArgs(args, { webhook: true });
  const domain = domainArgument(positional).ascii;
  const to = destinationOf(flags, d.webhooks);
  const r = await d.subscriptions.watch(WATCH_LIST_TEAM, to, domain, 'cli', d.maxDomains, d.now);
  switch (r.kind) {
    case 'added':
      d.stdout(
        `watching ${domain}: alerts to ${where(to)}${to === LOG_DESTINATION ? ' (npm start writes them)' : ''}\n`,
      );
      return 0;
    case 'exists':
      d.stdout(`${domain} is already watched, alerts to ${where(to)}\n`);
      return 0;
    case 'limit':
      d.stderr(
        `mtasts: the watch list holds ${r.limit} domains, the most allowed (MTASTS_MAX_DOMAINS_PER_TEAM)\n`,
      );
      return 1;
    default:
      d.stdout(
        `watching ${domain} again, alerts to ${where(to)} (it was paused: ${r.pausedReason ?? 'no reason'})\n`,
      );
      return 0;
  }
}

async function list(args: string[], d: WatchDeps): Promise<number> {
  const { positional } = parseArgs(args, {});
  if (positional.length > 0) throw new UsageError('watch list takes no arguments');
  const rows = await d.subscriptions.watchList();
  if (rows.length === 0) {
    d.stdout('the watch list is empty: add a domain with "npx mtasts watch add example.com"\n');
    return 0;
  }
  for (const s of rows) {
    const status = s.lastStatus ? `${s.lastStatus} (checked ${s.lastCheckedAt})` : 'not checked yet';
    const state = s.pausedAt
      ? `paused: ${s.pausedReason ?? ''}`
      : s.mutedUntil && Date.parse(s.mutedUntil) > d.now.getTime()
        ? `muted until ${s.mutedUntil}`
        : 'active';
    d.stdout(`${s.domain}\t${where(s.channelId)}\t${status}\t${state}\n`);
  }
  return 0;
}

async function remove(args: string[], d: WatchDeps): Promise<number> {
  const { positional, flags } = parseArgs(args, { webhook: true });
  const domain = domainArgument(positional).ascii;
  const to = destinationOf(flags, d.webhooks);
  if (!(await d.subscriptions.unwatch(WATCH_LIST_TEAM, to, domain))) {
    d.stderr(`mtasts: ${domain} is not watched with alerts to ${where(to)} (see "mtasts watch list")\n`);
    return 1;
  }
  d.stdout(`stopped watching ${domain} (alerts to ${where(to)})\n`);
  return 0;
}

async function mute(args: string[], d: WatchDeps): Promise<number> {
  const { positional, flags } = parseArgs(args, { webhook: true });
  const [name, duration, ...more] = positional;
  const domain = domainArgument(name === undefined ? [] : [name, ...more]).ascii;
  const to = destinationOf(flags, d.webhooks);
  const off = duration?.toLowerCase() === 'off';
  const ms = off ? 0 : d.parseDuration(duration ?? '24h');
  if (ms === null)
    throw new UsageError('give the duration as minutes, hours or days, at most 30d: 24h, 90m, 7d (or off)');
  const until = off ? null : new Date(d.now.getTime() + ms);
  if (!(await d.subscriptions.setMute(WATCH_LIST_TEAM, to, domain, until))) {
    d.stderr(`mtasts: ${domain} is not watched with alerts to ${where(to)} (see "mtasts watch list")\n`);
    return 1;
  }
  d.stdout(
    until
      ? `muted alerts about ${domain} to ${where(to)} until ${until.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n`
      : `unmuted alerts about ${domain} to ${where(to)}\n`,
  );
  return 0;
}
