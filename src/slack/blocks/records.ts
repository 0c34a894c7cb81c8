import type { HostingSnippets, RecordsPlan } from '../../generate/records.js';
import { bindFragment } from '../../generate/records.js';
import type { DomainConnectOutcome } from '../../generate/service.js';
import {
  type Block,
  code,
  context,
  divider,
  esc,
  header,
  type Message,
  preformatted,
  section,
} from './common.js';

/** The records plan as copy-ready blocks: DNS records, policy file, nginx snippet, and the Domain Connect button. */
export function recordsMessage(
  plan: RecordsPlan,
  snippets: HostingSnippets,
  dc: DomainConnectOutcome | null,
): Message {
  const blocks: Block[] = [
    header(`Records for ${plan.domainUnicode}: mode ${plan.mode}`),
    context(plan.reasons.map(esc).join(' · ')),
  ];
  if (plan.warnings.length > 0)
    blocks.push(section(plan.warnings.map((w) => `:warning: ${esc(w)}`).join('\n')));
  if (plan.change && plan.change.differences.length > 0) {
    const c = plan.change;
    const lines = [
      `*Changes against the published policy* (the id must change: ${code(c.currentId ?? 'none')} → ${code(plan.id)})`,
    ];
    for (const d of c.differences) lines.push(`• ${esc(d)}`);
    if (c.steps.length > 0) lines.push('*Safe order*', ...c.steps.map(esc));
    blocks.push(section(lines.join('\n')));
    if (c.interimPolicyText)
      blocks.push(section(`*Interim policy (step 1)*\n${preformatted(c.interimPolicyText)}`));
  }
  blocks.push(
    divider,
    section(`*1. DNS records* (zone ${code(plan.zone)})\n${preformatted(bindFragment(plan))}`),
  );
  blocks.push(
    section(
      plan.records
        .map((r) => `Name ${code(r.host)} · Type ${r.type} · TTL ${r.ttl}\nValue ${code(r.value)}`)
        .join('\n'),
    ),
  );
  blocks.push(
    section(
      `*2. Policy file* at ${code(plan.policyUrl)} (text/plain, status 200, no redirect)\n${preformatted(plan.policyText)}`,
    ),
  );
  blocks.push(
    section(`*3. Policy host*: ${esc(plan.policyHost.advice)}\nnginx:\n${preformatted(snippets.nginx)}`),
  );
  blocks.push(context('Apache and Caddy versions: `mtasts records` on the command line.'));
  if (dc) {
    if (dc.applyUrl) {
      blocks.push({
        type: 'section',
        text: { type: 'mrkdwn', text: `*4. One-click setup*: ${esc(dc.message)}` },
        accessory: {
          type: 'button',
          text: { type: 'plain_text', text: `Set up at ${dc.provider ?? 'your DNS provider'}`.slice(0, 75) },
          url: dc.applyUrl,
          action_id: 'domain_connect_apply',
        },
      });
    } else blocks.push(context(`One-click setup: ${esc(dc.message)}`));
  }
  return { text: `MTA-STS records for ${plan.domain}: mode ${plan.mode}, id ${plan.id}`, blocks };
}
