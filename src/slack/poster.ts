import { webApi } from '@slack/bolt';
import { DEFAULT_SLACK_TIMEOUT_MS, type Poster, type PostResult } from '../monitor/deliver.js';
import type { OutboxRow } from '../store/monitor.js';
import { alertMessage } from './blocks/alert.js';

/** Errors after which a channel can no longer receive the bot's messages. */
const CHANNEL_GONE = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'channel_is_archived',
  'team_access_not_granted',
  'restricted_action',
  'account_inactive',
]);
const FATAL = new Set([
  'invalid_blocks',
  'invalid_arguments',
  'msg_too_long',
  'no_text',
  'invalid_auth',
  'token_revoked',
  'not_authed',
]);

/**
 * Posts alerts with chat.postMessage. The client neither retries nor waits on rate limits by itself: the outbox
 * decides, so that a retry survives a restart. Every call is abandoned after `timeoutMs` (the request is aborted), and
 * counts as a failed attempt to retry: Slack may or may not have taken it.
 */
export function slackPoster(
  token: string | ((teamId: string) => string | null | Promise<string | null>),
  apiUrl: string | null,
  options: { timeoutMs?: number } = {},
): Poster {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS;
  const tokenFor = typeof token === 'string' ? () => token || null : token;
  const clients = new Map<string, webApi.WebClient>();
  const clientFor = (t: string) => {
    let client = clients.get(t);
    if (!client) {
      client = new webApi.WebClient(t, {
        ...(apiUrl ? { slackApiUrl: apiUrl } : {}),
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        timeout: timeoutMs,
        logLevel: webApi.LogLevel.ERROR,
      });
      clients.set(t, client);
    }
    return client;
  };
  return {
    timeoutMs,
    async post(row: OutboxRow, threadTs: string | null): Promise<PostResult> {
      const t = await tokenFor(row.teamId);
      if (!t) return { ok: false, kind: 'channel-gone', error: 'the app is not installed in this workspace' };
      const client = clientFor(t);
      const message = alertMessage(row.payload, { team: row.teamId, channel: row.channelId });
      try {
        const base = {
          channel: row.channelId,
          text: message.text,
          blocks: message.blocks as never,
          unfurl_links: false,
          unfurl_media: false,
        };
        const res = await client.chat.postMessage(
          threadTs ? { ...base, thread_ts: threadTs, reply_broadcast: row.broadcast } : base,
        );
        return { ok: true, ts: String(res.ts ?? '') };
      } catch (err) {
        return classify(err, timeoutMs);
      }
    },
  };
}

function classify(err: unknown, timeoutMs: number): PostResult {
  const e = err as {
    code?: string;
    retryAfter?: number;
    data?: { error?: string };
    statusCode?: number;
    original?: { name?: string };
    message?: string;
  };
  if (e.code === webApi.ErrorCode.RateLimitedError) {
    return { ok: false, kind: 'rate-limited', retryAfterS: e.retryAfter ?? 1, error: 'rate limited (429)' };
  }
  // A 429 whose Retry-After the client could not read is still Slack asking to wait.
  if (e.message?.startsWith('Retry header did not contain a valid timeout')) {
    return {
      ok: false,
      kind: 'rate-limited',
      retryAfterS: 1,
      error: 'rate limited (429, no valid Retry-After)',
    };
  }
  if (e.code === webApi.ErrorCode.PlatformError) {
    const error = e.data?.error ?? 'unknown_error';
    if (error === 'ratelimited') return { ok: false, kind: 'rate-limited', retryAfterS: 1, error };
    if (CHANNEL_GONE.has(error)) return { ok: false, kind: 'channel-gone', error };
    if (FATAL.has(error)) return { ok: false, kind: 'fatal', error };
    return { ok: false, kind: 'retry', error };
  }
  if (e.code === webApi.ErrorCode.HTTPError)
    return { ok: false, kind: 'retry', error: `HTTP ${e.statusCode ?? '?'}` };
  if (e.code === webApi.ErrorCode.RequestError && e.original?.name === 'TimeoutError')
    return { ok: false, kind: 'retry', error: `no answer from Slack within ${timeoutMs} ms` };
  return { ok: false, kind: 'retry', error: e.message ?? String(err) };
}
