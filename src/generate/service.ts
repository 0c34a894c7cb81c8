import type { CheckDeps, CheckOptions, Report } from '../core/check.js';
import type { Domain } from '../core/domain.js';
import { httpsGet } from '../core/net/https-get.js';
import {
  applyUrl,
  type Discovery,
  discover,
  type SigningKey,
  shippedTemplate,
  type Template,
} from './domain-connect.js';
import {
  type HostingSnippets,
  type PlanStep,
  planRecords,
  type RecordsPlan,
  type RecordsRequest,
  type RolloutHistory,
  relativeName,
} from './records.js';
import { findZone } from './zone.js';

export interface DomainConnectOutcome {
  supported: boolean;
  provider: string | null;
  applyUrl: string | null;
  message: string;
}

export interface RecordsResult {
  report: Report;
  plan: RecordsPlan;
  /** Step 1's BIND fragment and snippets (every step carries its own in plan.steps). */
  bind: string;
  snippets: HostingSnippets;
  domainConnect: DomainConnectOutcome;
}

export interface RecordsContext {
  options: CheckOptions;
  deps: CheckDeps;
  check: (domain: Domain) => Promise<Report>;
  domainConnectKey: SigningKey | null;
  domainConnectPort?: number;
}

/**
 * Everything `records` answers, for the CLI and Slack alike: the check of the domain's current state, its zone, the
 * plan, the snippets, and the Domain Connect link where the provider supports it. `history` is what the monitor
 * knows of the domain (the rollout rule's inputs), null where there is no monitoring database. Callers check the
 * request first (`recordsRequest`, `validateSetup`) so that bad flags are refused before any network step;
 * planRecords checks it again and throws RecordsInputError.
 */
export async function recordsFor(
  domain: Domain,
  request: RecordsRequest,
  ctx: RecordsContext,
  history: RolloutHistory | null = null,
): Promise<RecordsResult> {
  const report = await ctx.check(domain);
  const now = ctx.options.now?.() ?? new Date();
  const zone = await findZone(ctx.deps.dns, domain.ascii);
  const plan = planRecords(domain, request, report, zone, now, history);
  const first = plan.steps[0] as PlanStep;
  const { template, discovery } = await domainConnectDiscovery(ctx, zone, now);
  return {
    report,
    plan,
    bind: first.bind,
    snippets: first.snippets,
    domainConnect: domainConnectOutcome(discovery, template, plan, ctx.domainConnectKey),
  };
}

/** What the domain's DNS provider says of the shipped Domain Connect template (discovery through the engine's network). */
export async function domainConnectDiscovery(
  ctx: Pick<RecordsContext, 'deps' | 'options' | 'domainConnectPort'>,
  zone: string,
  now: Date,
): Promise<{ template: Template; discovery: Discovery }> {
  const template = shippedTemplate();
  const discovery = await discover(zone, template, {
    dns: ctx.deps.dns,
    httpsGet,
    allowPrivateNetworks: ctx.options.allowPrivateNetworks,
    timeoutMs: ctx.options.timeoutMs,
    now,
    ...(ctx.options.ca ? { ca: ctx.options.ca } : {}),
    ...(ctx.domainConnectPort ? { port: ctx.domainConnectPort } : {}),
  });
  return { template, discovery };
}

/** Why no one-click link can be made (the provider does not support it, or no signing key); null when one can. */
export function noLinkReason(discovery: Discovery, key: SigningKey | null): string | null {
  const provider = discovery.settings?.providerName ?? null;
  if (!discovery.supported) return `Not available: ${discovery.reason}. Publish the records by hand.`;
  if (!key)
    return `${provider} supports this template, but this installation has no Domain Connect signing key (MTASTS_DC_PRIVATE_KEY_FILE). Publish the records by hand.`;
  return null;
}

function domainConnectOutcome(
  discovery: Discovery,
  template: Template,
  plan: RecordsPlan,
  key: SigningKey | null,
): DomainConnectOutcome {
  const provider = discovery.settings?.providerName ?? null;
  const refused = noLinkReason(discovery, key);
  if (refused !== null || !key || !discovery.supported)
    return { supported: discovery.supported, provider, applyUrl: null, message: refused ?? '' };
  const host = relativeName(plan.domain, plan.zone);
  const url = applyUrl(
    discovery.settings,
    template,
    { zone: plan.zone, host: host === '@' ? '' : host },
    { stsid: plan.id, rua: plan.rua.join(',') },
    key,
  );
  return {
    supported: true,
    provider,
    applyUrl: url,
    message: `${provider} supports one-click setup of step 1's TXT records (id ${plan.id}): serve step 1's policy file first, then open the link, sign in at ${provider} and confirm. The policy file, its web server${plan.steps.length > 1 ? ' and the later steps' : ''} are still yours to set up.`,
  };
}
