import {
  type AlertPayload,
  type EventPayload,
  isHostingPayload,
  type MailboxFailingPayload,
  type MailboxRecoveredPayload,
} from '../../store/monitor-state.js';
import { alertActions } from './actions.js';
import { clip, code, context, esc, type Message, preformatted, quoted, section } from './common.js';
import { hostingAlertMessage } from './hosting.js';
import { impactLine } from './report.js';
import { digestMessage, failureRateMessage } from './tlsrpt.js';

const ICON = {
  opened: ':rotating_light:',
  escalated: ':rotating_light:',
  reminder: ':alarm_clock:',
  recovered: ':white_check_mark:',
  changed: ':arrows_counterclockwise:',
  ready: ':tada:',
} as const;

/**
 * What an error means for mail now, from the senders' side: the impact the monitor stored with the event (the policy
 * in force, or what cached senders still do and until when). An alert queued before impacts were stored gets the
 * little its mode tells, without claiming more.
 */
export function impactIn(payload: EventPayload, severity: string): string {
  if (severity !== 'error') return '';
  if (payload.impact) return impactLine(payload.impact);
  switch (payload.mode) {
    case 'enforce':
      return '*Impact now:* mode is *enforce*, so senders that apply MTA-STS refuse or defer mail affected by this.';
    case 'testing':
      return '*Impact now:* mode is *testing*: senders still deliver and report the failure; in enforce this would stop mail.';
    default:
      return '*Impact now:* no policy in force was found: senders that cached one keep it until its max_age runs out; the others deliver without verified TLS.';
  }
}

/** How loud an alert is: an outage is not a 30-day certificate notice. */
function level(info: EventPayload['event']['info']): { mark: string; word: string } {
  if (info.severity === 'error') return { mark: ':rotating_light:', word: 'Error' };
  const days = info.cert?.level;
  if (info.severity === 'info' || days === 30 || days === 14) return { mark: ':calendar:', word: 'Notice' };
  return { mark: ':warning:', word: 'Warning' };
}

export function humanDuration(ms: number): string {
  const minutes = Math.round(ms / 60000);
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.round(ms / 3600000);
  if (hours < 48) return `${hours} hours`;
  return `${Math.round(ms / 86400000)} days`;
}

/**
 * One alert as a Slack message: what happened, its impact in the current mode, what to do. Text from DNS and web
 * servers is escaped and no link is built from it, so DNS content cannot spoof the alert.
 */
export function alertMessage(payload: AlertPayload, where?: { team: string; channel: string }): Message {
  // An alert about a domain that may still need acting on carries Mute and Re-check (where it is posted).
  const withActions = (message: Message, domain: string): Message => {
    if (where) message.blocks.push(alertActions({ domain, team: where.team, channel: where.channel }, false));
    return message;
  };
  if (isHostingPayload(payload)) return hostingAlertMessage(payload, where);
  switch (payload.kind) {
    case 'tlsrpt-digest':
      return digestMessage(payload);
    case 'tlsrpt-rate':
      return withActions(failureRateMessage(payload), payload.domain);
    case 'imap-failing':
      return mailboxFailingMessage(payload);
    case 'imap-recovered':
      return mailboxRecoveredMessage(payload);
    default:
      return ['recovered', 'ready'].includes(payload.event.kind)
        ? eventMessage(payload)
        : withActions(eventMessage(payload), payload.domain);
  }
}

/** How long from one ISO time to another (0 when either is not a time). */
const between = (from: string, to: string): number => Math.max(0, Date.parse(to) - Date.parse(from) || 0);

/** The mailbox and folder, as text the operator set but shown inert all the same. */
const mailboxLine = (p: { account: string; folder: string }) =>
  `Mailbox ${quoted(p.account, 200)}, folder ${quoted(p.folder, 100)}`;

/**
 * The TLS-RPT mailbox has failed for a day: to the operator's channel. The error may hold text the server chose (a
 * login refusal's reason): it is shown inert.
 */
function mailboxFailingMessage(p: MailboxFailingPayload): Message {
  const lines = [
    `${ICON.opened} *The TLS-RPT mailbox has failed for ${humanDuration(between(p.since, p.at))}*`,
    `${mailboxLine(p)}: every pass since ${esc(p.since)} failed.`,
    `Last error: ${quoted(p.error, 600)}`,
    'Reports mailed there wait in the folder, unread; once it is read again they are taken in (none is lost unless the mailbox fills up).',
    '*Fix:* what the error names (the `MTASTS_TLSRPT_IMAP_*` settings, the account, the folder); `npx mtasts ingest-imap --once` tries at once and says how it went.',
  ];
  return {
    text: esc(clip(`TLS-RPT mailbox failing since ${p.since}: ${p.account}`, 300)),
    blocks: [
      section(lines.join('\n')),
      context(
        "Posted to MTASTS_OPERATOR_CHANNEL: the mailbox is the app's, not a workspace's. Its recovery goes in this thread.",
      ),
    ],
  };
}

/** The mailbox is read again after a failure that was alerted: in that alert's thread. */
function mailboxRecoveredMessage(p: MailboxRecoveredPayload): Message {
  const lines = [
    `${ICON.recovered} *The TLS-RPT mailbox is read again*`,
    `${mailboxLine(p)}: read at ${esc(p.at)}, after failing for ${humanDuration(between(p.since, p.at))} (since ${esc(p.since)}).`,
  ];
  if (p.error) lines.push(`The last error was ${quoted(p.error, 600)}`);
  return {
    text: esc(clip(`TLS-RPT mailbox read again: ${p.account}`, 300)),
    blocks: [section(lines.join('\n'))],
  };
}

function eventMessage(payload: EventPayload): Message {
  const { event, domain } = payload;
  const i = event.info;
  const subject = i.subject !== domain ? ` · ${code(i.subject)}` : '';
  const lines: string[] = [];
  const { mark, word } = level(i);
  let headline: string;
  switch (event.kind) {
    case 'recovered':
      headline = `${ICON.recovered} *${esc(domain)}: recovered: ${esc(i.title)}*${subject}`;
      lines.push(
        `Resolved (${esc(event.resolution ?? 'no longer seen')}) after ${humanDuration(event.durationMs ?? 0)}.`,
      );
      break;
    case 'reminder':
      headline = `${ICON.reminder} ${mark} ${word} · *${esc(domain)}: still ${esc(i.title.toLowerCase())}*${subject}`;
      lines.push(
        `Ongoing for ${humanDuration(event.durationMs ?? 0)}.`,
        esc(i.message),
        impactIn(payload, i.severity),
        `*Fix:* ${esc(i.fix)}`,
      );
      break;
    case 'changed': {
      // A change alone is news; with a problem of the new hosts folded in, it is as loud as that problem.
      const loud = i.severity !== 'info';
      headline = `${loud ? `${mark} ${word} · ` : `${ICON.changed} `}*${esc(domain)}: ${esc(i.title)}*`;
      lines.push(esc(i.message), impactIn(payload, i.severity), loud ? `*Fix:* ${esc(i.fix)}` : esc(i.fix));
      break;
    }
    case 'ready': {
      headline = `${ICON.ready} *${esc(domain)}: ${esc(i.title)}*`;
      lines.push(esc(i.message));
      break;
    }
    default:
      headline = `${mark} ${word} · *${esc(domain)}: ${esc(i.title)}*${subject}`;
      lines.push(esc(i.message), impactIn(payload, i.severity), `*Fix:* ${esc(i.fix)}`);
  }
  const blocks = [section([headline, ...lines.filter(Boolean)].join('\n'))];
  if (event.kind === 'ready' && payload.ready) {
    const r = payload.ready;
    blocks.push(
      section(
        `*Publish these together* (new id ${code(r.id)}):\n${preformatted(r.bind)}\nPolicy file:\n${preformatted(r.policyText)}`,
      ),
    );
  }
  if (event.kind !== 'recovered' && event.kind !== 'ready') {
    blocks.push(
      context(
        `\`/mtasts mute ${esc(domain)} 24h\` silences these alerts in this channel · \`/mtasts check ${esc(domain)}\` for the full report`,
      ),
    );
  }
  const loud =
    !['recovered', 'ready'].includes(event.kind) && !(event.kind === 'changed' && i.severity === 'info');
  const plain = `${loud ? `${word}: ` : ''}${domain}: ${event.kind === 'recovered' ? 'recovered: ' : event.kind === 'reminder' ? 'still: ' : ''}${i.title}${i.subject !== domain ? ` (${i.subject})` : ''}`;
  return { text: esc(clip(plain, 300)), blocks };
}
