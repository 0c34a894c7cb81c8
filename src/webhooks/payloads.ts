import { alertMessage } from '../slack/blocks/alert.js';
import { type Block, clip, context, esc, type Message } from '../slack/blocks/common.js';
import type { AlertPayload, EventPayload } from '../store/monitor-state.js';

/**
 * An alert as one JSON object, for `json:` webhooks and the JSON log (README, Webhooks): what happened (`kind`), to
 * which domain, how bad, the finding codes, the words of the Slack alert as plain text, and its times.
 */
export interface AlertObject {
  /** opened, escalated, reminder, recovered, changed, ready, tlsrpt-digest, tlsrpt-rate, imap-failing, imap-recovered */
  kind: string;
  /** The domain (A-label); for the TLS-RPT mailbox's alerts, its account (imaps://user@host:port). */
  domain: string;
  severity: 'error' | 'warning' | 'info';
  codes: string[];
  title: string;
  message: string;
  fix: string | null;
  /** What the fault means for mail now (errors only). */
  impact: string | null;
  /** The alert's whole text, plain. */
  text: string;
  /** The event key of the alert this one follows (a recovery, a reminder), or null. */
  follows: string | null;
  times: { sentAt: string; since?: string; until?: string; durationMs?: number };
}

const EMOJI: Record<string, string> = {
  alarm_clock: '⏰',
  arrows_counterclockwise: '🔄',
  calendar: '📆',
  hourglass: '⌛',
  inbox_tray: '📥',
  information_source: 'ℹ️',
  port: '🔌',
  rotating_light: '🚨',
  tada: '🎉',
  warning: '⚠️',
  white_check_mark: '✅',
  x: '❌',
};

const unentity = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/**
 * Slack mrkdwn as Markdown (`**bold**`, for Mattermost and Discord) or as plain text: entities undone, emoji codes as
 * emoji, and `@` followed by a word broken with a zero-width space so that text from DNS or a server cannot mention
 * anyone (`@channel`, `@everyone`).
 */
export function fromMrkdwn(text: string, to: 'markdown' | 'plain', emoji = true): string {
  const bold = to === 'markdown' ? '$1**$2**' : '$1$2';
  let out = unentity(text.replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s.,:;)!?])/gm, bold));
  if (emoji) out = out.replace(/:([a-z_]+):/g, (m, name: string) => EMOJI[name] ?? m);
  return out.replace(/@(?=\w)/g, '@\u200b');
}

/** The mrkdwn of a message's sections and contexts, in order. */
function mrkdwnOf(blocks: Block[]): string[] {
  return blocks.flatMap((b): string[] => {
    if (b.type === 'section' && typeof b.text?.text === 'string') return [b.text.text];
    if (b.type === 'context' && Array.isArray(b.elements)) {
      return [b.elements.map((e: { text?: string }) => e.text ?? '').join(' · ')];
    }
    return [];
  });
}

const isEvent = (p: AlertPayload): p is EventPayload =>
  p.kind === undefined || (p.kind as string) === 'event';

/** What the alert follows, in words: a follow-up cannot sit in a thread under a webhook. */
function followsLine(payload: AlertPayload): string {
  if (isEvent(payload)) {
    return `Follow-up to the alert "${payload.domain}: ${payload.event.info.title}"${payload.event.info.subject !== payload.domain ? ` (${payload.event.info.subject})` : ''}`;
  }
  if (payload.kind === 'imap-recovered')
    return `Follow-up to the alert "TLS-RPT mailbox failing since ${payload.since}"`;
  return `Follow-up to an earlier alert about ${'domain' in payload ? payload.domain : 'this'}`;
}

/**
 * The alert as the Slack app posts it, for a Slack incoming webhook: no buttons (nothing would answer them), the
 * slash-command hint replaced by the CLI's, and a follow-up opening with the alert it follows.
 */
export function slackWebhookMessage(payload: AlertPayload, follows: string | null): Message {
  const message = alertMessage(payload);
  const blocks = message.blocks.filter(
    (b) => !(b.type === 'context' && JSON.stringify(b.elements ?? []).includes('/mtasts ')),
  );
  if (blocks.length < message.blocks.length && 'domain' in payload) {
    const d = esc(payload.domain);
    blocks.push(
      context(
        `\`npx mtasts watch mute ${d} 24h\` silences these alerts · \`npx mtasts check ${d}\` for the full report`,
      ),
    );
  }
  if (follows) blocks.unshift(context(esc(clip(followsLine(payload), 2000))));
  return { text: message.text, blocks };
}

/** The alert as one object (see AlertObject). */
export function alertObject(payload: AlertPayload, follows: string | null, now: Date): AlertObject {
  const message = alertMessage(payload);
  const lines = mrkdwnOf(message.blocks).flatMap((t) => t.split('\n'));
  const plain = (t: string) => fromMrkdwn(t, 'plain', false);
  const impact = lines.find((l) => l.startsWith('*Impact now:*'));
  const base = {
    title: plain(message.text),
    impact: impact ? plain(impact.replace('*Impact now:*', '').trim()) : null,
    text: plain(mrkdwnOf(message.blocks).join('\n')),
    follows,
  };
  const sentAt = now.toISOString();
  if (isEvent(payload)) {
    const i = payload.event.info;
    const recovered = payload.event.kind === 'recovered';
    return {
      ...base,
      kind: payload.event.kind,
      domain: payload.domain,
      severity: recovered ? 'info' : i.severity,
      codes: i.code ? [i.code] : [],
      message: i.message,
      fix: recovered ? null : i.fix,
      times: {
        sentAt,
        ...(payload.event.durationMs !== undefined ? { durationMs: payload.event.durationMs } : {}),
      },
    };
  }
  return { ...base, ...otherKinds(payload, lines.map(plain)), times: { sentAt, ...timesOf(payload) } };
}

type Other = Exclude<AlertPayload, EventPayload>;

function otherKinds(
  p: Other,
  lines: string[],
): Pick<AlertObject, 'kind' | 'domain' | 'severity' | 'codes' | 'message' | 'fix'> {
  const rest = lines.slice(1).join('\n');
  switch (p.kind) {
    case 'tlsrpt-digest':
      return { kind: p.kind, domain: p.domain, severity: 'info', codes: [], message: rest, fix: null };
    case 'tlsrpt-rate':
      return { kind: p.kind, domain: p.domain, severity: 'warning', codes: [], message: rest, fix: null };
    case 'imap-failing':
      return {
        kind: p.kind,
        domain: p.account,
        severity: 'error',
        codes: [],
        message: p.error,
        fix: fixLine(lines),
      };
    case 'imap-recovered':
      return { kind: p.kind, domain: p.account, severity: 'info', codes: [], message: rest, fix: null };
    default: {
      // Hosted MTA-STS: a failure, a lost name, a pending id or a dropped request is a warning, the rest news.
      const warn = [
        'certificate-failed',
        'hosting-name-lost',
        'hosting-id-reminder',
        'hosting-dropped',
      ].includes(p.kind);
      const severity = warn ? 'warning' : 'info';
      return { kind: p.kind, domain: p.domain, severity, codes: [], message: rest, fix: null };
    }
  }
}

const fixLine = (lines: string[]) =>
  lines
    .find((l) => l.startsWith('Fix:'))
    ?.slice(4)
    .trim() ?? null;

function timesOf(p: Other): { since?: string; until?: string } {
  switch (p.kind) {
    case 'tlsrpt-digest':
      return { since: p.from, until: p.to };
    case 'imap-failing':
    case 'imap-recovered':
      return { since: p.since, until: p.at };
    default:
      return {};
  }
}

const COLOR = { error: 0xe01e5a, warning: 0xecb22e, info: 0x2eb67d } as const;
const hex = (n: number) => `#${n.toString(16).padStart(6, '0').toUpperCase()}`;

/** The alert's whole text in Markdown (a follow-up opening with the alert it follows). */
function markdownBody(payload: AlertPayload, follows: string | null): string {
  return fromMrkdwn(mrkdwnOf(slackWebhookMessage(payload, follows).blocks).join('\n'), 'markdown');
}

/** Mattermost's incoming webhook: `text` and Slack-compatible `attachments` (with its own Markdown). */
export function mattermostPayload(payload: AlertPayload, follows: string | null, now: Date) {
  const o = alertObject(payload, follows, now);
  const body = markdownBody(payload, follows);
  return {
    text: fromMrkdwn(esc(o.title), 'markdown'),
    attachments: [
      { fallback: fromMrkdwn(esc(o.title), 'plain'), color: hex(COLOR[o.severity]), text: clip(body, 7000) },
    ],
  };
}

/** Discord's webhook: `content` and one embed; no mentions are parsed, whatever the text holds. */
export function discordPayload(payload: AlertPayload, follows: string | null, now: Date) {
  const o = alertObject(payload, follows, now);
  const body = markdownBody(payload, follows);
  return {
    content: clip(fromMrkdwn(esc(o.title), 'markdown'), 2000),
    embeds: [
      {
        title: clip(fromMrkdwn(esc(o.title), 'plain'), 256),
        description: clip(body, 4000),
        color: COLOR[o.severity],
        timestamp: o.times.sentAt,
      },
    ],
    allowed_mentions: { parse: [] as string[] },
  };
}

/** The alert as a readable block for the log: its headline, then its lines indented. */
export function logBlock(payload: AlertPayload, follows: string | null): string {
  const message = slackWebhookMessage(payload, follows);
  const lines = fromMrkdwn(mrkdwnOf(message.blocks).join('\n'), 'plain', false).split('\n');
  return [`alert: ${fromMrkdwn(message.text, 'plain', false)}`, ...lines.map((l) => `  ${l}`)].join('\n');
}
