import type { DigestPayload, FailureRatePayload } from '../../monitor/payload.js';
import { explainResult } from '../../tlsrpt/report.js';
import type { DomainReportSummary } from '../../tlsrpt/summary.js';
import { code, context, esc, type Message, section } from './common.js';

const MAX_LINES = 25;

function percent(failed: number, total: number): string {
  if (total === 0) return '0%';
  const p = (100 * failed) / total;
  return `${p < 0.1 && p > 0 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/** Sessions per reporting organization, and failures grouped by result type and MX host, in plain words. */
export function summaryText(s: DomainReportSummary): string {
  const total = s.successful + s.failed;
  const lines = [
    `*${s.reports} report(s)*: ${s.successful} successful and ${s.failed} failed TLS session(s) (${percent(s.failed, total)} failed).`,
  ];
  if (s.organizations.length > 0) {
    lines.push('*By reporter*');
    for (const o of s.organizations.slice(0, MAX_LINES)) {
      lines.push(`• ${esc(o.organization)}: ${o.successful} ok, ${o.failed} failed`);
    }
    if (s.organizations.length > MAX_LINES)
      lines.push(`…and ${s.organizations.length - MAX_LINES} more reporters`);
  }
  if (s.failures.length > 0) {
    lines.push('*Failures*');
    for (const f of s.failures.slice(0, MAX_LINES)) {
      const { what, fix } = explainResult(f.resultType);
      const at = f.receivingMx ? ` at ${code(f.receivingMx)}` : '';
      const reasons = f.reasonCodes.length > 0 ? ` (${esc(f.reasonCodes.slice(0, 3).join('; '))})` : '';
      lines.push(`• ${code(f.resultType)}${at}: ${f.count} session(s): ${esc(what)}${reasons}: ${esc(fix)}`);
    }
    if (s.failures.length > MAX_LINES)
      lines.push(`…and ${s.failures.length - MAX_LINES} more kinds of failure`);
  }
  return lines.join('\n');
}

export function digestMessage(p: DigestPayload): Message {
  const s = p.summary;
  const icon = s.failed > 0 ? ':warning:' : ':white_check_mark:';
  return {
    text: esc(`${p.domain}: TLS-RPT digest: ${s.successful} ok, ${s.failed} failed`),
    blocks: [
      section(
        `${icon} *${esc(p.domain)}: TLS reports received ${esc(p.from.slice(0, 16).replace('T', ' '))} to ${esc(p.to.slice(0, 16).replace('T', ' '))} UTC*`,
      ),
      section(summaryText(s)),
      context(`\`/mtasts reports ${esc(p.domain)} 30\` for the last 30 days`),
    ],
  };
}

export function failureRateMessage(p: FailureRatePayload): Message {
  return {
    text: esc(
      `${p.domain}: ${percent(p.summary.failed, p.summary.failed + p.summary.successful)} of TLS sessions failed`,
    ),
    blocks: [
      section(
        `:rotating_light: *${esc(p.domain)}: senders report ${percent(p.summary.failed, p.summary.failed + p.summary.successful)} of TLS sessions failing* (alert threshold ${(p.threshold * 100).toFixed(1)}%), in reports since ${esc(p.summary.since)}.`,
      ),
      section(summaryText(p.summary)),
      context(
        `\`/mtasts check ${esc(p.domain)}\` checks the setup now · \`/mtasts mute ${esc(p.domain)} 24h\``,
      ),
    ],
  };
}

export function reportsMessage(s: DomainReportSummary, days: number): Message {
  if (s.reports === 0) {
    return {
      text: `No TLS reports for ${s.domain} in the last ${days} day(s).`,
      blocks: [
        section(
          `No TLS reports for ${code(s.domain)} in the last ${days} day(s). Senders send them to the \`rua\` of \`_smtp._tls.${esc(s.domain)}\`: point it at this bot (\`https://<this app>/tlsrpt\`) or pipe report mail to \`mtasts ingest-email\`.`,
        ),
      ],
    };
  }
  return {
    text: esc(`TLS reports for ${s.domain}: ${s.successful} ok, ${s.failed} failed`),
    blocks: [
      section(`*TLS reports for ${code(s.domain)}, last ${days} day(s)* (since ${esc(s.since)})`),
      section(summaryText(s)),
    ],
  };
}
