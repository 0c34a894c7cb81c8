import { explainResult } from '../../core/tlsrpt-report.js';
import type { DigestPayload, FailureRatePayload } from '../../store/monitor-state.js';
import type { DomainReportSummary } from '../../store/tlsrpt.js';
import { code, context, esc, type Message, quoted, section } from './common.js';

const MAX_LINES = 25;
/** Room in the summary's section (3000 characters) for the reporters' lines, and for the failures' lines. */
const ORG_BUDGET = 1100;
const FAILURE_BUDGET = 1600;

function percent(failed: number, total: number): string {
  if (total === 0) return '0%';
  const p = (100 * failed) / total;
  return `${p < 0.1 && p > 0 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/**
 * Sessions per reporting organization, and failures grouped by result type and MX host (or receiving address), in
 * plain words. Everything a reporter wrote is quoted (inert), and the lists stop before the section's limit.
 */
export function summaryText(s: DomainReportSummary): string {
  const total = s.successful + s.failed;
  const lines = [
    `*${s.reports} report(s)*: ${s.successful} successful and ${s.failed} failed TLS session(s) (${percent(s.failed, total)} failed).`,
  ];
  if (s.organizations.length > 0) {
    lines.push('*By reporter*');
    const orgs = s.organizations.map(
      (o) => `• ${quoted(o.organization)}: ${o.successful} ok, ${o.failed} failed`,
    );
    lines.push(...bounded(orgs, ORG_BUDGET, (n) => `…and ${n} more reporters`));
  }
  if (s.failures.length > 0) {
    lines.push('*Failures*');
    const failures = s.failures.map((f) => {
      const { what, fix } = explainResult(f.resultType);
      const where = f.receivingMx ?? f.receivingIp;
      const at = where ? ` at ${quoted(where, 100)}` : '';
      const reasons =
        f.reasonCodes.length > 0
          ? ` (${f.reasonCodes
              .slice(0, 3)
              .map((r) => quoted(r, 60))
              .join(', ')})`
          : '';
      return `• ${quoted(f.resultType, 60)}${at}: ${f.count} session(s): ${esc(what)}${reasons}: ${esc(fix)}`;
    });
    lines.push(...bounded(failures, FAILURE_BUDGET, (n) => `…and ${n} more kinds of failure`));
  }
  return lines.join('\n');
}

/** The first lines that fit in `budget` characters (at most MAX_LINES), then a line saying how many were left out. */
function bounded(items: string[], budget: number, more: (left: number) => string): string[] {
  const out: string[] = [];
  let used = 0;
  for (const line of items) {
    if (out.length === MAX_LINES || used + line.length + 1 > budget) break;
    out.push(line);
    used += line.length + 1;
  }
  if (out.length < items.length) out.push(more(items.length - out.length));
  return out;
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
        `:rotating_light: *${esc(p.domain)}: senders report ${percent(p.summary.failed, p.summary.failed + p.summary.successful)} of TLS sessions failing* (alert threshold ${(p.threshold * 100).toFixed(1)}%), in reports ${p.summary.until === p.summary.since ? 'about' : 'since'} ${esc(p.summary.since)}${p.summary.until === p.summary.since ? ' (UTC)' : ''}.`,
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
