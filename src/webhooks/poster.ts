import { DEFAULT_SLACK_TIMEOUT_MS, type Poster, type PostResult } from '../monitor/deliver.js';
import type { OutboxRow } from '../store/monitor.js';
import { LOG_DESTINATION, WATCH_LIST_TEAM, webhookName } from '../store/subscriptions.js';
import type { Webhook } from './destinations.js';
import { alertObject, discordPayload, logBlock, mattermostPayload, slackWebhookMessage } from './payloads.js';

/** The body a webhook of each kind documents, for one alert. */
export function webhookBody(hook: Webhook, row: OutboxRow, now: Date): unknown {
  const follows = row.threadEventKey;
  switch (hook.kind) {
    case 'slack': {
      const m = slackWebhookMessage(row.payload, follows);
      return { text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false };
    }
    case 'mattermost':
      return mattermostPayload(row.payload, follows, now);
    case 'discord':
      return discordPayload(row.payload, follows, now);
    case 'json':
      return alertObject(row.payload, follows, now);
  }
}

/**
 * Posts alerts to one incoming webhook, once per call: the outbox retries. The URL is never part of a result (it is
 * a secret); an error names the webhook. 429 waits as the service asks (Retry-After, Discord's `retry_after` and
 * X-RateLimit-Reset-After, Mattermost's X-Ratelimit-Reset); 5xx, network errors and timeouts are retried; a webhook
 * that is gone (401, 403, 404, 410) stops its subscriptions; another refusal gives the alert up.
 */
export function webhookPoster(hook: Webhook, options: { timeoutMs?: number; now?: () => Date } = {}): Poster {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS;
  const now = options.now ?? (() => new Date());
  return {
    timeoutMs,
    async post(row: OutboxRow): Promise<PostResult> {
      let res: Response;
      try {
        res = await fetch(hook.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(webhookBody(hook, row, now())),
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        return { ok: false, kind: 'retry', error: `webhook ${hook.name}: ${networkError(err, timeoutMs)}` };
      }
      return classify(hook.name, res, await bodyText(res));
    },
  };
}

/** What a failed request was, without the URL: a timeout or the system's error code. */
function networkError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError')
    return `no answer within ${timeoutMs} ms`;
  return `request failed (${e.cause?.code ?? e.name ?? 'error'})`;
}

/** The start of an answer's body (4 KiB at most), or '' when it cannot be read. */
async function bodyText(res: Response): Promise<string> {
  try {
    const reader = res.body?.getReader();
    if (!reader) return '';
    let text = '';
    const decoder = new TextDecoder();
    while (text.length < 4096) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel().catch(() => {});
    return text.slice(0, 4096);
  } catch {
    return '';
  }
}

function classify(name: string, res: Response, body: string): PostResult {
  // Slack answers errors as a word in the body (invalid_payload, no_service): shown when it is one.
  const word = /^[a-z_]{1,40}$/.test(body.trim()) ? ` ${body.trim()}` : '';
  const what = `webhook ${name}: HTTP ${res.status}${word}`;
  if (res.status >= 200 && res.status < 300) return { ok: true, ts: '' };
  if (res.status === 429)
    return { ok: false, kind: 'rate-limited', retryAfterS: retryAfter(res, body), error: what };
  if (res.status >= 500) return { ok: false, kind: 'retry', error: what };
  if ([401, 403, 404, 410].includes(res.status)) return { ok: false, kind: 'channel-gone', error: what };
  if (res.status >= 300 && res.status < 400) {
    return { ok: false, kind: 'fatal', error: `${what} (a redirect: not followed; check the URL)` };
  }
  return { ok: false, kind: 'fatal', error: what };
}

/** Seconds a 429 asks to wait: Discord's `retry_after` (JSON body), Retry-After, X-RateLimit-Reset-After, X-Ratelimit-Reset. */
export function retryAfter(res: Response, body: string): number {
  const candidates: unknown[] = [];
  try {
    candidates.push((JSON.parse(body) as { retry_after?: unknown }).retry_after);
  } catch {
    // Not JSON: Slack and Mattermost say it in headers.
  }
  for (const h of ['retry-after', 'x-ratelimit-reset-after', 'x-ratelimit-reset'])
    candidates.push(res.headers.get(h));
  for (const c of candidates) {
    const n =
      typeof c === 'number' ? c : typeof c === 'string' && /^\d+(\.\d+)?$/.test(c.trim()) ? Number(c) : NaN;
    // X-Ratelimit-Reset may be an epoch time (some proxies): only a wait of under a day is taken as one.
    if (Number.isFinite(n) && n >= 0 && n < 86_400) return Math.max(1, Math.ceil(n));
  }
  return 1;
}

/** Writes each alert to the log as a readable block (in the JSON log, the block is the entry's `msg`). */
export function logPoster(write: (block: string) => void): Poster {
  return {
    timeoutMs: 1000,
    async post(row: OutboxRow): Promise<PostResult> {
      write(logBlock(row.payload, row.threadEventKey));
      return { ok: true, ts: '' };
    },
  };
}

export interface Destinations {
  /** The Slack app's poster, or null when no Slack app is configured. */
  slack: Poster | null;
  webhooks: readonly Webhook[];
  log: Poster;
  timeoutMs?: number;
  now?: () => Date;
}

/**
 * The poster the delivery worker uses: a row of the command line's watch list goes to its destination (a webhook
 * named in MTASTS_WEBHOOKS, or the log), any other to the Slack app's channel.
 */
export function routingPoster(d: Destinations): Poster {
  const hooks = new Map(
    d.webhooks.map((w) => [w.name, webhookPoster(w, { timeoutMs: d.timeoutMs, now: d.now })] as const),
  );
  const timeoutMs = Math.max(d.timeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS, d.slack?.timeoutMs ?? 0);
  return {
    timeoutMs,
    post(row: OutboxRow, threadTs: string | null): Promise<PostResult> {
      if (row.teamId !== WATCH_LIST_TEAM) {
        if (d.slack) return d.slack.post(row, threadTs);
        return Promise.resolve({
          ok: false,
          kind: 'retry',
          error: 'no Slack app is configured (SLACK_BOT_TOKEN): this alert waits for one',
        });
      }
      if (row.channelId === LOG_DESTINATION) return d.log.post(row, threadTs);
      const name = webhookName(row.channelId) ?? row.channelId;
      const hook = hooks.get(name);
      if (hook) return hook.post(row, threadTs);
      return Promise.resolve({
        ok: false,
        kind: 'channel-gone',
        error: `webhook ${name} is not in MTASTS_WEBHOOKS`,
      });
    },
  };
}
