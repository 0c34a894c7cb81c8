import type { AllMiddlewareArgs, RespondArguments } from '@slack/bolt';
import { domainArgument, UsageError } from '../../args.js';
import { type Domain, parseDomain } from '../../core/domain.js';
import type { PolicyMode } from '../../core/policy.js';
import { ROLLOUT_WINDOW_MS } from '../../core/rollout.js';
import { parseTlsRptRecord } from '../../core/tlsrpt-record.js';
import type { Engine } from '../../engine.js';
import { applyUrl } from '../../generate/domain-connect.js';
import { type DomainConnectOutcome, domainConnectDiscovery, noLinkReason } from '../../generate/service.js';
import { relativeName } from '../../generate/steps.js';
import { findZone } from '../../generate/zone.js';
import { enforceVerdict } from '../../hosting/policy-plan.js';
import type { AddOptions, HostingRecord, PolicyChangeRequest, ShowResult } from '../../hosting/service.js';
import type { ButtonScope } from '../blocks/actions.js';
import { esc } from '../blocks/common.js';
import { HOSTING_OFF_TEXT, type HostView, hostListMessage, hostMessage } from '../blocks/hosting.js';
import { db, type HostingContext, rationed, type SlackContext } from '../context.js';
import { rolloutHistoryOf } from './records.js';
import { ephemeral, type Subcommand } from './subcommand.js';
import { botMembership } from './watch.js';

/** What `/mtasts host example.com …` asks for: enroll (or show when enrolled), look at DNS, change, apply, remove. */
export type HostAction =
  | { kind: 'enroll'; options?: AddOptions }
  | { kind: 'show' | 'check' | 'apply' | 'remove' }
  | { kind: 'set'; change: PolicyChangeRequest };

export type HostArgs = { kind: 'list' } | { kind: 'domain'; domain: Domain; action: HostAction };

const MODES = ['testing', 'enforce', 'none'];
const ACTIONS_TEXT = 'show, check, mode testing|enforce|none, max-age N, mx host,…, apply or remove';

/** Reads `host`, `host example.com` and `host example.com <action>`. */
export function hostArgs(words: string[]): HostArgs {
  const [name, verb, ...rest] = words;
  if (name === undefined) return { kind: 'list' };
  const domain = domainArgument([name]);
  const one = (action: HostAction): HostArgs => {
    if (rest.length > 0) throw new UsageError(`too many words after "${verb}"`);
    return { kind: 'domain', domain, action };
  };
  switch (verb?.toLowerCase()) {
    case undefined:
      return one({ kind: 'enroll' });
    case 'show':
    case 'check':
    case 'apply':
    case 'remove':
      return one({ kind: verb.toLowerCase() as 'show' });
    case 'mode': {
      const mode = rest.shift()?.toLowerCase();
      if (!mode || !MODES.includes(mode)) throw new UsageError('mode is testing, enforce or none');
      return one({ kind: 'set', change: { mode: mode as PolicyMode } });
    }
    case 'max-age': {
      const value = rest.shift() ?? '';
      if (!/^\d{1,10}$/.test(value)) throw new UsageError('max-age is a whole number of seconds');
      return one({ kind: 'set', change: { maxAge: Number(value) } });
    }
    case 'mx': {
      const mx = rest
        .splice(0)
        .join(' ')
        .split(/[\s,]+/)
        .filter(Boolean);
      if (mx.length === 0) throw new UsageError('mx needs at least one host name or *.domain pattern');
      return one({ kind: 'set', change: { mx } });
    }
    default:
      throw new UsageError(`"${(verb ?? '').slice(0, 30)}" is not an action of host: ${ACTIONS_TEXT}`);
  }
}

/** Who asks, and where the answer and its buttons belong. */
export interface HostCaller {
  team: string;
  channel: string;
  user: string;
  /**
   * The Web API client Bolt gave the listener (the bot token): asked (users.info) whether the user is a guest before
   * a change. Without it no change is made.
   */
  slack?: UsersApi;
}

/** What a change asks of Slack's Web API. */
export type UsersApi = Pick<AllMiddlewareArgs['client'], 'users'>;

/** A refusal of the service, told only to the user. */
const refused = (message: string): RespondArguments => ephemeral(`:no_entry: ${esc(message)}.`);

/** The domain as the service shows it, with what Slack adds: the rollout rule's verdict and Domain Connect. */
export async function hostView(
  ctx: SlackContext,
  hosting: HostingContext,
  team: string,
  domain: string,
  lead?: string,
): Promise<HostView | string> {
  const shown = await db(() => hosting.service.show(domain, team));
  if (!shown.ok) return shown.message;
  const { ok: _, ...show } = shown;
  const h = show.hosted;
  let enforce: HostView['enforce'] = null;
  if (h.mode === 'testing') {
    const history = await rolloutHistoryOf(ctx, h.domain);
    const verdict = enforceVerdict(h.mode, history, ctx.now(), ROLLOUT_WINDOW_MS);
    enforce = { ready: verdict.ready, missing: verdict.missing };
  }
  const needsTxt = h.status !== 'removed' && !show.dns?.carries;
  const domainConnect = needsTxt ? await hostedDomainConnect(ctx.engine, show) : null;
  return { ...show, hostingName: hosting.name, enforce, domainConnect, ...(lead ? { lead } : {}) };
}

/** The host message for a caller, or the service's refusal. */
async function viewAnswer(
  ctx: SlackContext,
  hosting: HostingContext,
  who: HostCaller,
  domain: string,
  lead: string | undefined,
  responseType: 'ephemeral' | 'in_channel',
): Promise<RespondArguments> {
  const view = await hostView(ctx, hosting, who.team, domain, lead);
  if (typeof view === 'string') return refused(view);
  const scope: ButtonScope = { domain: view.hosted.domain, team: who.team, channel: who.channel };
  return { response_type: responseType, ...hostMessage(view, scope) } as RespondArguments;
}

/**
 * Runs one host action for a workspace (the owner) from a channel, as the command, the buttons and the setup form do:
 * the answer to post, ephemeral unless the served policy changed (then the channel sees it, with the TXT to publish).
 */
export async function hostAction(
  ctx: SlackContext,
  hosting: HostingContext,
  who: HostCaller,
  domain: string,
  action: HostAction,
): Promise<RespondArguments> {
  const s = hosting.service;
  const view = (lead: string | undefined, type: 'ephemeral' | 'in_channel' = 'ephemeral') =>
    viewAnswer(ctx, hosting, who, domain, lead, type);
  if (CHANGES.has(action.kind)) {
    const refusal = await changeRefusal(hosting, who, domain);
    if (refusal) return ephemeral(refusal);
  }
  switch (action.kind) {
    case 'enroll':
      return enroll(ctx, hosting, who, domain, action.options);
    case 'show':
      return view(undefined);
    case 'check': {
      const r = await db(() => s.verify(domain, who.team));
      if (!r.ok) return refused(r.message);
      const lead = r.transition
        ? `:tada: ${esc(r.transition.message)}.`
        : `Looked at DNS now: ${esc(r.name)}.`;
      return view(lead);
    }
    case 'set': {
      const r = await db(() => s.set(domain, who.team, action.change));
      if (!r.ok) return refused(r.message);
      if (!r.changed) return view('Nothing changed: the policy served is already that.');
      await db(() => s.markReminded(r.hosted.domain)); // the channel sees the TXT now: reminders count from here
      return view(
        changedLead(
          who.user,
          `changed the hosted policy (${changeWords(action.change)})`,
          r.previousId,
          r.hosted.stsId,
        ),
        'in_channel',
      );
    }
    case 'apply': {
      const r = await db(() => s.applyProposal(domain, who.team));
      if (!r.ok) return refused(r.message);
      await db(() => s.markReminded(r.hosted.domain));
      const what =
        r.step === 'interim'
          ? 'applied step 1 of the MX change (the new hosts added)'
          : 'applied the MX change';
      return view(changedLead(who.user, what, r.previousId, r.hosted.stsId), 'in_channel');
    }
    case 'remove': {
      const r = await db(() => s.remove(domain, who.team));
      if (!r.ok) return refused(r.message);
      if (r.removed)
        return view(
          `<@${who.user}> stopped hosting ${esc(r.hosted.domain)}: nothing was served yet, so it is removed now.`,
          'in_channel',
        );
      await db(() => s.markReminded(r.hosted.domain));
      return view(
        `<@${who.user}> started the way out for ${esc(r.hosted.domain)}: \`mode: none\` is served with id \`${esc(r.hosted.stsId)}\` (publish it) until DNS has carried that id for the old max_age${r.leavingUntil ? ` (${r.leavingUntil} at the earliest)` : ''}; then hosting ends and the CNAME \`${esc(r.hosted.policyHost)}\` must go. Not before: removing it sooner would break senders that cached the policy.`,
        'in_channel',
      );
    }
  }
}

// ---- Who may change a hosted domain ----

/** The actions that change what is served: only from the enrolling channel, and never by a guest. */
const CHANGES: ReadonlySet<HostAction['kind']> = new Set(['set', 'apply', 'remove']);

/**
 * Why this caller may not change the domain, or null when the service may be asked. A domain this workspace does not
 * host is left to the service, which refuses it in its own words (and says nothing of where it is hosted).
 */
async function changeRefusal(
  hosting: HostingContext,
  who: HostCaller,
  domain: string,
): Promise<string | null> {
  const parsed = parseDomain(domain);
  if (!parsed.ok) return null;
  const name = parsed.domain.ascii;
  const hosted = (await db(() => hosting.service.list(who.team))).find((h) => h.domain === name);
  if (!hosted) return null;
  if (hosted.channelId !== who.channel) return notHereText(name, hosted.channelId);
  const member: UserKind = who.slack
    ? await userKind(who.slack, who.user)
    : { kind: 'unknown', reason: 'not asked' };
  if (member.kind === 'member') return null;
  if (member.kind === 'guest')
    return `:no_entry: Guests cannot change a hosted domain; nothing was changed. A full member of this workspace can, from this channel; you can still show ${name} and *Check DNS now*.`;
  return unknownUserText(member.reason);
}

function notHereText(domain: string, channel: string | null): string {
  if (!channel)
    return `:no_entry: ${domain} was enrolled from no channel, so it cannot be changed from Slack; nothing was changed.`;
  return `:no_entry: ${domain} is changed only from <#${esc(channel)}>, the channel it was enrolled from (mode, max-age, mx, apply, remove and the buttons that do them); nothing was changed. Here you can still show it and *Check DNS now*.`;
}

function unknownUserText(reason: string): string {
  const scope =
    reason === 'missing_scope'
      ? ' This installation lacks the `users:read` scope: whoever runs the bot adds it to the app (manifest.yml) and reinstalls it.'
      : ' Please try again in a moment.';
  return `:no_entry: Slack did not confirm that you are a full member of this workspace (users.info: ${esc(reason)}), and guests may not change a hosted domain, so nothing was changed.${scope}`;
}

/** Slack's users.info gets this long; then the user is taken as unknown (the client's own retries run far longer). */
const USER_INFO_DEADLINE_MS = 5000;

export type UserKind = { kind: 'member' } | { kind: 'guest' } | { kind: 'unknown'; reason: string };

/**
 * Whether a user is a full member or a guest (is_restricted: multi-channel, is_ultra_restricted: single-channel), as
 * users.info tells it (users:read). Anything else (an error, no answer in time, an answer that does not say, about
 * someone else, or a deactivated user) is unknown: the caller refuses.
 */
export async function userKind(slack: UsersApi, user: string): Promise<UserKind> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<UserKind>((resolve) => {
    timer = setTimeout(
      () => resolve({ kind: 'unknown', reason: 'no answer in time' }),
      USER_INFO_DEADLINE_MS,
    );
  });
  const asked = slack.users.info({ user }).then(
    (res): UserKind => {
      const u = res.user;
      if (!u || u.id !== user || u.deleted) return { kind: 'unknown', reason: 'no such active user' };
      if (u.is_restricted === true || u.is_ultra_restricted === true) return { kind: 'guest' };
      return u.is_restricted === false ? { kind: 'member' } : { kind: 'unknown', reason: 'no guest flag' };
    },
    (err: { data?: { error?: unknown }; code?: unknown }): UserKind => ({
      kind: 'unknown',
      reason: String(err?.data?.error ?? err?.code ?? 'failed').slice(0, 60),
    }),
  );
  try {
    return await Promise.race([asked, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function changedLead(user: string, what: string, previousId: string, id: string): string {
  return `<@${user}> ${what}: it is served now with the new id \`${esc(id)}\` (was \`${esc(previousId)}\`). Publish the \`_mta-sts\` TXT below: senders that cached the policy fetch the new one only when the id changes.`;
}

function changeWords(change: PolicyChangeRequest): string {
  const parts = [];
  if (change.mode) parts.push(`mode ${change.mode}`);
  if (change.maxAge !== undefined) parts.push(`max_age ${change.maxAge}`);
  if (change.mx) parts.push(`mx ${change.mx.join(', ')}`);
  return esc(parts.join(', '));
}

/** Enrolls the domain for this workspace (or shows it, when it already is), from the channel asked in. */
async function enroll(
  ctx: SlackContext,
  hosting: HostingContext,
  who: HostCaller,
  domain: string,
  options: AddOptions | undefined,
): Promise<RespondArguments> {
  const r = await db(() => hosting.service.add(domain, who.team, who.channel, options));
  if (!r.ok) return refused(r.message);
  const d = esc(r.hosted.domain);
  let lead: string;
  if (!r.created) lead = `${d} is already hosted by this workspace.`;
  else if (r.hosted.status === 'active')
    lead = `:tada: <@${who.user}> enrolled ${d}: \`${esc(r.hosted.policyHost)}\` already points at the bot, so the policy is served now. Publish the \`_mta-sts\` TXT below.`;
  else
    lead = `:sparkles: <@${who.user}> enrolled ${d} for hosting. Publish the records below; this channel is told when DNS shows \`${esc(r.hosted.policyHost)}\` pointing at this enrollment's own CNAME target (below), and then watches ${d}.`;
  if (r.notes.length > 0) lead += `\n${r.notes.map((n) => `• ${esc(n)}`).join('\n')}`;
  return viewAnswer(ctx, hosting, who, r.hosted.domain, lead, 'ephemeral');
}

/**
 * Domain Connect for the two TXT records (the template the records flow uses), where the domain's DNS provider
 * supports it: the `_mta-sts` id served, and the reporting address (the one DNS has, or the one proposed).
 */
async function hostedDomainConnect(
  engine: Engine,
  show: Omit<ShowResult, 'ok'>,
): Promise<DomainConnectOutcome> {
  const h = show.hosted;
  const zone = await findZone(engine.deps.dns, h.domain);
  const { template, discovery } = await domainConnectDiscovery(
    engine,
    zone,
    engine.options.now?.() ?? new Date(),
  );
  const provider = discovery.settings?.providerName ?? null;
  const refused = noLinkReason(discovery, engine.domainConnectKey);
  if (refused !== null || !engine.domainConnectKey || !discovery.supported)
    return { supported: discovery.supported, provider, applyUrl: null, message: refused ?? '' };
  const rua = await ruaOf(engine, show.records, h.domain);
  const host = relativeName(h.domain, zone);
  const url = applyUrl(
    discovery.settings,
    template,
    { zone, host: host === '@' ? '' : host },
    { stsid: h.stsId, rua: rua.join(',') },
    engine.domainConnectKey,
  );
  return {
    supported: true,
    provider,
    applyUrl: url,
    message: `${provider} supports one-click setup of the \`_mta-sts\` TXT (id ${h.stsId}) and the TLS-RPT TXT: open the link, sign in at ${provider} and confirm.`,
  };
}

/** The reporting addresses for the TLS-RPT record: the proposed record's, else those DNS carries now. */
async function ruaOf(engine: Engine, records: HostingRecord[], domain: string): Promise<string[]> {
  const proposed = records.find((r) => r.name === `_smtp._tls.${domain}`);
  if (proposed) return parseTlsRptRecord(proposed.value).record?.rua ?? [];
  const answer = await engine.deps.dns.txt(`_smtp._tls.${domain}`);
  const txt = answer.ok ? answer.records.find((t) => t.startsWith('v=TLSRPTv1')) : undefined;
  return (txt ? parseTlsRptRecord(txt).record?.rua : undefined) ?? [`mailto:tls-reports@${domain}`];
}

/** Said instead of enrolling where the bot cannot post: the channel would never hear that hosting went live. */
function notMemberText(domain: string): string {
  return `:no_entry: I am not a member of this channel, so I could not tell it when hosting of ${domain} goes live; nothing was set up. Invite me with \`/invite @mtasts\`, then run \`/mtasts host ${domain}\` again.`;
}

const WORKING: Record<HostAction['kind'], string> = {
  enroll: 'Preparing the hosted policy of',
  show: 'Looking up',
  check: 'Looking at the DNS of',
  set: 'Changing the hosted policy of',
  apply: 'Applying the proposed change to',
  remove: 'Starting the way out for',
};

export const host: Subcommand<HostArgs> = {
  usage: `host example.com [${ACTIONS_TEXT.replace(/, | or /g, '|')}]`,
  does: 'the bot hosts the MTA-STS policy, you publish a CNAME (alone: the domains this workspace hosts)',
  args: hostArgs,
  run: async (c, args) => {
    const hosting = c.ctx.hosting;
    if (!hosting) return c.ack(ephemeral(HOSTING_OFF_TEXT));
    if (args.kind === 'list') {
      const list = await db(() => hosting.service.list(c.scope.team));
      return c.ack({ response_type: 'ephemeral', ...hostListMessage(list, hosting.maxPerWorkspace) });
    }
    const { domain, action } = args;
    if (action.kind === 'enroll' && (await botMembership(c.client, c.scope.channel)) === 'out')
      return c.ack(ephemeral(notMemberText(domain.ascii)));
    return rationed(
      c.ctx,
      c.scope,
      (message) => c.ack(ephemeral(message)),
      async () => {
        await c.ack(ephemeral(`:hourglass_flowing_sand: ${WORKING[action.kind]} ${domain.ascii}…`));
        const who = { ...c.scope, slack: c.client };
        const answer = await hostAction(c.ctx, hosting, who, domain.ascii, action);
        await c.respond({ ...answer, replace_original: false });
      },
    );
  },
};
