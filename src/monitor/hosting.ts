import type { Report } from '../core/check.js';
import type { DnsLookups } from '../core/net/dns.js';
import { parseStsRecord } from '../core/sts-record.js';
import { mxHostsOf } from '../hosting/policy-plan.js';
import type { HostingService } from '../hosting/service.js';
import { CLI_OWNER, type HostedDomain, type HostingEvent } from '../store/hosting.js';
import type { HostingAlertKind, HostingPayload } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import {
  isActive,
  LOG_DESTINATION,
  type SubscriptionStore,
  WATCH_LIST_TEAM,
} from '../store/subscriptions.js';

/**
 * Hosted MTA-STS in the monitor's pass (issue 15): after a hosted domain's check, the MX hosts DNS lists are handed to
 * the hosting service (a change becomes a proposal, or is applied at once outside enforce) and the `_mta-sts` id DNS
 * carries is compared with the served one (a reminder at most once per reminder interval until DNS carries it, then
 * one line saying it does). Once per pass, enrollments are looked at again, and what the hosting side recorded for
 * the channels (enrolled, name lost or back, removed, certificates) becomes alerts. Every alert goes through the
 * outbox, to the owning workspace's channels only: the channel it was enrolled from and the owner's channels that
 * watch the domain. The one exception is a rival pending request that lost: its own owner is told it was dropped.
 */

/** What the monitor asks of the hosting side. */
export interface HostingHooks {
  service: Pick<
    HostingService,
    | 'observeMx'
    | 'observeDnsId'
    | 'markReminded'
    | 'reconcileEnrollments'
    | 'unannouncedEvents'
    | 'markAnnounced'
  >;
  /** A hosted domain as the store holds it (its owner and channel), or undefined. */
  hosted(domain: string): Promise<HostedDomain | undefined>;
  /** The hosted domains served now (active or leaving). */
  served(): Promise<HostedDomain[]>;
  /** MTASTS_REMINDER_HOURS: the least time between two reminders to publish an id. */
  reminderMs: number;
  /** MTASTS_MAX_DOMAINS_PER_TEAM: the owning channel is subscribed once hosting is live, within this cap. */
  maxDomainsPerTeam: number;
}

type Who = Pick<HostedDomain, 'domain' | 'owner' | 'channelId'>;

/** The channels of the owning workspace that hear a hosted domain's news (muted or paused ones left out). */
export async function hostingAudience(
  subscriptions: Pick<SubscriptionStore, 'forDomain'>,
  who: Who,
  now: Date,
): Promise<{ teamId: string; channelId: string }[]> {
  const team = who.owner === CLI_OWNER ? WATCH_LIST_TEAM : who.owner;
  const subs = (await subscriptions.forDomain(who.domain)).filter((s) => s.teamId === team);
  const channels = new Set(subs.filter((s) => isActive(s, now)).map((s) => s.channelId));
  const own = who.channelId;
  if (own && who.owner !== CLI_OWNER && !subs.some((s) => s.channelId === own && !isActive(s, now)))
    channels.add(own);
  return [...channels].sort().map((channelId) => ({ teamId: team, channelId }));
}

function alertsFor(
  audience: { teamId: string; channelId: string }[],
  payload: HostingPayload,
  eventKey: string,
  threadEventKey: string | null = null,
): NewAlert[] {
  return audience.map((a) => ({ ...a, eventKey, threadEventKey, broadcast: false, payload }));
}

const base = (h: HostedDomain, kind: HostingAlertKind, at: Date): HostingPayload => ({
  kind,
  domain: h.domain,
  policyHost: h.policyHost,
  at: at.toISOString(),
  stsId: h.stsId,
  mode: h.mode,
  mx: h.mx,
});

/** The event key of the first reminder to publish an id: later reminders and "DNS carries it" go in its thread. */
const idKey = (stsId: string) => `hosting-id ${stsId}`;

/** What a look at a hosted domain's DNS found: its MX hosts (null: not read) and its `_mta-sts` id (undefined: not read). */
export interface HostingSeen {
  domain: string;
  mx: string[] | null;
  stsId: string | null | undefined;
}

/** What a check saw: a lookup that failed (or a resolver that did) tells nothing. */
export function seenInReport(report: Report): HostingSeen {
  const resolverFailed = report.findings.some((f) => f.code === 'DNS_RESOLVER_FAILED');
  const failed = (name: string) =>
    resolverFailed || report.findings.some((f) => f.code === 'DNS_LOOKUP_FAILED' && f.subject === name);
  return {
    domain: report.domain,
    mx: failed(report.domain) ? null : report.evidence.mx.hosts.map((h) => h.host),
    stsId: failed(`_mta-sts.${report.domain}`) ? undefined : report.evidence.sts.id,
  };
}

/** The MX hosts and the `_mta-sts` id read from DNS directly (a hosted domain no channel watches). */
export async function seenInDns(
  dns: Pick<DnsLookups, 'mx' | 'txt'>,
  domain: string,
  signal?: AbortSignal,
): Promise<HostingSeen> {
  const [mx, txt] = await Promise.all([dns.mx(domain, signal), dns.txt(`_mta-sts.${domain}`, signal)]);
  const hosts = mx.ok ? mxHostsOf(mx.records) : mx.kind === 'error' ? null : [];
  if (!txt.ok && txt.kind === 'error') return { domain, mx: hosts, stsId: undefined };
  const records = txt.ok ? txt.records.filter((t) => t.startsWith('v=STSv1')) : [];
  const id = records.length === 1 ? (parseStsRecord(records[0] ?? '').record?.id ?? null) : null;
  return { domain, mx: hosts, stsId: id };
}

/** After a look at a hosted domain (its check): its MX change and its id, as alerts for the owning channels. */
export async function hostingAfterCheck(
  hooks: HostingHooks,
  subscriptions: Pick<SubscriptionStore, 'forDomain'>,
  seen: HostingSeen,
  at: Date,
): Promise<NewAlert[]> {
  const hosted = await hooks.hosted(seen.domain);
  if (!hosted || (hosted.status !== 'active' && hosted.status !== 'leaving')) return [];
  const audience = await hostingAudience(subscriptions, hosted, at);
  const alerts: NewAlert[] = [];
  const mx = seen.mx;
  let applied = false;
  if (hosted.status === 'active' && mx !== null) {
    const outcome = await hooks.service.observeMx(hosted.domain, mx);
    if ((outcome.kind === 'proposed' || outcome.kind === 'unchanged') && outcome.next.kind !== 'wait') {
      // One alert per proposal and step that can be applied now: when it is made (or first seen here, after a
      // user's Check DNS now made it), and when its step 2 comes due. The outbox keeps one per key and channel.
      const { proposal, next } = outcome;
      const payload: HostingPayload = {
        ...base(outcome.hosted, 'hosting-proposal', at),
        change: changeOf(proposal, next),
      };
      alerts.push(...alertsFor(audience, payload, `hosting-proposal ${proposal.proposedAt} ${next.kind}`));
    } else if (outcome.kind === 'applied') {
      applied = true;
      const payload: HostingPayload = {
        ...base(outcome.hosted, 'hosting-applied', at),
        change: changeOf(outcome.proposal, { kind: 'final', mx: outcome.proposal.final }),
      };
      alerts.push(...alertsFor(audience, payload, `hosting-applied ${outcome.hosted.stsId}`));
      await hooks.service.markReminded(hosted.domain); // the alert shows the TXT: the reminders count from now
    }
  }
  if (!applied && seen.stsId !== undefined)
    alerts.push(...(await idAlerts(hooks, hosted, seen.stsId, audience, at)));
  return alerts;
}

/**
 * Once per pass, the hosted domains no channel watches (the pass did not check them: unwatched after enrollment, or
 * the command line's): their MX hosts and id read from DNS, with the same follow-ups. Returns the alerts by domain.
 */
export async function hostingUnwatched(
  hooks: HostingHooks,
  subscriptions: Pick<SubscriptionStore, 'forDomain'>,
  dns: Pick<DnsLookups, 'mx' | 'txt'>,
  now: () => Date,
  signal?: AbortSignal,
): Promise<Map<string, NewAlert[]>> {
  const out = new Map<string, NewAlert[]>();
  for (const h of await hooks.served()) {
    if (signal?.aborted) break;
    if ((await subscriptions.forDomain(h.domain)).length > 0) continue; // the pass checked it
    const alerts = await hostingAfterCheck(
      hooks,
      subscriptions,
      await seenInDns(dns, h.domain, signal),
      now(),
    );
    if (alerts.length > 0) out.set(h.domain, alerts);
  }
  return out;
}

function changeOf(
  proposal: { add: string[]; drop: string[] },
  next: { kind: 'interim' | 'final' | 'wait'; mx: string[]; until?: string },
): NonNullable<HostingPayload['change']> {
  return {
    add: proposal.add,
    drop: proposal.drop,
    next: next.kind,
    nextMx: next.mx,
    until: next.kind === 'wait' ? (next.until ?? null) : null,
  };
}

/** The id DNS carries against the served one: a reminder while it differs (spaced), one line once it matches. */
async function idAlerts(
  hooks: HostingHooks,
  hosted: HostedDomain,
  seen: string | null,
  audience: { teamId: string; channelId: string }[],
  at: Date,
): Promise<NewAlert[]> {
  const state = await hooks.service.observeDnsId(hosted.domain, seen);
  if (!state) return [];
  const key = idKey(state.expected);
  if (state.carries) {
    // Said once, and only after a reminder: an id published before any reminder needs no news. DNS may have been
    // seen carrying it first by another look (`/mtasts host … show`): still news within a reminder interval.
    if (state.remindedAt === null) return [];
    const since = state.newlyCarried ? at.getTime() : Date.parse(hosted.dnsCarriesAt ?? '');
    const fresh = since >= Date.parse(state.remindedAt) && at.getTime() - since < hooks.reminderMs;
    if (!fresh) return [];
    return alertsFor(
      audience,
      base(hosted, 'hosting-id-carried', at),
      `hosting-id-carried ${state.expected}`,
      key,
    );
  }
  const last = state.remindedAt === null ? null : Date.parse(state.remindedAt);
  if (last !== null && at.getTime() - last < hooks.reminderMs) return [];
  if (audience.length === 0) return []; // nobody to remind: the first channel that hears of it gets the reminder
  await hooks.service.markReminded(hosted.domain);
  const payload: HostingPayload = { ...base(hosted, 'hosting-id-reminder', at), seenId: seen };
  return last === null
    ? alertsFor(audience, payload, key)
    : alertsFor(audience, payload, `${key} ${at.toISOString()}`, key);
}

/**
 * Once per pass: enrollments looked at again (pending -> active, name lost or back, leaving -> removed), then what the
 * hosting side recorded for the channels turned into alerts, the owning channel subscribed when hosting goes live.
 * A rival pending request dropped is one of those records (written when the winner went live, whoever looked: this
 * pass, a Check DNS now or `mtasts host verify`), told to the request's own owner.
 * Returns the alerts by domain; the caller queues them, then marks the events announced (queued twice after a crash
 * in between, an alert is still sent once: the outbox keeps one per key and channel).
 */
export async function hostingRound(
  hooks: HostingHooks,
  subscriptions: Pick<SubscriptionStore, 'forDomain' | 'watch'>,
  now: () => Date,
  reconcile: boolean,
): Promise<{ alerts: Map<string, NewAlert[]>; announced: number[] }> {
  if (reconcile) await hooks.service.reconcileEnrollments();
  const alerts = new Map<string, NewAlert[]>();
  const add = (domain: string, made: NewAlert[]) => {
    if (made.length > 0) alerts.set(domain, [...(alerts.get(domain) ?? []), ...made]);
  };
  const announced: number[] = [];
  for (const event of await hooks.service.unannouncedEvents()) {
    announced.push(event.id);
    if (event.kind === 'dropped') {
      add(event.domain, await droppedAlerts(subscriptions, event, now()));
      continue;
    }
    const hosted = await hooks.hosted(event.domain);
    if (!hosted) continue;
    add(event.domain, await eventAlerts(hooks, subscriptions, hosted, event, now()));
  }
  return { alerts, announced };
}

/**
 * A pending request that lost to another enrollment's proof in DNS (its `dropped` event: the event's owner and
 * channel are the loser's): its owner is told once, to the channels that hear of the domain in that workspace (the
 * one it was asked from and those watching it) or, for the command line's, to the watch list's destinations for the
 * domain (the log when it has none). Never the winner's channels; the alert names nothing of the winner. Its key is
 * the event, so a re-queue after a crash sends it once.
 */
async function droppedAlerts(
  subscriptions: Pick<SubscriptionStore, 'forDomain'>,
  event: HostingEvent,
  now: Date,
): Promise<NewAlert[]> {
  if (event.owner === '') return [];
  const payload: HostingPayload = {
    kind: 'hosting-dropped',
    domain: event.domain,
    policyHost: `mta-sts.${event.domain}`,
    at: new Date(Date.parse(event.at) || now.getTime()).toISOString(),
  };
  const loser = { domain: event.domain, owner: event.owner, channelId: event.channelId };
  const cliUnwatched =
    loser.owner === CLI_OWNER &&
    !(await subscriptions.forDomain(loser.domain)).some((s) => s.teamId === WATCH_LIST_TEAM);
  const audience = cliUnwatched
    ? [{ teamId: WATCH_LIST_TEAM, channelId: LOG_DESTINATION }]
    : await hostingAudience(subscriptions, loser, now);
  return alertsFor(audience, payload, `hosting-event ${event.id}`);
}

async function eventAlerts(
  hooks: HostingHooks,
  subscriptions: Pick<SubscriptionStore, 'forDomain' | 'watch'>,
  hosted: HostedDomain,
  event: HostingEvent,
  now: Date,
): Promise<NewAlert[]> {
  const at = new Date(Date.parse(event.at) || now.getTime());
  const text = (k: string) => {
    const v = event.detail[k];
    return typeof v === 'string' ? v : null;
  };
  const payload = base(hosted, 'hosting-active', at);
  const key = `hosting-event ${event.id}`;
  switch (event.kind) {
    case 'active':
      payload.watch = await watchOwningChannel(hooks, subscriptions, hosted, now);
      break;
    case 'name-lost':
      Object.assign(payload, { kind: 'hosting-name-lost', problem: text('problem') });
      break;
    case 'name-back':
      payload.kind = 'hosting-name-back';
      break;
    case 'removed':
      payload.kind = 'hosting-removed';
      break;
    case 'certificate-issued':
      Object.assign(payload, { kind: 'certificate-issued', notAfter: text('notAfter') });
      break;
    case 'certificate-failed': {
      Object.assign(payload, { kind: 'certificate-failed', error: text('error'), retryAt: text('retryAt') });
      // Failures in a row (each retry) are told at most once per reminder interval.
      const slot = Math.floor(at.getTime() / hooks.reminderMs);
      return alertsFor(
        await hostingAudience(subscriptions, hosted, now),
        payload,
        `certificate-failed ${slot}`,
      );
    }
    default:
      return []; // certificate-renewed: silent (`/mtasts host` shows the certificate's dates)
  }
  return alertsFor(await hostingAudience(subscriptions, hosted, now), payload, key);
}

/**
 * Hosting is live: the channel it was enrolled from watches the domain (the monitor checks it from now on). A domain the
 * command line hosts joins the watch list, its alerts to the log (`npm start` writes them), unless the watch list
 * already has it (with a webhook, say).
 */
async function watchOwningChannel(
  hooks: HostingHooks,
  subscriptions: Pick<SubscriptionStore, 'forDomain' | 'watch'>,
  hosted: HostedDomain,
  now: Date,
): Promise<HostingPayload['watch']> {
  if (hosted.owner === CLI_OWNER) {
    if ((await subscriptions.forDomain(hosted.domain)).some((s) => s.teamId === WATCH_LIST_TEAM))
      return 'exists';
    const r = await subscriptions.watch(
      WATCH_LIST_TEAM,
      LOG_DESTINATION,
      hosted.domain,
      'hosting',
      hooks.maxDomainsPerTeam,
      now,
    );
    return r.kind;
  }
  if (!hosted.channelId) return null;
  const r = await subscriptions.watch(
    hosted.owner,
    hosted.channelId,
    hosted.domain,
    'hosting',
    hooks.maxDomainsPerTeam,
    now,
  );
  return r.kind;
}
