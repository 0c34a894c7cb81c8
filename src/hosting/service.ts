import { parseDomain } from '../core/domain.js';
import type { DnsLookups } from '../core/net/dns.js';
import type { PolicyMode } from '../core/policy.js';
import { durationText, ROLLOUT_WINDOW_MS } from '../core/rollout.js';
import { formatStsRecord, parseStsRecord } from '../core/sts-record.js';
import { formatTlsRptRecord } from '../core/tlsrpt-record.js';
import { relativeName } from '../generate/steps.js';
import { findZone } from '../generate/zone.js';
import {
  CLI_OWNER,
  type HostedDomain,
  type HostingEvent,
  type HostingStore,
  type MxProposal,
  type NewVersion,
  type RivalClaim,
} from '../store/hosting.js';
import { cnameTarget, isOperatorName, newToken, type Proof, proveControl, verifyText } from './enroll.js';
import {
  afterInterim,
  type CachedVersion,
  cachedVersions,
  changedPolicy,
  checkMode,
  checkMxPatterns,
  DAY,
  DEFAULT_TESTING_MAX_AGE,
  enforceVerdict,
  type HostedPolicy,
  HostingInputError,
  hostedPolicyText,
  LEAVING_MAX_AGE,
  leavingUntil,
  leavingUntilFrom,
  maxAgeProblem,
  mxHostsOf,
  nextId,
  nextProposalStep,
  type ProposalStep,
  proposeMx,
  sameObserved,
  sameText,
  servableText,
  uncoveredHosts,
  unusableMxHosts,
  usableMxHost,
  WEEK,
} from './policy-plan.js';
import type { CertificateEvent, HostedPolicies } from './types.js';

/**
 * Hosted MTA-STS, the control side: enrollment and ownership, changes of the served policy (each with a new id and a
 * version row), MX change proposals in the safe order, the way out, and what DNS carries. The command line
 * (hosting/cli.ts) and Slack call the same operations; the policy server reads it as HostedPolicies. Every refusal is
 * a value (`ok: false`) with one sentence saying why; nothing here throws on user input.
 */

export interface HostingSettings {
  /** MTASTS_HOSTING_NAME: each enrollment's CNAME target is `<token>.<name>`; null when hosting is off. */
  name: string | null;
  /** MTASTS_HOSTING_ADDRESSES: the bot's public addresses (empty: the hosting name's own A/AAAA). */
  addresses: readonly string[];
  /** MTASTS_HOSTING_MAX_PER_WORKSPACE: hosted domains per owner (a workspace, or the command line). */
  maxPerWorkspace: number;
  /** MTASTS_HOSTING_MAX_MX: mx patterns per policy. */
  maxMxPatterns: number;
  allowPrivateNetworks: boolean;
  /** MTASTS_HOSTING_PENDING_DAYS: after this many days pending, another owner's request may replace an enrollment. */
  pendingDays?: number;
  /** The rollout rule's window; ROLLOUT_WINDOW_MS unless a test says otherwise. */
  rolloutWindowMs?: number;
}

/** What the monitor and TLS-RPT reports tell of a domain: the rollout rule's inputs. */
export interface RolloutInputs {
  watched: boolean;
  cleanSince: string | null;
  lastReportedFailureAt: string | null;
}

export interface HostingDeps {
  store: HostingStore;
  dns: DnsLookups;
  settings: HostingSettings;
  history: (domain: string) => Promise<RolloutInputs>;
  now?: () => Date;
}

export type RefusalKind =
  /** Bad input: a name that is no domain, a max_age out of range, a malformed mx pattern. */
  | 'input'
  /** Hosting is off (MTASTS_HOSTING_NAME unset). */
  | 'off'
  /** Another owner hosts the domain. */
  | 'taken'
  /** The owner hosts as many domains as allowed. */
  | 'limit'
  /** The domain is not hosted by this owner. */
  | 'not-hosted'
  /** Enforce before the rollout rule says ready. */
  | 'not-ready'
  /** Not now: the domain is leaving, no proposal, step 2 not yet due. */
  | 'state'
  /** DNS did not answer what the operation needs (MX records), or says no. */
  | 'dns'
  /** Enforce while an MX host is not covered by the patterns. */
  | 'uncovered';

export interface Refusal {
  ok: false;
  kind: RefusalKind;
  message: string;
}

export type Outcome<T> = ({ ok: true } & T) | Refusal;

/** A record the domain's owner publishes. */
export interface HostingRecord {
  name: string;
  /** Relative to the zone, as DNS panels ask for it. */
  host: string;
  type: 'CNAME' | 'TXT';
  value: string;
  ttl: number;
  purpose: string;
}

export interface AddOptions {
  mode?: PolicyMode;
  maxAge?: number;
  mx?: string[];
  /** Enforce from the start, without the rollout rule. */
  force?: boolean;
}

export interface PolicyChangeRequest {
  mode?: PolicyMode;
  maxAge?: number;
  mx?: string[];
}

/** A status change found by looking at DNS, for the domain's channel. */
export interface Transition {
  domain: string;
  owner: string;
  channelId: string | null;
  kind: 'active' | 'name-lost' | 'name-back' | 'removed';
  message: string;
}

export interface DnsIdState {
  /** The id the TXT must carry: the served text's. */
  expected: string;
  /** The id seen; null when DNS carries none (or several records, which senders ignore). */
  seen: string | null;
  carries: boolean;
  /** DNS carries it, and did not at the last look: the moment to say so once. */
  newlyCarried: boolean;
  remindedAt: string | null;
}

export type ProposalOutcome =
  | { kind: 'none'; hosted: HostedDomain | null }
  | { kind: 'unchanged' | 'proposed'; hosted: HostedDomain; proposal: MxProposal; next: ProposalStep }
  | { kind: 'applied'; hosted: HostedDomain; proposal: MxProposal; previousId: string };

export interface ShowResult {
  hosted: HostedDomain;
  policyText: string;
  records: HostingRecord[];
  /** What the `_mta-sts` TXT carries now; null when DNS could not be asked. */
  dns: DnsIdState | null;
  dnsError: string | null;
  cached: CachedVersion[];
  proposal: { proposal: MxProposal; next: ProposalStep } | null;
}

const TTL = 3600;
const REMOVED_NAME = 'no longer hosted';

export class HostingService implements HostedPolicies {
  private readonly store: HostingStore;
  private readonly dns: DnsLookups;
  private readonly settings: HostingSettings;
  private readonly now: () => Date;

  constructor(private readonly deps: HostingDeps) {
    this.store = deps.store;
    this.dns = deps.dns;
    this.settings = deps.settings;
    this.now = deps.now ?? (() => new Date());
  }

  /** Hosting is on when MTASTS_HOSTING_NAME is set. */
  get enabled(): boolean {
    return this.settings.name !== null;
  }

  // ---- Enrollment and ownership ----

  /**
   * Enrolls a domain for an owner (a team id, or CLI_OWNER) and the channel to tell: mode testing unless given, a
   * week's max_age, the MX hosts DNS lists as patterns unless given. Returns the records to publish; the domain is
   * active at once when mta-sts.<domain> already resolves to the bot. A second request by the same owner answers
   * as the first (created: false).
   */
  async add(
    input: string,
    owner: string,
    channelId: string | null,
    options: AddOptions = {},
  ): Promise<Outcome<{ created: boolean; hosted: HostedDomain; records: HostingRecord[]; notes: string[] }>> {
    const hostingName = this.settings.name;
    if (hostingName === null) return refusal('off', HOSTING_OFF);
    const parsed = this.parse(input);
    if (!parsed.ok) return parsed;
    const domain = parsed.domain;
    if (isOperatorName(`mta-sts.${domain}`, hostingName)) {
      return refusal('input', `${domain} is this installation's own: its policy host is the hosting name`);
    }
    const checked = this.checkOptions(options);
    if (!checked.ok) return checked;
    const existing = await this.store.get(domain);
    if (existing && existing.status !== 'removed' && existing.owner === owner) {
      return { ok: true, created: false, hosted: existing, records: await this.records(existing), notes: [] };
    }
    if (existing && (existing.status === 'active' || existing.status === 'leaving')) return taken(domain);
    const mode = options.mode ?? 'testing';
    if (mode === 'enforce' && !options.force) {
      return refusal(
        'not-ready',
        `${domain} starts in testing: enforce follows the rollout rule (${durationText(this.windowMs() / 1000)} in testing with no errors and no reported TLS failures). Enroll it in testing, or force enforce at your own risk.`,
      );
    }
    const mx = checked.mx ?? (mode === 'none' ? { ok: true as const, mx: [] } : await this.dnsMx(domain));
    if ('kind' in mx) return mx;
    const maxAge =
      options.maxAge ?? (mode === 'none' ? DAY : mode === 'enforce' ? WEEK : DEFAULT_TESTING_MAX_AGE);
    const policy: HostedPolicy = { mode, maxAge, mx: mx.mx };
    const now = this.now();
    const result = await this.store.enroll(
      {
        ...{ domain, policyHost: `mta-sts.${domain}`, owner, channelId, token: newToken() },
        maxPerOwner: this.settings.maxPerWorkspace,
        staleBefore: new Date(now.getTime() - this.pendingDays() * DAY * 1000),
      },
      version(policy),
      (used) => nextId(now, used),
      now,
    );
    if (result.kind === 'taken') return taken(domain);
    if (result.kind === 'limit') return refusal('limit', limitMessage(owner, result.limit));
    const notes =
      mode === 'enforce' ? ['enforce from the start, forced: the rollout rule was not asked'] : [];
    const skipped: string[] = 'skipped' in mx ? (mx.skipped as string[]) : [];
    if (skipped.length > 0) notes.push(`MX hosts skipped, not valid host names: ${skipped.join(', ')}`);
    if (result.kind === 'claim') {
      const hosted = claimAsHosted(result.claim);
      notes.push(rivalNote(domain, this.pendingDays()));
      return { ok: true, created: result.created, hosted, records: await this.records(hosted), notes };
    }
    if (result.kind === 'added' && result.replaced) notes.push(replacedNote(domain, this.pendingDays()));
    const hosted = (await this.lookAtName(result.hosted, hostingName)).hosted;
    return { ok: true, created: result.kind === 'added', hosted, records: await this.records(hosted), notes };
  }

  /** The owner's hosted domains (removed ones left out), by name. */
  async list(owner: string): Promise<HostedDomain[]> {
    const own = (await this.store.listByOwner(owner)).filter((h) => h.status !== 'removed');
    const claims = (await this.store.claimsByOwner(owner)).map(claimAsHosted);
    return [...own, ...claims].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  }

  /** A hosted domain whoever owns it, for the monitor's hooks (never for a user's request: see show). */
  async hosted(domain: string): Promise<HostedDomain | undefined> {
    const found = await this.store.get(domain);
    return found && found.status !== 'removed' ? found : undefined;
  }

  /** Every domain in flight (pending, active, leaving), for the monitor's pass. */
  inFlight(): Promise<HostedDomain[]> {
    return this.store.withStatus(['pending', 'active', 'leaving']);
  }

  /** One domain as it stands: served text, records, what DNS carries now, cached versions, the pending proposal. */
  async show(input: string, owner: string): Promise<Outcome<ShowResult>> {
    const found = await this.owned(input, owner);
    if (!found.ok) return found;
    if (found.claim) return this.showClaim(found.claim);
    let hosted = found.hosted;
    const looked = await this.lookAtDnsId(hosted);
    hosted = (await this.store.get(hosted.domain)) ?? hosted;
    const now = this.now();
    return {
      ok: true,
      hosted,
      policyText: hostedPolicyText(hosted),
      records: await this.records(hosted),
      dns: looked.ok ? looked.state : null,
      dnsError: looked.ok ? null : looked.message,
      cached: cachedVersions(await this.store.versions(hosted.domain), now),
      proposal: hosted.proposal
        ? { proposal: hosted.proposal, next: this.nextStep(hosted, hosted.proposal, now) }
        : null,
    };
  }

  private async showClaim(claim: HostedDomain): Promise<Outcome<ShowResult>> {
    const records = await this.records(claim);
    const nothingYet = { dns: null, dnsError: null, cached: [], proposal: null };
    return { ok: true, hosted: claim, policyText: hostedPolicyText(claim), records, ...nothingYet };
  }

  /**
   * Looks at DNS now for one domain, as the monitor's pass does: its name (pending -> active, lost, back), the MX
   * hosts (a proposal when they changed; applied at once outside enforce) and the TXT id.
   */
  async verify(
    input: string,
    owner: string,
  ): Promise<
    Outcome<{
      hosted: HostedDomain;
      transition: Transition | null;
      name: string;
      mx: ProposalOutcome | null;
      dns: DnsIdState | null;
    }>
  > {
    const hostingName = this.settings.name;
    if (hostingName === null) return refusal('off', HOSTING_OFF);
    const found = await this.owned(input, owner);
    if (!found.ok) return found;
    const asker = found.claim?.token ?? found.hosted.token;
    const looked0 = await this.lookAtName(found.hosted, hostingName, asker);
    const { transition, message } = looked0;
    const hosted = looked0.hosted;
    if (hosted.owner !== owner) {
      const still = (await this.store.claims(hosted.domain)).find((c) => c.owner === owner);
      if (!still)
        return refusal(
          'not-hosted',
          `${hosted.domain} went to another request, whose token DNS showed first`,
        );
      return { ok: true, hosted: claimAsHosted(still), transition: null, name: message, mx: null, dns: null };
    }
    const answer = await this.dns.mx(hosted.domain);
    const hosts = answer.ok ? mxHostsOf(answer.records) : [];
    const mx = hosts.length > 0 ? await this.observeMx(hosted.domain, hosts) : null;
    const looked = await this.lookAtDnsId(hosted);
    const latest = (await this.store.get(hosted.domain)) ?? hosted;
    return { ok: true, hosted: latest, transition, name: message, mx, dns: looked.ok ? looked.state : null };
  }

  /**
   * The periodic look at every domain in flight: a pending domain becomes active once its name resolves to the bot;
   * an active one whose name stops doing so is marked (and back again when it does); a leaving one whose cached
   * policies have all expired is removed. Each change is also an event for the channel.
   */
  async reconcileEnrollments(): Promise<Transition[]> {
    const out: Transition[] = [];
    const hostingName = this.settings.name;
    for (const hosted of await this.store.withStatus(['leaving'])) {
      const t = await this.finishLeaving(hosted);
      if (t) out.push(t);
    }
    if (hostingName === null) return out;
    const inFlight = await this.store.withStatus(['pending', 'active']);
    for (let i = 0; i < inFlight.length; i += 8) {
      const looked = await Promise.all(inFlight.slice(i, i + 8).map((h) => this.lookAtName(h, hostingName)));
      for (const l of looked) if (l.transition) out.push(l.transition);
    }
    return out;
  }

  // ---- Changes of the served policy ----

  /**
   * Changes mode, max_age or mx patterns. Every change of the served text gets a new id and a version row. Enforce
   * only when the rollout rule says ready (unless forced: the result says what was overridden), and only while every
   * MX host DNS lists is covered. An explicit mx list replaces any pending proposal.
   */
  async set(
    input: string,
    owner: string,
    change: PolicyChangeRequest,
    options: { force?: boolean } = {},
  ): Promise<
    Outcome<{ changed: boolean; hosted: HostedDomain; previousId: string; forced: string[]; notes: string[] }>
  > {
    const found = await this.ownedServed(input, owner);
    if (!found.ok) return found;
    const hosted = found.hosted;
    if (hosted.status === 'leaving') return leavingRefusal(hosted);
    const checked = this.checkOptions(change);
    if (!checked.ok) return checked;
    if (change.mode === undefined && change.maxAge === undefined && change.mx === undefined) {
      return refusal('input', 'nothing to change: give a mode, a max_age or mx patterns');
    }
    const next = changedPolicy(hosted, { ...change, ...(checked.mx ? { mx: checked.mx.mx } : {}) });
    if (next.mode !== 'none' && next.mx.length === 0) {
      return refusal('input', `mode ${next.mode} needs at least one mx pattern`);
    }
    const forced: string[] = [];
    if (next.mode === 'enforce') {
      const allowed = await this.enforceAllowed(hosted, next, options.force === true);
      if (!allowed.ok) return allowed;
      forced.push(...allowed.forced);
    }
    if (sameText(hosted, next)) {
      return { ok: true, changed: false, hosted, previousId: hosted.stsId, forced, notes: [] };
    }
    const fields = checked.mx ? { proposal: null } : {};
    const served = await this.serveNext(hosted, next, fields);
    return { ok: true, changed: true, hosted: served, previousId: hosted.stsId, forced, notes: [] };
  }

  /**
   * The MX hosts the monitor saw in DNS for a hosted domain. When the served patterns no longer match them, a
   * proposal in the safe order (see policy-plan.ts); outside enforce, and while pending, it is applied at once. The
   * same MX set gives `unchanged`, so that the channel is told once per proposal.
   */
  async observeMx(domain: string, observed: readonly string[]): Promise<ProposalOutcome> {
    const hosts = observed.filter((h) => usableMxHost(h.toLowerCase()));
    const hosted = await this.store.get(domain);
    if (hosts.length === 0) return { kind: 'none', hosted: hosted ?? null };
    if (!hosted || hosted.status === 'leaving' || hosted.status === 'removed')
      return { kind: 'none', hosted: hosted ?? null };
    const now = this.now();
    if (hosted.proposal && sameObserved(hosted.proposal, hosts)) {
      const next = this.nextStep(hosted, hosted.proposal, now);
      return { kind: 'unchanged', hosted, proposal: hosted.proposal, next };
    }
    const proposal = proposeMx(hosted, hosts, now);
    if (proposal === null) {
      const cleared = hosted.proposal ? await this.store.update(domain, { proposal: null }, now) : hosted;
      return { kind: 'none', hosted: cleared ?? hosted };
    }
    if (hosted.mode !== 'enforce' || hosted.status === 'pending') {
      const served = await this.serveNext(hosted, { ...hosted, mx: proposal.final }, { proposal: null });
      return { kind: 'applied', hosted: served, proposal, previousId: hosted.stsId };
    }
    const updated = (await this.store.update(domain, { proposal }, now)) ?? hosted;
    return {
      kind: 'proposed',
      hosted: updated,
      proposal,
      next: nextProposalStep(proposal, hosted.mode, now),
    };
  }

  /** Applies the next step of the pending proposal: step 1 at once, step 2 once it is due. */
  async applyProposal(
    input: string,
    owner: string,
  ): Promise<
    Outcome<{
      hosted: HostedDomain;
      step: 'interim' | 'final';
      previousId: string;
      next: ProposalStep | null;
    }>
  > {
    const found = await this.ownedServed(input, owner);
    if (!found.ok) return found;
    const hosted = found.hosted;
    if (hosted.status === 'leaving') return leavingRefusal(hosted);
    if (!hosted.proposal) return refusal('state', `${hosted.domain} has no proposed change`);
    const now = this.now();
    const step = this.nextStep(hosted, hosted.proposal, now);
    if (step.kind === 'wait') {
      return refusal(
        'state',
        `step 2 (dropping ${hosted.proposal.drop.join(', ')}) is not due before ${step.until}: senders may hold the policy served before step 1 (max_age ${hosted.proposal.waitMaxAge}, ${durationText(hosted.proposal.waitMaxAge)}) until then`,
      );
    }
    const proposal = step.kind === 'interim' ? afterInterim(hosted.proposal, hosted.maxAge, now) : null;
    let served = await this.serveNext(hosted, { ...hosted, mx: step.mx }, { proposal });
    if (proposal) {
      const withId = { ...proposal, interimId: served.stsId };
      served = (await this.store.update(hosted.domain, { proposal: withId }, now)) ?? served;
    }
    const next = served.proposal ? this.nextStep(served, served.proposal, now) : null;
    return { ok: true, hosted: served, step: step.kind, previousId: hosted.stsId, next };
  }

  /**
   * The way out (RFC 8461 §8.3): serve `mode: none` with a new id, and keep serving it until every sender that
   * cached another version has let it go (max_age after DNS first carries the new id); then the domain is removed
   * (its name leaves the certificate list and the CNAME must go, not before). A pending domain, never served, is
   * removed at once.
   */
  async remove(
    input: string,
    owner: string,
  ): Promise<Outcome<{ hosted: HostedDomain; leavingUntil: string | null; removed: boolean }>> {
    const found = await this.owned(input, owner);
    if (!found.ok) return found;
    if (found.claim) {
      await this.store.dropClaim(found.claim.domain, owner);
      return { ok: true, hosted: { ...found.claim, status: 'removed' }, leavingUntil: null, removed: true };
    }
    let hosted = found.hosted;
    const now = this.now();
    if (hosted.status === 'leaving') {
      return { ok: true, hosted, leavingUntil: hosted.leavingUntil, removed: false };
    }
    if (hosted.status === 'active') {
      const none: HostedPolicy = { mode: 'none', maxAge: LEAVING_MAX_AGE, mx: hosted.mx };
      hosted = sameText(hosted, none)
        ? hosted
        : await this.serveNext(hosted, none, { proposal: null, status: 'leaving' });
      const until = leavingUntil(await this.store.versions(hosted.domain), now);
      if (until !== null) {
        hosted =
          (await this.store.update(
            hosted.domain,
            { status: 'leaving', leavingUntil: until, proposal: null },
            now,
          )) ?? hosted;
        return { ok: true, hosted, leavingUntil: until, removed: false };
      }
    }
    await this.store.retire(hosted.domain, now);
    const removed = (await this.store.get(hosted.domain)) ?? hosted;
    return { ok: true, hosted: removed, leavingUntil: null, removed: true };
  }

  // ---- What DNS carries: the id reminders ----

  /**
   * The `_mta-sts` id DNS carries now (the monitor reads it in its check), recorded; whether it is the served one, and
   * whether it just became so. The reminders' state (remindedAt) is the caller's to update with markReminded.
   */
  async observeDnsId(domain: string, seen: string | null): Promise<DnsIdState | null> {
    const hosted = await this.store.get(domain);
    if (!hosted || hosted.status === 'removed') return null;
    const now = this.now();
    const carries = seen === hosted.stsId;
    const newlyCarried = carries && hosted.dnsCarriesAt === null;
    await this.store.update(
      domain,
      {
        dnsId: seen,
        dnsCheckedAt: now.toISOString(),
        dnsCarriesAt: carries ? (hosted.dnsCarriesAt ?? now.toISOString()) : null,
      },
      now,
    );
    return { expected: hosted.stsId, seen, carries, newlyCarried, remindedAt: hosted.remindedAt };
  }

  /** A reminder to publish the id was sent now. */
  async markReminded(domain: string): Promise<void> {
    await this.store.update(domain, { remindedAt: this.now().toISOString() }, this.now());
  }

  // ---- Events for the channels ----

  /** Things a domain's channel has not been told of yet (enrollment, name lost or back, removal, certificates). */
  unannouncedEvents(limit = 100): Promise<HostingEvent[]> {
    return this.store.unannouncedEvents(limit);
  }

  markAnnounced(ids: readonly number[]): Promise<number> {
    return this.store.markAnnounced(ids, this.now());
  }

  /** The certificate manager's events, recorded on the domain (its state for `show`) and as an event to announce. */
  async onCertificateEvent(event: CertificateEvent): Promise<void> {
    const hosted = await this.store.byPolicyHost(hostName(event.name));
    if (!hosted || hosted.status === 'removed') return;
    const error = event.error ? event.error.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 300) : null;
    const certificate = {
      state: event.kind,
      at: event.at,
      notAfter: event.notAfter ?? null,
      error,
      retryAt: event.retryAt ?? null,
    };
    const now = this.now();
    await this.store.update(hosted.domain, { certificate }, now);
    const { notAfter, retryAt } = certificate;
    await this.store.addEvent(hosted.domain, `certificate-${event.kind}`, now, { notAfter, error, retryAt });
  }

  // ---- HostedPolicies: what the policy server reads ----

  policyFor(name: string): Promise<string | undefined> {
    return this.store.servedText(hostName(name));
  }

  namesNeedingCertificates(): Promise<string[]> {
    return this.store.certificateNames();
  }

  /** The records the owner publishes: the CNAME, the `_mta-sts` TXT with the served id, TLS-RPT when DNS has none. */
  async records(hosted: HostedDomain): Promise<HostingRecord[]> {
    const zone = await findZone(this.dns, hosted.domain);
    const record = (name: string, type: HostingRecord['type'], value: string, purpose: string) => ({
      ...{ name, host: relativeName(name, zone), type, value, ttl: TTL, purpose },
    });
    const target = cnameTarget(hosted.token, this.settings.name ?? '(MTASTS_HOSTING_NAME is not set)');
    const cnamePurpose =
      hosted.status === 'leaving' || hosted.status === 'removed'
        ? 'remove it once hosting has ended (the bot says when): this target serves no one else, and a new enrollment gets a new one'
        : "points the policy host at the bot; the target is this enrollment's own (a secret token): it proves the name is yours";
    const out: HostingRecord[] = [
      record(hosted.policyHost, 'CNAME', target, cnamePurpose),
      record(
        `_mta-sts.${hosted.domain}`,
        'TXT',
        formatStsRecord({ id: hosted.stsId }),
        'announces the policy; the id changes with every change of the policy, and the bot says when',
      ),
    ];
    if (await this.usesAddresses(hosted.policyHost)) {
      out.push(
        record(
          hosted.policyHost,
          'TXT',
          verifyText(hosted.token),
          `${hosted.policyHost} has A/AAAA records, not the CNAME: this TXT record proves it is yours (or replace them with the CNAME)`,
        ),
      );
    }
    const tlsrpt = await this.dns.txt(`_smtp._tls.${hosted.domain}`);
    if (!tlsrpt.ok || !tlsrpt.records.some((t) => t.startsWith('v=TLSRPTv1'))) {
      out.push(
        record(
          `_smtp._tls.${hosted.domain}`,
          'TXT',
          formatTlsRptRecord({ rua: [`mailto:tls-reports@${hosted.domain}`] }),
          `where senders send TLS reports (RFC 8460); tls-reports@${hosted.domain} is a placeholder: use a mailbox that exists`,
        ),
      );
    }
    return out;
  }

  // ---- Helpers ----

  /** Whether a policy host has addresses of its own (no CNAME): then the verify TXT is the proof. */
  private async usesAddresses(policyHost: string): Promise<boolean> {
    const cname = this.dns.cname ? await this.dns.cname(policyHost) : null;
    if (cname === null || cname.ok || cname.kind === 'error') return false;
    return (await this.dns.addresses(policyHost)).ok;
  }

  /** The next step of a proposal, step 2 counted from when DNS first carried step 1's id. */
  private nextStep(hosted: HostedDomain, proposal: MxProposal, now: Date): ProposalStep {
    const carriesAt = proposal.interimId === hosted.stsId ? hosted.dnsCarriesAt : null;
    return nextProposalStep(proposal, hosted.mode, now, carriesAt);
  }

  private pendingDays(): number {
    return this.settings.pendingDays ?? 7;
  }

  private windowMs(): number {
    return this.settings.rolloutWindowMs ?? ROLLOUT_WINDOW_MS;
  }

  private parse(input: string): { ok: true; domain: string } | Refusal {
    const parsed = parseDomain(input);
    return parsed.ok ? { ok: true, domain: parsed.domain.ascii } : refusal('input', parsed.error);
  }

  /**
   * The domain, hosted by this owner and not removed, or this owner's rival request for it (`claim`: shown as a
   * pending domain); any other case gets the same answer.
   */
  private async owned(
    input: string,
    owner: string,
  ): Promise<{ ok: true; hosted: HostedDomain; claim: HostedDomain | null } | Refusal> {
    const parsed = this.parse(input);
    if (!parsed.ok) return parsed;
    const hosted = await this.store.get(parsed.domain);
    if (hosted && hosted.status !== 'removed' && hosted.owner === owner)
      return { ok: true, hosted, claim: null };
    const claim = hosted?.status === 'pending' ? await this.store.claims(parsed.domain) : [];
    const own = claim.find((c) => c.owner === owner);
    if (hosted && own) return { ok: true, hosted, claim: claimAsHosted(own) };
    return refusal('not-hosted', `${parsed.domain} is not hosted ${ownerWords(owner)}`);
  }

  /** The owner's own domain, not a rival request (which waits for DNS and cannot be changed). */
  private async ownedServed(
    input: string,
    owner: string,
  ): Promise<{ ok: true; hosted: HostedDomain } | Refusal> {
    const found = await this.owned(input, owner);
    if (!found.ok || found.claim === null) return found;
    return refusal(
      'state',
      `${found.claim.domain} is pending: publish the records shown, then it can be changed`,
    );
  }

  /** Mode, max_age and mx of a request, checked; the mx patterns normalized. */
  private checkOptions(
    options: PolicyChangeRequest,
  ): { ok: true; mx: { ok: true; mx: string[] } | null } | Refusal {
    try {
      if (options.mode !== undefined) checkMode(options.mode);
      const problem = options.maxAge === undefined ? null : maxAgeProblem(options.maxAge);
      if (problem) return refusal('input', problem);
      const mx = options.mx ? checkMxPatterns(options.mx, this.settings.maxMxPatterns) : null;
      if (mx && mx.length === 0) return refusal('input', 'no mx pattern given');
      return { ok: true, mx: mx ? { ok: true, mx } : null };
    } catch (err) {
      if (err instanceof HostingInputError) return refusal('input', err.message);
      throw err;
    }
  }

  /** The MX hosts DNS lists for a domain, as exact patterns. */
  private async dnsMx(domain: string): Promise<{ ok: true; mx: string[]; skipped: string[] } | Refusal> {
    const answer = await this.dns.mx(domain);
    if (!answer.ok && answer.kind === 'error') {
      return refusal(
        'dns',
        `the MX records of ${domain} could not be read (${answer.message}): name the mail servers as mx patterns`,
      );
    }
    const hosts = answer.ok ? mxHostsOf(answer.records) : [];
    const skipped = answer.ok ? unusableMxHosts(answer.records) : [];
    if (hosts.length === 0) {
      const why = skipped.length > 0 ? `no usable MX host (skipped ${skipped.join(', ')})` : 'no MX records';
      return refusal('dns', `${domain} has ${why}: name the mail servers as mx patterns`);
    }
    if (hosts.length > this.settings.maxMxPatterns) {
      return refusal(
        'dns',
        `${domain} has ${hosts.length} MX hosts; a hosted policy lists at most ${this.settings.maxMxPatterns} (MTASTS_HOSTING_MAX_MX): give wildcard patterns`,
      );
    }
    return { ok: true, mx: hosts, skipped };
  }

  /** Enforce: the rollout rule (unless forced), and every MX host DNS lists covered by the patterns. */
  private async enforceAllowed(
    hosted: HostedDomain,
    next: HostedPolicy,
    force: boolean,
  ): Promise<{ ok: true; forced: string[] } | Refusal> {
    const forced: string[] = [];
    if (hosted.mode !== 'enforce') {
      const verdict = enforceVerdict(
        hosted.mode,
        await this.deps.history(hosted.domain),
        this.now(),
        this.windowMs(),
      );
      if (!verdict.ready && !force) {
        return refusal(
          'not-ready',
          `not ready to enforce ${hosted.domain}: it needs ${verdict.missing.join('; ')}`,
        );
      }
      if (!verdict.ready) forced.push(...verdict.missing);
    }
    const answer = await this.dns.mx(hosted.domain);
    if (!answer.ok && answer.kind === 'error') {
      return refusal(
        'dns',
        `the MX records of ${hosted.domain} could not be read (${answer.message}), so enforce is not safe to serve now`,
      );
    }
    const uncovered = uncoveredHosts(next.mx, answer.ok ? mxHostsOf(answer.records) : []);
    if (uncovered.length > 0) {
      return refusal(
        'uncovered',
        `in enforce, senders would refuse to deliver to ${uncovered.join(', ')}: no mx pattern covers ${uncovered.length === 1 ? 'it' : 'them'} while the MX records list ${uncovered.length === 1 ? 'it' : 'them'}`,
      );
    }
    return { ok: true, forced };
  }

  /** Serves a changed policy with a new id, unique among every id the domain has used. */
  private async serveNext(
    hosted: HostedDomain,
    next: HostedPolicy,
    fields: Parameters<HostingStore['serve']>[3],
  ): Promise<HostedDomain> {
    return this.store.serve(
      hosted.domain,
      version(next),
      (used) => nextId(this.now(), used),
      fields,
      this.now(),
    );
  }

  /**
   * Looks at the policy host's name, and records what changed. A pending domain goes active when DNS proves its
   * token, or passes to the rival request whose token DNS proves (the others are dropped: the store records a
   * `dropped` event for each, in the transaction that activates the winner, whoever looked: a pass, verify or add);
   * `asker` names whose token the message speaks of (a rival's, when it asks).
   */
  private async lookAtName(
    hosted: HostedDomain,
    hostingName: string,
    asker: string = hosted.token,
  ): Promise<{ hosted: HostedDomain; transition: Transition | null; message: string }> {
    const rivals = hosted.status === 'pending' ? await this.store.claims(hosted.domain) : [];
    const tokens = [asker, ...[hosted.token, ...rivals.map((c) => c.token)].filter((t) => t !== asker)];
    const seen = await proveControl(hosted.policyHost, tokens, this.dns, {
      ...{ hostingName, hostingAddresses: this.settings.addresses },
      allowPrivateNetworks: this.settings.allowPrivateNetworks,
    });
    const message =
      seen.kind === 'here' ? `${hosted.policyHost} points at the bot for this enrollment` : seen.message;
    const none = { transition: null, message };
    if (hosted.status === 'pending') return { ...(await this.lookAtPending(hosted, seen)), message };
    if (hosted.status !== 'active' || seen.kind === 'unknown') return { hosted, ...none };
    const now = this.now();
    if (seen.kind === 'here' && hosted.nameLostAt !== null) {
      await this.store.update(hosted.domain, { nameLostAt: null, nameProblem: null }, now);
      await this.store.addEvent(hosted.domain, 'name-back', now, {});
      return {
        ...none,
        hosted: await this.latest(hosted),
        transition: transition(hosted, 'name-back', message),
      };
    }
    if (seen.kind !== 'here' && hosted.nameLostAt === null) {
      const fields = { nameLostAt: now.toISOString(), nameProblem: seen.message };
      await this.store.update(hosted.domain, fields, now);
      await this.store.addEvent(hosted.domain, 'name-lost', now, { problem: seen.message });
      return {
        ...none,
        hosted: await this.latest(hosted),
        transition: transition(hosted, 'name-lost', message),
      };
    }
    return { hosted, ...none };
  }

  /**
   * A pending domain after a look at DNS: still pending, active (its own token), or its rival's and active. The
   * requests that lost are recorded by the store as `dropped` events, for the monitor to tell their owners.
   */
  private async lookAtPending(
    hosted: HostedDomain,
    seen: Proof,
  ): Promise<{ hosted: HostedDomain; transition: Transition | null }> {
    const now = this.now();
    if (seen.kind !== 'here') {
      if (seen.kind !== 'unknown') await this.store.update(hosted.domain, { nameProblem: seen.message }, now);
      return { hosted: await this.latest(hosted), transition: null };
    }
    let activated = false;
    if (seen.token !== hosted.token) {
      const rival = (await this.store.claims(hosted.domain)).find((c) => c.token === seen.token);
      activated = rival ? await this.store.promoteClaim(hosted.domain, rival.owner, now) : false;
    } else activated = await this.store.activate(hosted.domain, now);
    const latest = await this.latest(hosted);
    if (!activated) return { hosted: latest, transition: null };
    const words = `${latest.policyHost} points at the bot: the policy is served there now`;
    return { hosted: latest, transition: transition(latest, 'active', words) };
  }

  private async latest(hosted: HostedDomain): Promise<HostedDomain> {
    return (await this.store.get(hosted.domain)) ?? hosted;
  }

  /** A leaving domain whose cached policies have all expired is removed. */
  private async finishLeaving(hosted: HostedDomain): Promise<Transition | null> {
    const now = this.now();
    // Senders let a cached policy go only after DNS carries the new id: until then, the domain stays leaving.
    if (hosted.dnsCarriesAt === null) return null;
    const until = leavingUntilFrom(
      await this.store.versions(hosted.domain),
      now,
      new Date(hosted.dnsCarriesAt),
    );
    if (until !== null && until !== hosted.leavingUntil && Date.parse(until) > now.getTime()) {
      await this.store.update(hosted.domain, { leavingUntil: until }, now);
    }
    if (until !== null && Date.parse(until) > now.getTime()) return null;
    await this.store.retire(hosted.domain, now);
    return {
      ...{ domain: hosted.domain, owner: hosted.owner, channelId: hosted.channelId, kind: 'removed' },
      message: `${hosted.domain} is ${REMOVED_NAME}: no sender holds a policy other than mode none any more, so the CNAME ${hosted.policyHost} and the _mta-sts record must go now (hosting again needs a new enrollment with a fresh CNAME target)`,
    };
  }

  /** Reads the `_mta-sts` TXT now and records the id it carries. */
  private async lookAtDnsId(
    hosted: HostedDomain,
  ): Promise<{ ok: true; state: DnsIdState } | { ok: false; message: string }> {
    const answer = await this.dns.txt(`_mta-sts.${hosted.domain}`);
    if (!answer.ok && answer.kind === 'error') return { ok: false, message: answer.message };
    const records = answer.ok ? answer.records.filter((t) => t.startsWith('v=STSv1')) : [];
    const parsed = records.length === 1 ? parseStsRecord(records[0] ?? '').record : null;
    const state = await this.observeDnsId(hosted.domain, parsed?.id ?? null);
    return state ? { ok: true, state } : { ok: false, message: `${hosted.domain} is not hosted` };
  }
}

function transition(hosted: HostedDomain, kind: Transition['kind'], message: string): Transition {
  return { domain: hosted.domain, owner: hosted.owner, channelId: hosted.channelId, kind, message };
}

/** A rival request shown as what it will be: a pending domain of its owner's, with its own token. */
function claimAsHosted(claim: RivalClaim): HostedDomain {
  return {
    ...{
      domain: claim.domain,
      policyHost: `mta-sts.${claim.domain}`,
      owner: claim.owner,
      channelId: claim.channelId,
    },
    ...{ token: claim.token, status: 'pending', mode: claim.mode, maxAge: claim.maxAge, mx: claim.mx },
    ...{ stsId: claim.stsId, proposal: null, leavingUntil: null, nameLostAt: null, nameProblem: null },
    ...{ dnsId: null, dnsCheckedAt: null, dnsCarriesAt: null, remindedAt: null, certificate: null },
    ...{ createdAt: claim.createdAt, activatedAt: null, removedAt: null, updatedAt: claim.createdAt },
  };
}

function rivalNote(domain: string, days: number): string {
  return `another request for ${domain} is pending (for at most ${days} days): whichever request's CNAME target (or verify TXT) DNS shows first gets the domain, and the other is dropped`;
}

function replacedNote(domain: string, days: number): string {
  return `a request for ${domain} pending for more than ${days} days with no proof in DNS was replaced by this one`;
}

const HOSTING_OFF =
  'hosting is off: MTASTS_HOSTING_NAME is not set (the name under which each enrollment has its own CNAME target <token>.<MTASTS_HOSTING_NAME> for mta-sts.<domain>, sent to the bot by the wildcard *.<MTASTS_HOSTING_NAME>)';

function refusal(kind: RefusalKind, message: string): Refusal {
  return { ok: false, kind, message };
}

function taken(domain: string): Refusal {
  return refusal(
    'taken',
    `${domain} is already hosted for someone else; only they can change or remove it. If the domain is yours, ask them to remove it first.`,
  );
}

function leavingRefusal(hosted: HostedDomain): Refusal {
  return refusal(
    'state',
    `${hosted.domain} is leaving: mode none is served until ${hosted.leavingUntil ?? 'its cached policies expire'}, then it is removed`,
  );
}

function ownerWords(owner: string): string {
  return owner === CLI_OWNER ? 'from the command line' : 'by this workspace';
}

function limitMessage(owner: string, limit: number): string {
  return `${ownerWords(owner) === 'by this workspace' ? 'this workspace hosts' : 'the command line hosts'} ${limit} domains, the most allowed (MTASTS_HOSTING_MAX_PER_WORKSPACE)`;
}

function version(policy: HostedPolicy): Omit<NewVersion, 'stsId'> {
  return {
    mode: policy.mode,
    maxAge: policy.maxAge,
    mx: [...policy.mx],
    policyText: servableText(policy),
  };
}

/** A policy host name as the server hands it: lower case, no trailing dot. */
function hostName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
