import { durationText } from '../../core/rollout.js';
import type { HostingSnippets, PlanStep, RecordsPlan } from '../../generate/records.js';
import type { DomainConnectOutcome } from '../../generate/service.js';
import { showsPolicy, stepCount, stepHeading } from '../../render/records-text.js';
import {
  type Block,
  code,
  context,
  divider,
  esc,
  header,
  LIMITS,
  type Message,
  preformatted,
  section,
} from './common.js';

/**
 * The records plan as copy-ready blocks, step by step in the order they must go live (policy file, then DNS records),
 * the same steps as the command line's text and JSON, and the Domain Connect button for step 1. `_snippets` is the
 * first step's, kept for callers that pass it: every step carries its own.
 */
export function recordsMessage(
  plan: RecordsPlan,
  _snippets: HostingSnippets | null,
  dc: DomainConnectOutcome | null,
): Message {
  const blocks: Block[] = [
    header(`Records for ${plan.domainUnicode}: mode ${plan.mode}`),
    context(
      `max_age ${plan.maxAge} (${durationText(plan.maxAge)}) · ${esc(stepCount(plan))}`,
      plan.reasons.map(esc).join(' · '),
    ),
  ];
  if (plan.warnings.length > 0)
    blocks.push(section(plan.warnings.map((w) => `:warning: ${esc(w)}`).join('\n')));
  if (plan.change && plan.change.differences.length > 0) {
    const c = plan.change;
    const lines = [`*Changes against the published policy* (id ${code(c.currentId ?? 'none')})`];
    for (const d of c.differences) lines.push(`• ${esc(d)}`);
    blocks.push(section(lines.join('\n')));
  }
  blocks.push(section(`*Policy host*: ${esc(plan.policyHost.advice)}`));
  for (const step of plan.steps) blocks.push(divider, ...stepBlocks(plan, step));
  blocks.push(context('Apache and Caddy versions of each step: `mtasts records` on the command line.'));
  if (dc) blocks.push(domainConnectBlock(dc, plan));
  return { text: `MTA-STS records for ${plan.domain}: mode ${plan.mode}, ${stepCount(plan)}`, blocks };
}

function stepBlocks(plan: RecordsPlan, step: PlanStep): Block[] {
  const actions = step.actions.map((a, i) => `${i + 1}. ${esc(a)}`).join('\n');
  const blocks = [section(`*${esc(stepHeading(plan, step))}*\n${actions}`)];
  if (showsPolicy(step)) {
    blocks.push(
      copyable(
        `*Step ${step.number}: policy file* at ${code(plan.policyUrl)} (text/plain, status 200, no redirect)`,
        step.policyText,
      ),
      copyable(`*Step ${step.number}: nginx*`, step.snippets.nginx),
    );
  } else {
    blocks.push(context(`The policy file stays as it is, id ${code(step.id)}.`));
  }
  if (step.records.length > 0) {
    const after = step.policyChanges ? ', once the policy file is served' : '';
    const fields = step.records
      .map((r) => {
        const priority = r.priority === undefined ? '' : ` · Priority ${r.priority}`;
        return `Name ${code(r.host)} · Type ${r.type}${priority} · TTL ${r.ttl}\nValue ${code(r.value)}`;
      })
      .join('\n');
    blocks.push(
      copyable(`*Step ${step.number}: DNS records*${after} (zone ${code(plan.zone)})`, step.bind),
      section(fields),
    );
  }
  return blocks;
}

/** A copy-ready block whole, or a pointer to the command line: never a cut one, which would be unsafe to paste. */
function copyable(label: string, text: string): Block {
  const whole = `${label}\n${preformatted(text)}`;
  if (whole.length <= LIMITS.sectionText) return section(whole);
  return section(
    `${label}: too long for a Slack message; \`npx mtasts records\` on the command line prints it.`,
  );
}

function domainConnectBlock(dc: DomainConnectOutcome, plan: RecordsPlan): Block {
  if (!dc.applyUrl) return context(`One-click setup: ${esc(dc.message)}`);
  const later =
    plan.steps.length > 1 ? ' It sets step 1 only: the later steps are yours, at their dates.' : '';
  return {
    type: 'section',
    text: { type: 'mrkdwn', text: `*One-click setup (step 1's DNS records)*: ${esc(dc.message)}${later}` },
    accessory: {
      type: 'button',
      text: { type: 'plain_text', text: `Set up at ${dc.provider ?? 'your DNS provider'}`.slice(0, 75) },
      url: dc.applyUrl,
      action_id: 'domain_connect_apply',
    },
  };
}
