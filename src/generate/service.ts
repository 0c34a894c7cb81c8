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
  bindFragment,
  type HostingSnippets,
  hostingSnippets,
  planRecords,
  type RecordsPlan,
  type RecordsRequest,
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
 * plan, the snippets, and the Domain Connect link where the provider supports it. Callers check the request first
 * (`recordsRequest`, `validateSetup`) so that bad flags are refused before any network step; planRecords checks it
 * again and throws RecordsInputError.
 */
export async function recordsFor(
  domain: Domain,
  request: RecordsRequest,
  ctx: RecordsContext,
): Promise<RecordsResult> {
  const report = await ctx.check(domain);
  const now = ctx.options.now?.() ?? new Date();
  const zone = await findZone(ctx.deps.dns, domain.ascii);
  const plan = planRecords(domain, request, report, zone, now);
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
  return {
    report,
    plan,
    bind: bindFragment(plan),
    snippets: hostingSnippets(plan),
    domainConnect: domainConnectOutcome(discovery, template, plan, ctx.domainConnectKey),
  };
}

function domainConnectOutcome(
  discovery: Discovery,
  template: Template,
  plan: RecordsPlan,
  key: SigningKey | null,
): DomainConnectOutcome {
  const provider = discovery.settings?.providerName ?? null;
  if (!discovery.supported) {
    return {
      supported: false,
      provider,
      applyUrl: null,
      message: `Not available: ${discovery.reason}. Publish the records by hand.`,
    };
  }
  if (!key) {
    return {
      supported: true,
      provider,
      applyUrl: null,
      message: `${provider} supports this template, but this installation has no Domain Connect signing key (MTASTS_DC_PRIVATE_KEY_FILE). Publish the records by hand.`,
    };
  }
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
    message: `${provider} supports one-click setup: open the link, sign in at ${provider} and confirm. It publishes both TXT records; the policy file and its web server are still yours to set up.`,
  };
}
