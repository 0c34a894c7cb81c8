import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { nonPublicReason } from '../core/net/address-guard.js';
import type { DnsLookups } from '../core/net/dns.js';
import type { HttpsGetEvidence, HttpsGetOptions } from '../core/net/https-get.js';
import { projectFile } from '../paths.js';

/**
 * Domain Connect (the protocol DNS providers implement for one-click setup), as a service provider uses it in the
 * synchronous flow: discovery (`_domainconnect` TXT, then the provider's settings), the template-support check, and
 * the signed apply URL.
 */

/** The Domain Connect template schema (the fields the Templates repository's schema defines for records we use). */
const templateRecord = z
  .object({
    type: z.enum([
      'A',
      'AAAA',
      'CNAME',
      'MX',
      'TXT',
      'SRV',
      'SPFM',
      'NS',
      'APEXCNAME',
      'REDIR301',
      'REDIR302',
    ]),
    host: z.string().min(1),
    ttl: z.number().int().min(1).max(2147483647),
    data: z.string().optional(),
    pointsTo: z.string().optional(),
    txtConflictMatchingMode: z.enum(['None', 'All', 'Prefix']).optional(),
    txtConflictMatchingPrefix: z.string().optional(),
    groupId: z.string().optional(),
    essential: z.enum(['Always', 'OnApply']).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.type === 'TXT' && r.data === undefined)
      ctx.addIssue({ code: 'custom', message: 'a TXT record needs data' });
    if (r.txtConflictMatchingMode === 'Prefix' && !r.txtConflictMatchingPrefix) {
      ctx.addIssue({ code: 'custom', message: 'Prefix conflict matching needs txtConflictMatchingPrefix' });
    }
    if (r.txtConflictMatchingMode !== undefined && r.type !== 'TXT') {
      ctx.addIssue({ code: 'custom', message: 'txtConflictMatchingMode applies to TXT records only' });
    }
  });

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i;

export const templateSchema = z
  .object({
    providerId: z.string().regex(DNS_NAME, 'providerId must be a domain name the provider controls'),
    providerName: z.string().min(1),
    serviceId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    serviceName: z.string().min(1),
    version: z.number().int().min(1),
    logoUrl: z.url().optional(),
    description: z.string().optional(),
    variableDescription: z.string().optional(),
    syncBlock: z.boolean().optional(),
    sharedProviderName: z.boolean().optional(),
    sharedServiceName: z.boolean().optional(),
    syncPubKeyDomain: z.string().regex(DNS_NAME).optional(),
    syncRedirectDomain: z.string().optional(),
    multiInstance: z.boolean().optional(),
    warnPhishing: z.boolean().optional(),
    hostRequired: z.boolean().optional(),
    records: z.array(templateRecord).min(1),
  })
  .strict();

export type Template = z.infer<typeof templateSchema>;

export const TEMPLATE_FILE = projectFile('domainconnect/mtasts-bot.app.mtasts.json');

/** Reads and validates the template shipped in the repository. */
export function loadTemplate(file: URL | string = TEMPLATE_FILE): Template {
  return templateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

let shipped: Template | null = null;

/** The shipped template, read and validated on first use only. */
export function shippedTemplate(): Template {
  shipped ??= loadTemplate();
  return shipped;
}

/** The variables a template uses (`%name%` in host, data or pointsTo), lower-cased, built-ins excluded. */
export function templateVariables(template: Template): string[] {
  const names = new Set<string>();
  for (const r of template.records) {
    for (const text of [r.host, r.data ?? '', r.pointsTo ?? '']) {
      for (const m of text.matchAll(/%([A-Za-z0-9]+)%/g)) names.add((m[1] ?? '').toLowerCase());
    }
  }
  for (const builtin of ['domain', 'host', 'fqdn']) names.delete(builtin);
  return [...names].sort();
}

const settingsSchema = z.object({
  providerId: z.string().min(1),
  providerName: z.string().min(1),
  providerDisplayName: z.string().optional(),
  urlSyncUX: z.url().optional(),
  urlAsyncUX: z.url().optional(),
  urlAPI: z.url(),
  width: z.number().optional(),
  height: z.number().optional(),
});

export type ProviderSettings = z.infer<typeof settingsSchema>;

export interface DiscoveryOptions {
  dns: DnsLookups;
  httpsGet: (options: HttpsGetOptions) => Promise<HttpsGetEvidence>;
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  ca?: string[];
  /** For tests: the port of every HTTPS request (443 on the Internet). */
  port?: number;
  now: Date;
}

export type Discovery =
  | { supported: true; settings: ProviderSettings; discoveryHost: string }
  | { supported: false; reason: string; settings?: ProviderSettings };

/**
 * Discovers whether the DNS provider of `zone` supports Domain Connect and this template: the `_domainconnect` TXT
 * record names the provider's API host, its settings say where the sync UX and the API are, and the API says whether
 * the template is supported. Never throws: each way it can fail is a reason.
 */
export async function discover(
  zone: string,
  template: Pick<Template, 'providerId' | 'serviceId'>,
  options: DiscoveryOptions,
): Promise<Discovery> {
  const txt = await options.dns.txt(`_domainconnect.${zone}`);
  if (!txt.ok || txt.records.length === 0) {
    return {
      supported: false,
      reason:
        !txt.ok && txt.kind === 'error'
          ? `the _domainconnect.${zone} lookup failed (${txt.message})`
          : `the DNS provider of ${zone} does not announce Domain Connect (no _domainconnect TXT record)`,
    };
  }
  const discoveryHost = (txt.records[0] ?? '').trim().replace(/\/+$/, '');
  const settingsUrl = `https://${discoveryHost}/v2/${zone}/settings`;
  const settingsAnswer = await getJson(settingsUrl, options);
  if ('error' in settingsAnswer)
    return { supported: false, reason: `the provider's settings: ${settingsAnswer.error}` };
  const settings = settingsSchema.safeParse(settingsAnswer.json);
  if (!settings.success) {
    return {
      supported: false,
      reason: `the provider's settings at ${settingsUrl} are not a Domain Connect settings document`,
    };
  }
  if (!settings.data.urlSyncUX) {
    return {
      supported: false,
      reason: `${settings.data.providerName} offers no synchronous (one-click) flow`,
      settings: settings.data,
    };
  }
  const supportUrl = `${settings.data.urlAPI.replace(/\/+$/, '')}/v2/domainTemplates/providers/${encodeURIComponent(template.providerId)}/services/${encodeURIComponent(template.serviceId)}`;
  const support = await getJson(supportUrl, options);
  if ('error' in support) {
    return {
      supported: false,
      reason:
        support.status === 404
          ? `${settings.data.providerName} supports Domain Connect but not this template (${template.providerId}/${template.serviceId}) yet`
          : `the template check at ${settings.data.providerName}: ${support.error}`,
      settings: settings.data,
    };
  }
  return { supported: true, settings: settings.data, discoveryHost };
}

async function getJson(
  url: string,
  options: DiscoveryOptions,
): Promise<{ json: unknown } | { error: string; status?: number }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { error: `"${url}" is not a URL` };
  }
  if (parsed.protocol !== 'https:') return { error: `${url} is not https` };
  const host = parsed.hostname;
  const addresses = await options.dns.addresses(host);
  if (!addresses.ok) return { error: `${host} does not resolve (${addresses.message})` };
  const allowed = addresses.records.filter(
    (a) => options.allowPrivateNetworks || nonPublicReason(a) === null,
  );
  if (allowed.length === 0) return { error: `${host} resolves only to non-public addresses` };
  const port = options.port ?? (parsed.port ? Number(parsed.port) : 443);
  const answer = await options.httpsGet({
    host,
    addresses: allowed,
    port,
    path: `${parsed.pathname}${parsed.search}`,
    maxBytes: 64 * 1024,
    accept: 'application/json',
    timeoutMs: options.timeoutMs,
    now: options.now,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  const cert = answer.tls?.certificate;
  if (cert && (!cert.trusted || !cert.nameMatches || cert.expired)) {
    return { error: `the certificate of ${host} is not valid` };
  }
  if (!answer.http) return { error: answer.error?.message ?? `no answer from ${host}` };
  if (answer.http.status !== 200) {
    return { error: `${url} answered HTTP ${answer.http.status}`, status: answer.http.status };
  }
  if (answer.http.body === null) return { error: `${url} sent more than 64 KiB` };
  try {
    return { json: JSON.parse(answer.http.body) };
  } catch {
    return { error: `${url} did not send JSON` };
  }
}

export interface SigningKey {
  /** PEM of the RSA private key whose public half is published under the template's syncPubKeyDomain. */
  privateKeyPem: string;
  /** The host of that TXT record under syncPubKeyDomain, e.g. "_dck1". */
  keyHost: string;
}

/**
 * The synchronous apply URL: the template's variables as query parameters, sorted by name, signed with RSA-SHA256
 * over the query string (without `sig` and `key`), then `sig` (base64) and `key` appended, as the Domain Connect spec
 * requires of templates that declare a syncPubKeyDomain.
 */
export function applyUrl(
  settings: Pick<ProviderSettings, 'urlSyncUX'>,
  template: Pick<Template, 'providerId' | 'serviceId'>,
  target: { zone: string; host: string },
  variables: Record<string, string>,
  key: SigningKey,
): string {
  if (!settings.urlSyncUX) throw new Error('the provider has no synchronous flow');
  const params: [string, string][] = [['domain', target.zone]];
  if (target.host) params.push(['host', target.host]);
  for (const [name, value] of Object.entries(variables)) params.push([name, value]);
  params.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const query = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const signer = createSign('RSA-SHA256');
  signer.update(query);
  const sig = signer.sign(key.privateKeyPem, 'base64');
  const base = settings.urlSyncUX.replace(/\/+$/, '');
  return `${base}/v2/domainTemplates/providers/${encodeURIComponent(template.providerId)}/services/${encodeURIComponent(template.serviceId)}/apply?${query}&sig=${encodeURIComponent(sig)}&key=${encodeURIComponent(key.keyHost)}`;
}
