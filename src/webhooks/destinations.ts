/** The services an incoming webhook can belong to: each gets the payload it documents. */
export type WebhookKind = 'slack' | 'mattermost' | 'discord' | 'json';

export const WEBHOOK_KINDS: readonly WebhookKind[] = ['slack', 'mattermost', 'discord', 'json'];

/** One destination named in MTASTS_WEBHOOKS. The URL is a secret (whoever has it can post): never log it. */
export interface Webhook {
  name: string;
  kind: WebhookKind;
  url: string;
}

/** A webhook's name: what `mtasts watch add --webhook NAME` refers to. */
export const WEBHOOK_NAME = /^[A-Za-z0-9_-]{1,40}$/;

export type WebhooksResult = { ok: true; webhooks: Webhook[] } | { ok: false; error: string };

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * MTASTS_WEBHOOKS: `name=url` entries, comma separated; a URL may start with its kind (`slack:`, `mattermost:`,
 * `discord:`, `json:`), else the kind is told from the URL. An error names the entry by its name or position, never
 * by its URL.
 */
export function parseWebhooks(text: string | undefined): WebhooksResult {
  const entries = (text ?? '')
    .split(/,(?=\s*[A-Za-z0-9_-]+\s*=)/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const webhooks: Webhook[] = [];
  for (const [i, entry] of entries.entries()) {
    const parsed = parseEntry(entry, i + 1);
    if (typeof parsed === 'string') return { ok: false, error: parsed };
    if (webhooks.some((w) => w.name === parsed.name)) {
      return { ok: false, error: `names the webhook "${parsed.name}" twice` };
    }
    webhooks.push(parsed);
  }
  return { ok: true, webhooks };
}

/** One `name=[kind:]url` entry, or what is wrong with it. */
function parseEntry(entry: string, position: number): Webhook | string {
  const eq = entry.indexOf('=');
  const name = eq < 0 ? '' : entry.slice(0, eq).trim();
  if (!WEBHOOK_NAME.test(name)) {
    return `entry ${position} must be name=url with a name of 1-40 letters, digits, "-" or "_"`;
  }
  let rest = entry.slice(eq + 1).trim();
  let kind: WebhookKind | null = null;
  const prefix = /^([a-z]+):(?!\/\/)/.exec(rest);
  if (prefix) {
    if (!WEBHOOK_KINDS.includes(prefix[1] as WebhookKind)) {
      return `webhook "${name}": unknown kind "${prefix[1]}" (use ${WEBHOOK_KINDS.map((k) => `${k}:`).join(', ')})`;
    }
    kind = prefix[1] as WebhookKind;
    rest = rest.slice(prefix[0].length);
  }
  let url: URL;
  try {
    url = new URL(rest);
  } catch {
    return `webhook "${name}": not a URL`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.test(url.hostname))) {
    return `webhook "${name}": the URL must be https:// (http:// only to this machine)`;
  }
  const told = kind ?? kindOf(url);
  if (!told) {
    return `webhook "${name}": its kind cannot be told from the URL; put slack:, mattermost:, discord: or json: before it`;
  }
  return { name, kind: told, url: url.href };
}

/** The kind a URL shows: Slack's hooks host, Discord's webhooks (its /slack form is Slack's payload), Mattermost's /hooks/. */
export function kindOf(url: URL): WebhookKind | null {
  const host = url.hostname.toLowerCase();
  if (host === 'hooks.slack.com' || host === 'hooks.slack-gov.com') return 'slack';
  if (/(^|\.)discord(app)?\.com$/.test(host) && url.pathname.startsWith('/api/webhooks/')) {
    return /\/slack\/?$/.test(url.pathname) ? 'slack' : 'discord';
  }
  if (/\/hooks\/[A-Za-z0-9]+\/?$/.test(url.pathname)) return 'mattermost';
  return null;
}
