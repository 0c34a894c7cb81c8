import type { PolicyMode } from '../../core/policy.js';
import type { AlertPayload, EventPayload } from '../../store/monitor-state.js';
import { alertActions } from './actions.js';
import { clip, code, context, esc, type Message, preformatted, section } from './common.js';
import { digestMessage, failureRateMessage } from './tlsrpt.js';

const ICON = {
  opened: ':rotating_light:',
  escalated: ':rotating_light:',
  reminder: ':alarm_clock:',
  recovered: ':white_check_mark:',
  changed: ':arrows_counterclockwise:',
  ready: ':tada:',
} as const;

/** What a problem means for delivery in the policy's current mode. */
export function impactIn(mode: PolicyMode | null, severity: string): string {
  if (severity !== 'error') return '';
  switch (mode) {
    case 'enforce':
      return 'Impact now: mode is *enforce*, so senders that apply MTA-STS refuse or defer mail affected by this.';
    case 'testing':
      return 'Impact now: mode is *testing*: senders still deliver and report the failure; in enforce this would stop mail.';
    default:
      return 'Impact now: no MTA-STS policy is in force, so senders deliver without verified TLS.';
  }
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
  const message =
    payload.kind === 'tlsrpt-digest'
      ? digestMessage(payload)
      : payload.kind === 'tlsrpt-rate'
        ? failureRateMessage(payload)
        : eventMessage(payload);
  const closing =
    payload.kind !== 'tlsrpt-digest' &&
    !(payload.kind !== 'tlsrpt-rate' && ['recovered', 'ready'].includes(payload.event.kind));
  if (where && closing)
    message.blocks.push(
      alertActions({ domain: payload.domain, team: where.team, channel: where.channel }, false),
    );
  return message;
}

function eventMessage(payload: EventPayload): Message {
  const { event, domain, mode } = payload;
  const i = event.info;
  const subject = i.subject !== domain ? ` · ${code(i.subject)}` : '';
  const lines: string[] = [];
  let headline: string;
  switch (event.kind) {
    case 'recovered':
      headline = `${ICON.recovered} *${esc(domain)}: recovered: ${esc(i.title)}*${subject}`;
      lines.push(
        `Resolved (${esc(event.resolution ?? 'no longer seen')}) after ${humanDuration(event.durationMs ?? 0)}.`,
      );
      break;
    case 'reminder':
      headline = `${ICON.reminder} *${esc(domain)}: still ${esc(i.title.toLowerCase())}*${subject}`;
      lines.push(
        `Ongoing for ${humanDuration(event.durationMs ?? 0)}.`,
        esc(i.message),
        impactIn(mode, i.severity),
        `*Fix:* ${esc(i.fix)}`,
      );
      break;
    case 'changed': {
      headline = `${ICON.changed} *${esc(domain)}: ${esc(i.title)}*`;
      lines.push(esc(i.message), esc(i.fix));
      break;
    }
    case 'ready': {
      headline = `${ICON.ready} *${esc(domain)}: ${esc(i.title)}*`;
      lines.push(esc(i.message));
      break;
    }
    default:
      headline = `${ICON[event.kind]} *${esc(domain)}: ${esc(i.title)}*${subject}`;
      lines.push(esc(i.message), impactIn(mode, i.severity), `*Fix:* ${esc(i.fix)}`);
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
  const plain = `${domain}: ${event.kind === 'recovered' ? 'recovered: ' : event.kind === 'reminder' ? 'still: ' : ''}${i.title}${i.subject !== domain ? ` (${i.subject})` : ''}`;
  return { text: esc(clip(plain, 300)), blocks };
}
