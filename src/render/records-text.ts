import { durationText } from '../core/rollout.js';
import type { PlanStep, RecordsPlan } from '../generate/records.js';
import { safe, wrap } from './text.js';

/**
 * The records plan for a terminal: the decisions and their reasons, then each step in the order it must go live, each
 * piece copy-ready under a heading that says where it goes and when.
 */
export function renderRecordsText(plan: RecordsPlan, extra: string[] = []): string {
  const out: string[] = [...summary(plan)];
  for (const step of plan.steps) out.push('', ...stepText(plan, step));
  if (extra.length > 0) out.push('', ...extra);
  return `${out.join('\n')}\n`;
}

/** The plan's headline, reasons, warnings, changes and policy host. */
function summary(plan: RecordsPlan): string[] {
  const name = plan.domainUnicode !== plan.domain ? `${plan.domainUnicode} (${plan.domain})` : plan.domain;
  const out = [
    `MTA-STS and TLS-RPT for ${name}: mode ${plan.mode}, max_age ${plan.maxAge} (${durationText(plan.maxAge)})`,
    stepCount(plan),
    '',
  ];
  for (const r of plan.reasons) out.push(...wrap(`- ${r}`, 80, '', '  '));
  if (plan.warnings.length > 0) {
    out.push('', 'Look out:');
    for (const w of plan.warnings) out.push(...wrap(`! ${w}`, 80, '  ', '    '));
  }
  if (plan.change && plan.change.differences.length > 0) {
    out.push('', `Changes against the published policy (id ${plan.change.currentId ?? 'none'}):`);
    for (const d of plan.change.differences) out.push(`  ${safe(d)}`);
  }
  out.push('', 'The policy host:', ...wrap(plan.policyHost.advice, 80, '  ', '  '));
  return out;
}

export function stepCount(plan: RecordsPlan): string {
  return plan.steps.length === 1
    ? 'One step, safe now.'
    : `${plan.steps.length} steps, in this order; only step 1 is safe now, each later one from its date.`;
}

/** A step shows its policy file and snippets when the file changes, and step 1 always (what is served now). */
export function showsPolicy(step: PlanStep): boolean {
  return step.policyChanges || step.number === 1;
}

/** When a step may go live, in words. */
export function stepWhen(step: PlanStep): string {
  return step.notBefore === null ? 'now' : `not before ${step.notBefore}`;
}

export function stepHeading(plan: RecordsPlan, step: PlanStep): string {
  return `Step ${step.number} of ${plan.steps.length} (${stepWhen(step)}): ${step.title}`;
}

function stepText(plan: RecordsPlan, step: PlanStep): string[] {
  const heading = wrap(stepHeading(plan, step), 80, '', '  ');
  const out = [...heading, '='.repeat(Math.max(...heading.map((l) => l.length)))];
  step.actions.forEach((a, i) => {
    out.push(...wrap(`${i + 1}. ${a}`, 80, '  ', '     '));
  });
  out.push('');
  if (showsPolicy(step)) out.push(...policyText(plan, step));
  else
    out.push(
      ...wrap(`The policy file stays as it is (served at ${plan.policyUrl}), id ${step.id}.`, 80, '  ', '  '),
      '',
    );
  if (step.records.length > 0) out.push(...recordsText(plan, step));
  return out;
}

function policyText(plan: RecordsPlan, step: PlanStep): string[] {
  return [
    ...wrap(
      `Policy file for step ${step.number}, served at ${plan.policyUrl} (HTTPS, status 200, Content-Type text/plain, no redirect):`,
      80,
      '  ',
      '  ',
    ),
    '',
    indent(step.policyText),
    '  Served by nginx:',
    '',
    indent(step.snippets.nginx),
    '  or Apache:',
    '',
    indent(step.snippets.apache),
    '  or Caddy:',
    '',
    indent(step.snippets.caddy),
  ];
}

function recordsText(plan: RecordsPlan, step: PlanStep): string[] {
  const after = step.policyChanges ? ', once the policy file above is served' : '';
  const out = [
    ...wrap(`DNS records for step ${step.number}${after} (zone ${plan.zone}):`, 80, '  ', '  '),
    '',
    indent(step.bind),
  ];
  out.push('  or as the fields of a DNS panel:', '');
  for (const r of step.records) {
    const priority = r.priority === undefined ? '' : `   Priority: ${r.priority}`;
    out.push(`    Name: ${r.host}   Type: ${r.type}${priority}   TTL: ${r.ttl}`, `    Value: ${r.value}`, '');
  }
  return out;
}

function indent(text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l ? `    ${l}` : ''))
    .join('\n')
    .concat('\n');
}
