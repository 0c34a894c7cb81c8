import { type ImpactNow, impactNow, impactText, type Report } from '../../core/check.js';
import { CATALOG, type Finding } from '../../core/findings.js';
import { expiryPhrase } from '../../core/net/certificate.js';
import { isTlsRptRecord } from '../../core/tlsrpt-record.js';
import {
  type Block,
  clip,
  code,
  context,
  divider,
  esc,
  header,
  LIMITS,
  type Message,
  SEVERITY_EMOJI,
  STATUS_EMOJI,
  section,
} from './common.js';

/** Blocks kept for the verdict, impact, evidence and the fold note; the rest of the 50 may hold findings. */
const FIXED_BLOCKS = 8;

/**
 * A time as a Slack date: each reader sees it in their own time zone and words ("yesterday at 14:00"); clients that
 * cannot render it show the UTC fallback. A value that is not a time is shown as text.
 */
export function slackDate(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return esc(iso);
  const fallback = new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/:\d\d(\.\d+)?Z$/, ' UTC');
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${fallback}>`;
}

/**
 * "Impact now: …": what a check means for mail, from the senders' side (the same line in reports and alerts). Text is
 * escaped before its dates become Slack dates; the mode in force is bold.
 */
export function impactLine(impact: ImpactNow): string {
  const text = impactText({ ...impact, text: esc(impact.text) }, slackDate).replace(
    /\bmode is (enforce|testing|none)\b/,
    'mode is *$1*',
  );
  return `*Impact now:* ${text}`;
}

/**
 * A check report as a Slack message: a header with the verdict, a context line with the policy's mode, max_age and
 * id, each finding (errors first) with subject, message and fix, then the evidence a person wants (MX hosts with TLS
 * version and certificate expiry). Within Block Kit's limits whatever the report; what does not fit is counted.
 */
export function reportMessage(report: Report, options: { extraBlocks?: Block[] } = {}): Message {
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of report.findings) counts[f.severity]++;
  const name =
    report.domainUnicode !== report.domain ? `${report.domainUnicode} (${report.domain})` : report.domain;
  const verdict =
    report.status === 'pass'
      ? 'all good'
      : [
          counts.error && `${counts.error} error${counts.error > 1 ? 's' : ''}`,
          counts.warning && `${counts.warning} warning${counts.warning > 1 ? 's' : ''}`,
        ]
          .filter(Boolean)
          .join(', ');
  const blocks: Block[] = [header(`${STATUS_EMOJI[report.status]} ${name}: ${verdict}`)];
  const valid = report.evidence.policy.valid;
  const p = report.evidence.policy.policy;
  const facts = [
    valid && p?.mode ? `mode *${esc(p.mode)}*` : 'no valid policy',
    valid && p?.maxAge !== null && p?.maxAge !== undefined ? `max_age ${p.maxAge}` : null,
    report.evidence.sts.id ? `id ${code(report.evidence.sts.id)}` : null,
    `checked ${slackDate(report.checkedAt)}`,
  ].filter((x): x is string => x !== null);
  blocks.push(context(facts.join(' · ')), section(impactLine(impactNow(report))));

  const extra = options.extraBlocks ?? [];
  const room = LIMITS.blocksPerMessage - FIXED_BLOCKS - extra.length;
  if (report.findings.length === 0) {
    blocks.push(
      section('No problems found: senders will find a valid policy and verified TLS on every MX host.'),
    );
  } else {
    blocks.push(divider);
    const shown = report.findings.slice(0, room);
    for (const f of shown) blocks.push(findingSection(f));
    const left = report.findings.length - shown.length;
    if (left > 0) {
      blocks.push(
        context(
          `…and ${left} more finding${left > 1 ? 's' : ''} not shown here. Run \`mtasts check ${esc(report.domain)}\` for the full report.`,
        ),
      );
    }
  }
  blocks.push(divider, section(evidenceText(report)));
  blocks.push(...extra);
  const text = clip(
    `${report.status === 'pass' ? 'PASS' : report.status.toUpperCase()} ${report.domain}: ${verdict}` +
      (report.findings[0] ? ` (first: ${report.findings[0].code} ${report.findings[0].subject})` : ''),
    LIMITS.fallbackText,
  );
  return { text: esc(text), blocks };
}

export function findingSection(f: Finding): Block {
  const title = CATALOG[f.code].title;
  return section(
    `${SEVERITY_EMOJI[f.severity]} *${esc(title)}* · ${code(f.subject)} · \`${f.code}\`\n${esc(f.message)}\n*Fix:* ${esc(f.fix)}`,
  );
}

function evidenceText(report: Report): string {
  const e = report.evidence;
  const lines: string[] = ['*MX hosts*'];
  if (e.mx.hosts.length === 0)
    lines.push(esc(e.mx.nullMx ? 'null MX: the domain accepts no mail' : (e.mx.error ?? 'none')));
  for (const h of e.mx.hosts) {
    const probe = h.probes.find((pr) => pr.tls) ?? h.probes[0];
    const cert = probe?.tls?.certificate;
    const tls = probe?.tls
      ? `${probe.tls.protocol}${cert ? `, certificate ${expiryPhrase(cert)}` : ''}`
      : probe?.error
        ? clip(probe.error.message, 120)
        : probe && !probe.starttlsOffered && probe.connected
          ? 'no STARTTLS'
          : e.smtpProbe === 'off'
            ? 'not probed'
            : 'no address probed';
    const cover = covers(report)
      ? h.coveredBy
        ? ` · policy: ${code(h.coveredBy)}`
        : ' · *not in policy*'
      : '';
    lines.push(`${h.priority} ${code(h.host)} · ${esc(tls)}${cover}`);
  }
  const policyCert = e.policy.fetch?.tls?.certificate;
  lines.push('*Policy host*');
  lines.push(
    e.policy.fetch?.http
      ? `${code(e.policy.host)} · HTTP ${e.policy.fetch.http.status}${policyCert ? ` · certificate ${expiryPhrase(policyCert)}` : ''}`
      : `${code(e.policy.host)} · ${esc(clip(e.policy.error ?? 'not fetched', 200))}`,
  );
  lines.push(`*TLS-RPT* ${tlsRptEvidence(e.tlsrpt)}`);
  return lines.join('\n');
}

/** The TLS-RPT record as senders see it: its rua, or why they send no reports (none, several, invalid, no answer). */
function tlsRptEvidence(t: Report['evidence']['tlsrpt']): string {
  if (t.rua) return t.rua.map((u) => code(u)).join(', ');
  if (t.error) return `not known: ${esc(clip(t.error, 200))}`;
  const records = t.records.filter(isTlsRptRecord);
  if (records.length > 1)
    return `${records.length} conflicting records, so senders send no reports: ${records.map((r) => code(clip(r, 200))).join(', ')}`;
  if (records.length === 1)
    return `an invalid record, which senders ignore: ${code(clip(records[0] ?? '', 200))}`;
  return 'none';
}

/** Whether MX coverage means something: a valid policy whose mode needs mx patterns. */
function covers(report: Report): boolean {
  const policy = report.evidence.policy.policy;
  return report.evidence.policy.valid && policy !== null && policy.mode !== null && policy.mode !== 'none';
}
