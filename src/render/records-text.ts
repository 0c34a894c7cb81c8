import type { HostingSnippets, RecordsPlan } from '../generate/records.js';
import { bindFragment } from '../generate/records.js';
import { safe, wrap } from './text.js';

/** The records plan for a terminal: each piece copy-ready, under a heading that says where it goes. */
export function renderRecordsText(
  plan: RecordsPlan,
  snippets: HostingSnippets,
  extra: string[] = [],
): string {
  const out: string[] = [];
  const name = plan.domainUnicode !== plan.domain ? `${plan.domainUnicode} (${plan.domain})` : plan.domain;
  out.push(`MTA-STS and TLS-RPT for ${name}: mode ${plan.mode}, max_age ${plan.maxAge}, id ${plan.id}`, '');
  for (const r of plan.reasons) out.push(...wrap(`- ${r}`, 80, '', '  '));
  if (plan.warnings.length > 0) {
    out.push('', 'Look out:');
    for (const w of plan.warnings) out.push(...wrap(`! ${w}`, 80, '  ', '    '));
  }
  if (plan.change) {
    const c = plan.change;
    out.push('', 'Changes against the published policy:');
    if (c.differences.length === 0) out.push('  none: the policy text stays the same, and so does the id.');
    for (const d of c.differences) out.push(`  ${safe(d)}`);
    if (c.differences.length > 0) {
      out.push(
        ...wrap(
          `The policy text changes, so the id must change too (${c.currentId ?? 'none'} -> ${plan.id}): senders refetch the policy only when the id changes.`,
          80,
          '  ',
        ),
      );
    }
    if (c.steps.length > 0) {
      out.push('', 'Safe order for this MX change:');
      for (const s of c.steps) out.push(...wrap(s, 80, '  ', '     '));
      if (c.interimPolicyText) out.push('', 'Interim policy (step 1):', indent(c.interimPolicyText));
    }
  }
  out.push(
    '',
    `1. DNS records, as a zone file fragment (zone ${plan.zone}):`,
    '',
    indent(bindFragment(plan)),
  );
  out.push('', '   or as the fields of a DNS panel:', '');
  for (const r of plan.records) {
    out.push(`   Name: ${r.host}   Type: ${r.type}   TTL: ${r.ttl}`, `   Value: ${r.value}`, '');
  }
  const final = plan.change?.interimPolicyText
    ? 'final policy file (step 3; the interim policy goes first)'
    : 'policy file';
  out.push(
    `2. The ${final}, served at ${plan.policyUrl}`,
    '   (HTTPS, status 200, Content-Type text/plain, no redirect):',
    '',
    indent(plan.policyText),
  );
  out.push('3. The policy host:', ...wrap(plan.policyHost.advice, 80, '   '));
  out.push(
    '',
    '   nginx:',
    '',
    indent(snippets.nginx),
    '   Apache:',
    '',
    indent(snippets.apache),
    '   Caddy:',
    '',
    indent(snippets.caddy),
  );
  out.push(...extra);
  return `${out.join('\n')}\n`;
}

function indent(text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l ? `    ${l}` : ''))
    .join('\n')
    .concat('\n');
}
