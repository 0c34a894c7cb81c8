import { impactNow, impactText, type Report } from '../core/check.js';
import type { Finding, Severity } from '../core/findings.js';
import { type CertificateEvidence, expiryPhrase } from '../core/net/certificate.js';

/** Renders a report for an 80-column terminal: verdict, findings grouped by severity with their fixes, evidence. */
export function renderReportText(report: Report, width = 80): string {
  const lines: string[] = [];
  const name =
    report.domainUnicode !== report.domain ? `${report.domainUnicode} (${report.domain})` : report.domain;
  const counts = countBySeverity(report.findings);
  const summary = [
    counts.error ? `${counts.error} error${counts.error > 1 ? 's' : ''}` : '',
    counts.warning ? `${counts.warning} warning${counts.warning > 1 ? 's' : ''}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  lines.push(`${safe(name)}: ${report.status.toUpperCase()}${summary ? ` (${summary})` : ''}`);
  lines.push(`checked ${report.checkedAt} in ${report.durationMs} ms`);
  lines.push('', ...wrap(`Impact now: ${safe(impactText(impactNow(report), utc))}`, width, '', '  '));

  const groups: [Severity, string, string][] = [
    ['error', 'Errors', 'x'],
    ['warning', 'Warnings', '!'],
    ['info', 'Notes', 'i'],
  ];
  for (const [severity, title, mark] of groups) {
    const items = report.findings.filter((f) => f.severity === severity);
    if (items.length === 0) continue;
    lines.push('', `${title}:`);
    for (const f of items) lines.push(...renderFinding(f, mark, width));
  }
  if (report.findings.length === 0)
    lines.push('', 'No problems found: senders will find a valid policy and verified TLS.');

  lines.push('', 'Evidence:', ...renderEvidence(report, width));
  return `${lines.join('\n')}\n`;
}

function renderFinding(f: Finding, mark: string, width: number): string[] {
  return [
    `  ${mark} ${f.code}  ${safe(f.subject)}`,
    ...wrap(safe(f.message), width, '    '),
    ...wrap(`Fix: ${safe(f.fix)}`, width, '    ', '         '),
  ];
}

function renderEvidence(report: Report, width: number): string[] {
  const e = report.evidence;
  const out: string[] = [];
  const records = (label: string, ev: { name: string; records: string[]; error: string | null }) => {
    out.push(`  ${label} ${ev.name}:`);
    if (ev.error && ev.records.length === 0) out.push(`    (${safe(ev.error)})`);
    for (const r of ev.records) out.push(...wrap(`"${safe(r)}"`, width, '    '));
  };
  records('TXT', e.sts);

  const p = e.policy;
  out.push(
    `  Policy host ${p.host}: ${p.addresses.length > 0 ? p.addresses.join(', ') : safe(p.error ?? 'no address')}`,
  );
  const fetch = p.fetch;
  if (fetch) {
    out.push(`    ${safe(fetch.url)}`);
    if (fetch.tls) {
      out.push(`    ${fetch.tls.protocol} ${fetch.tls.cipher}`);
      const c = fetch.tls.certificate;
      if (c) out.push(...wrap(certLine(c), width, '    '));
    }
    if (fetch.http) {
      out.push(
        `    HTTP ${fetch.http.status}, ${safe(fetch.http.contentType ?? 'no Content-Type')}, ${bodySize(fetch.http)}`,
      );
    } else if (fetch.error) out.push(...wrap(safe(fetch.error.message), width, '    '));
  }
  if (p.text !== null) {
    out.push('    policy text:');
    const textLines = p.text.replace(/\r?\n$/, '').split('\n');
    for (const l of textLines.slice(0, 40))
      out.push(`      | ${safe(l.replace(/\r$/, '')).slice(0, width - 10)}`);
    if (textLines.length > 40) out.push(`      | (${textLines.length - 40} more lines)`);
  }

  out.push('  MX:');
  if (e.mx.error) out.push(`    (${safe(e.mx.error)})`);
  if (e.mx.nullMx) out.push('    null MX (accepts no mail)');
  for (const h of e.mx.hosts) {
    // Coverage means something only under a policy that lists mx patterns (mode none needs none).
    const cover =
      p.valid && p.policy && p.policy.mode !== null && p.policy.mode !== 'none'
        ? h.coveredBy
          ? `covered by ${h.coveredBy}`
          : 'NOT in policy'
        : '';
    out.push(`    ${h.priority} ${h.host}${cover ? `  (${cover})` : ''}`);
    if (h.addresses.length === 0) out.push(`      ${safe(h.error ?? 'no address')}`);
    for (const address of h.addresses) {
      const probe = h.probes.find((pr) => pr.address === address);
      if (!probe) {
        const blocked = h.notAllowed.find((n) => n.address === address);
        out.push(`      ${address}  ${blocked ? 'not contacted (non-public)' : 'not probed'}`);
        continue;
      }
      if (probe.tls) {
        out.push(`      ${address}  ${probe.tls.protocol} ${probe.tls.cipher}`);
        if (probe.tls.certificate) out.push(...wrap(certLine(probe.tls.certificate), width, '        '));
      } else if (probe.error)
        out.push(...wrap(`${address}  ${safe(probe.error.message)}`, width, '      ', '        '));
      else if (!probe.starttlsOffered) out.push(`      ${address}  no STARTTLS`);
      if (probe.banner)
        out.push(...wrap(`banner: ${safe(probe.banner.split('\n')[0] ?? '')}`, width, '        '));
    }
  }
  records('TXT', e.tlsrpt);
  return out;
}

/** A time as a person reads it in a terminal: 2026-11-29 12:00 UTC. */
function utc(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms)
    ? iso
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

function certLine(c: CertificateEvidence): string {
  const names = c.names.slice(0, 4).join(', ') + (c.names.length > 4 ? ` (+${c.names.length - 4})` : '');
  return safe(`cert ${names || c.subject}; issuer ${c.issuer}; ${expiryPhrase(c)}`);
}

/** The body size seen: bytes read, or what the server declared when a body over the limit was not read. */
function bodySize(http: { bytesRead: number; contentLength: number | null; tooLarge: boolean }): string {
  if (http.tooLarge && http.bytesRead === 0 && http.contentLength !== null)
    return `${http.contentLength} bytes declared (over the limit, not read)`;
  if (http.tooLarge) return `over ${http.bytesRead} bytes (over the limit, reading stopped)`;
  return `${http.bytesRead} bytes`;
}

function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  return counts;
}

/** Control characters (terminal escapes among them) from the network are shown, never sent to the terminal. */
export function safe(text: string): string {
  return text.replace(
    /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/**
 * Word-wraps to `width` columns, breaking only at spaces: a word longer than a line (a URL, a record value) stands on
 * a line of its own, whole, so that it copies cleanly.
 */
export function wrap(text: string, width: number, indent: string, nextIndent = indent): string[] {
  const room = Math.max(10, width - Math.max(indent.length, nextIndent.length));
  const lines: string[] = [];
  let current = '';
  const flush = () => {
    if (current) lines.push((lines.length === 0 ? indent : nextIndent) + current);
    current = '';
  };
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (current && current.length + 1 + word.length > room) flush();
    current = current ? `${current} ${word}` : word;
  }
  flush();
  return lines;
}
