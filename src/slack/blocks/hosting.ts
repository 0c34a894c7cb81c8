import { durationText } from '../../core/rollout.js';
import { formatStsRecord } from '../../core/sts-record.js';
import type { DomainConnectOutcome } from '../../generate/service.js';
import type { HostingRecord, ShowResult } from '../../hosting/service.js';
import type { HostedDomain } from '../../store/hosting.js';
import type { HostingPayload } from '../../store/monitor-state.js';
import { type ButtonScope, button } from './actions.js';
import {
  type Block,
  clip,
  code,
  context,
  esc,
  header,
  LIMITS,
  type Message,
  preformatted,
  quoted,
  section,
} from './common.js';

/**
 * Hosted MTA-STS in Slack, pure renderers: the host message (records to publish, what is served, what DNS carries, the
 * pending MX change, the certificate) with its buttons, the workspace's list, and the alerts of a hosted domain.
 */

export const HOST_ACTION = {
  check: 'mtasts_host_check',
  enforce: 'mtasts_host_enforce',
  apply: 'mtasts_host_apply',
  stop: 'mtasts_host_stop',
} as const;

/** The answer when hosting is off on this installation. */
export const HOSTING_OFF_TEXT =
  ":no_entry: Hosted MTA-STS is off on this installation: whoever runs the bot sets `MTASTS_HOSTING_NAME` (each enrollment's `mta-sts.<domain>` CNAME then points at its own target `<token>.<MTASTS_HOSTING_NAME>`, which the operator's wildcard `*.<MTASTS_HOSTING_NAME>` sends to the bot) and restarts it. Until then `/mtasts records example.com` gives the policy file and records to host yourself.";

/** A host message as the command and the buttons show it: the service's view of the domain, and what Slack adds. */
export interface HostView extends Omit<ShowResult, 'ok'> {
  /** MTASTS_HOSTING_NAME. */
  hostingName: string;
  /** Testing -> enforce by the rollout rule; null outside testing. */
  enforce: { ready: boolean; missing: string[] } | null;
  domainConnect: DomainConnectOutcome | null;
  /** What just happened, in one line at the top (enrolled, changed). */
  lead?: string;
}

const STATUS_LINE: Record<HostedDomain['status'], string> = {
  pending: ':hourglass_flowing_sand: waiting for the CNAME',
  active: ':white_check_mark: served by the bot',
  leaving: ':door: leaving (mode none served)',
  removed: ':heavy_minus_sign: no longer hosted',
};

const when = (iso: string | null | undefined) => (iso ? iso.replace(/\.\d{3}Z$/, 'Z') : 'unknown');

/** One record as a BIND zone line: fully qualified names, TXT quoted. */
export function bindLine(r: Pick<HostingRecord, 'name' | 'ttl' | 'type' | 'value'>): string {
  const value = r.type === 'TXT' ? `"${r.value.replace(/["\\]/g, '\\$&')}"` : `${r.value}.`;
  return `${r.name}. ${r.ttl} IN ${r.type} ${value}`;
}

/** The `_mta-sts` TXT line that carries an id. */
export function stsTxtLine(domain: string, id: string): string {
  return bindLine({ name: `_mta-sts.${domain}`, ttl: 3600, type: 'TXT', value: formatStsRecord({ id }) });
}

/** The whole host message: what to publish first, then what is served, then the buttons. */
export function hostMessage(view: HostView, scope: ButtonScope): Message {
  const h = view.hosted;
  const blocks: Block[] = [
    header(`Hosted MTA-STS for ${h.domain}`),
    context(
      `${STATUS_LINE[h.status]} · mode ${h.mode} · max_age ${h.maxAge} (${durationText(h.maxAge)}) · id ${code(h.stsId)}`,
    ),
  ];
  if (view.lead) blocks.push(section(view.lead));
  blocks.push(section(statusText(view)));
  if (h.status !== 'removed') blocks.push(...recordBlocks(view));
  blocks.push(
    section(
      `*Policy served* at ${code(`https://${h.policyHost}/.well-known/mta-sts.txt`)}\n${preformatted(view.policyText)}`,
    ),
  );
  const more = [proposalText(view), enforceText(view), certificateText(h), cachedText(view)].filter(Boolean);
  if (more.length > 0) blocks.push(section(more.join('\n')));
  if (view.domainConnect && h.status !== 'removed') blocks.push(domainConnectBlock(view.domainConnect));
  const actions = hostActions(scope, view);
  if (actions) blocks.push(actions);
  if (h.status !== 'removed' && scope.channel !== h.channelId) blocks.push(context(changedFromText(h)));
  return {
    text: `Hosted MTA-STS for ${h.domain}: ${h.status}, mode ${h.mode}, id ${h.stsId}`,
    blocks: blocks.slice(0, LIMITS.blocksPerMessage),
  };
}

/** Where the domain stands: the name, the id in DNS. */
function statusText(view: HostView): string {
  const h = view.hosted;
  const lines: string[] = [];
  if (h.status === 'pending') {
    lines.push(
      `Publish the records below. As soon as DNS shows ${code(h.policyHost)} pointing at this enrollment's own target below (under ${code(view.hostingName)}, never that name itself), the bot gets a certificate for it, serves the policy, and tells this channel; the monitor looks at every pass, *Check DNS now* looks at once.`,
    );
    if (h.nameProblem) lines.push(`Last look: ${quoted(h.nameProblem, 300)}`);
  } else if (h.status === 'leaving') {
    const until = h.leavingUntil
      ? `until ${when(h.leavingUntil)} (its max_age after DNS was first seen carrying that id)`
      : 'until DNS carries that id and then for the max_age of what senders may have cached';
    lines.push(
      `Mode none is served (id ${code(h.stsId)}) ${until}, so that senders that cached an earlier policy let it go. Then hosting ends, and the CNAME ${code(h.policyHost)} and the ${code(`_mta-sts.${h.domain}`)} record must go; not before, or senders that cached an enforce policy fail.`,
    );
  } else if (h.status === 'removed') {
    lines.push(
      `No longer hosted since ${when(h.updatedAt)}: the CNAME ${code(h.policyHost)} and the ${code(`_mta-sts.${h.domain}`)} record must go (hosting again needs a new enrollment, with a new CNAME target).`,
    );
  } else if (h.nameLostAt) {
    const problem = h.nameProblem ? quoted(h.nameProblem, 300) : 'it points elsewhere.';
    lines.push(
      `:warning: ${code(h.policyHost)} no longer points at the bot for this enrollment (since ${when(h.nameLostAt)}): ${problem}`,
    );
  }
  if (h.status !== 'removed') lines.push(dnsIdText(view));
  return lines.join('\n');
}

function dnsIdText(view: HostView): string {
  const d = view.dns;
  const txt = code(`_mta-sts.${view.hosted.domain}`);
  if (!d)
    return `:grey_question: ${txt} could not be read now${view.dnsError ? `: ${quoted(view.dnsError, 300)}` : '.'}`;
  if (d.carries) return `:white_check_mark: DNS carries id ${code(d.expected)} in ${txt}.`;
  const seen = d.seen === null ? 'no MTA-STS record' : `id ${code(d.seen)}`;
  return `:warning: ${txt} carries ${seen}; publish id ${code(d.expected)}: senders that cached a policy fetch the new one only when the id changes.`;
}

/** The records to publish, copy-ready: a zone fragment, then each record's fields as DNS panels ask for them. */
function recordBlocks(view: HostView): Block[] {
  const fragment = view.records.map(bindLine).join('\n');
  const fields = view.records
    .map(
      (r) =>
        `Name ${code(r.host)} · Type ${r.type} · TTL ${r.ttl}\nValue ${code(r.value)}\n_${esc(r.purpose)}_`,
    )
    .join('\n');
  const blocks = [section(`*Publish these DNS records*\n${preformatted(fragment)}`), section(fields)];
  return blocks;
}

function proposalText(view: HostView): string {
  const p = view.proposal;
  if (!p) return '';
  const { add, drop } = p.proposal;
  const lines = [`*Proposed change* (the MX records changed): ${changeWords(add, drop)}.`];
  const next = p.next;
  if (next.kind === 'wait')
    lines.push(
      `Step 1 is live; step 2 (dropping ${drop.map(code).join(', ')}) is safe from ${when(next.until)}.`,
    );
  else if (next.kind === 'interim')
    lines.push(
      `*Apply proposed change* serves step 1 now: mx ${next.mx.map(code).join(', ')}; the old hosts go in step 2, after the old max_age.`,
    );
  else lines.push(`*Apply proposed change* serves mx ${next.mx.map(code).join(', ')} now.`);
  return lines.join('\n');
}

function changeWords(add: readonly string[], drop: readonly string[]): string {
  const parts = [];
  if (add.length > 0) parts.push(`add ${add.map(code).join(', ')}`);
  if (drop.length > 0) parts.push(`drop ${drop.map(code).join(', ')}`);
  return parts.join(', then ') || 'no change';
}

function enforceText(view: HostView): string {
  const e = view.enforce;
  if (!e || view.hosted.status !== 'active') return '';
  if (e.ready)
    return ':tada: *Ready to enforce*: the rollout rule is met. *Move to enforce* serves it (checked again when you click).';
  return `Enforce needs ${esc(e.missing.join('; '))}.`;
}

function certificateText(h: HostedDomain): string {
  const c = h.certificate;
  if (!c) return h.status === 'active' ? 'Certificate: not issued yet.' : '';
  if (c.state === 'failed')
    return `:warning: Certificate: the last attempt failed at ${when(c.at)}; the CA said ${caWords(c.error)}; next try ${when(c.retryAt)}.`;
  return `Certificate: ${c.state} at ${when(c.at)}, valid until ${when(c.notAfter)}.`;
}

/**
 * The CA's error, shown inert: Let's Encrypt's detail can quote what the validated server sent, so it is a code span
 * (no link, no *bold*, no mention), one line, cut to 300 characters.
 */
function caWords(error: string | null | undefined): string {
  return quoted(error ?? 'no detail', 300);
}

function cachedText(view: HostView): string {
  const held = view.cached.filter((v) => v.stsId !== view.hosted.stsId);
  if (held.length === 0) return '';
  const items = held.slice(0, 5).map((v) => `id ${code(v.stsId)} (${v.mode}) until ${when(v.cachedUntil)}`);
  return `Senders may still hold: ${items.join(', ')}${held.length > 5 ? ` and ${held.length - 5} more` : ''}.`;
}

function domainConnectBlock(dc: DomainConnectOutcome): Block {
  if (!dc.applyUrl) return context(`One-click setup: ${esc(dc.message)}`);
  return {
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: clip(
        `*One-click setup of the two TXT records*: ${esc(dc.message)} The CNAME is yours to add.`,
        LIMITS.sectionText,
      ),
    },
    accessory: {
      type: 'button',
      text: { type: 'plain_text', text: `Set up at ${dc.provider ?? 'your DNS provider'}`.slice(0, 75) },
      url: dc.applyUrl,
      action_id: 'domain_connect_apply',
    },
  };
}

/** Stop hosting asks first, and says how the way out goes. */
function stopButton(scope: ButtonScope): Block {
  return {
    ...button('Stop hosting', HOST_ACTION.stop, scope, 'danger'),
    confirm: {
      title: { type: 'plain_text', text: 'Stop hosting?' },
      text: {
        type: 'mrkdwn',
        text: 'The bot first serves `mode: none` with a new id (publish it), and keeps serving it until every sender that cached the current policy has let it go (max_age after DNS carries the new id). Then hosting ends and the CNAME must go; removing it sooner breaks senders that cached an enforce policy.',
      },
      confirm: { type: 'plain_text', text: 'Stop hosting' },
      deny: { type: 'plain_text', text: 'Keep hosting' },
      style: 'danger',
    },
  };
}

/** Said under the host message shown in any channel but the enrolling one (its buttons there only look at DNS). */
function changedFromText(h: HostedDomain): string {
  const where = h.channelId
    ? `<#${esc(h.channelId)}>, the channel it was enrolled from`
    : 'no channel (none enrolled it)';
  return `Changes to ${esc(h.domain)} (mode, max-age, mx, apply, remove) are made only from ${where}, and not by guests.`;
}

/**
 * The host message's buttons: Check DNS now always; Move to enforce only when the rollout rule says ready; Apply
 * proposed change only with a proposal; Stop hosting unless it is already leaving or removed. The changing ones only in
 * the channel the domain was enrolled from: anywhere else they would be refused.
 */
export function hostActions(
  scope: ButtonScope,
  view: Pick<HostView, 'hosted' | 'enforce' | 'proposal'>,
): Block | null {
  const h = view.hosted;
  if (h.status === 'removed') return null;
  const elements = [button('Check DNS now', HOST_ACTION.check, scope)];
  if (scope.channel !== h.channelId) return { type: 'actions', block_id: 'mtasts_host_actions', elements };
  if (h.status === 'active' && view.enforce?.ready)
    elements.push(button('Move to enforce', HOST_ACTION.enforce, scope, 'primary'));
  if (view.proposal && h.status !== 'leaving')
    elements.push(button('Apply proposed change', HOST_ACTION.apply, scope, 'primary'));
  if (h.status !== 'leaving') elements.push(stopButton(scope));
  return { type: 'actions', block_id: 'mtasts_host_actions', elements };
}

/** `/mtasts host` alone: the workspace's hosted domains. */
export function hostListMessage(hosted: readonly HostedDomain[], max: number): Message {
  if (hosted.length === 0) {
    return {
      text: 'This workspace hosts no MTA-STS policy.',
      blocks: [
        section(
          'This workspace hosts no MTA-STS policy. `/mtasts host example.com` starts: the bot serves the policy, you publish a CNAME.',
        ),
      ],
    };
  }
  const lines = hosted.map((h) => {
    const where = h.channelId ? ` · <#${esc(h.channelId)}>` : '';
    const dns = h.dnsCarriesAt ? '' : ' · :warning: id not yet in DNS';
    return `${STATUS_LINE[h.status]} · *${esc(h.domain)}* · mode ${h.mode} · id ${code(h.stsId)}${dns}${where}${h.proposal ? ' · change proposed' : ''}`;
  });
  const blocks: Block[] = [header(`Hosted MTA-STS: ${hosted.length} of ${max} domains`)];
  for (let i = 0; i < lines.length && blocks.length < LIMITS.blocksPerMessage - 1; i += 20)
    blocks.push(section(lines.slice(i, i + 20).join('\n')));
  blocks.push(context('`/mtasts host example.com` shows one, with its records and buttons.'));
  return { text: `This workspace hosts ${hosted.length} domain(s).`, blocks };
}

/** A hosted domain's alert, as posted to its owning channels (with buttons where `where` is given). */
export function hostingAlertMessage(p: HostingPayload, where?: { team: string; channel: string }): Message {
  const { headline, lines, buttons } = hostingAlertText(p);
  const blocks: Block[] = [section([headline, ...lines.filter(Boolean)].join('\n'))];
  if (where && buttons.length > 0) {
    const scope = { domain: p.domain, team: where.team, channel: where.channel };
    const names = { check: 'Check DNS now', apply: 'Apply proposed change' } as const;
    blocks.push({
      type: 'actions',
      block_id: 'mtasts_host_alert_actions',
      elements: buttons.map((b) =>
        button(names[b], HOST_ACTION[b], scope, b === 'apply' ? 'primary' : undefined),
      ),
    });
  }
  // A dropped request is gone: `/mtasts host` has nothing of the domain to show its owner.
  if (p.kind !== 'hosting-dropped')
    blocks.push(
      context(`\`/mtasts host ${esc(p.domain)}\` shows the hosted policy, its records and buttons.`),
    );
  return { text: esc(clip(headline.replace(/[*]/g, '').replace(/:[a-z_]+: /g, ''), 300)), blocks };
}

interface AlertText {
  headline: string;
  lines: string[];
  buttons: ('check' | 'apply')[];
}

function hostingAlertText(p: HostingPayload): AlertText {
  const d = esc(p.domain);
  const txt = p.stsId ? preformatted(stsTxtLine(p.domain, p.stsId)) : '';
  switch (p.kind) {
    case 'hosting-active':
      return {
        headline: `:white_check_mark: *${d}: hosted MTA-STS is live*`,
        lines: [
          `${code(p.policyHost)} points at the bot for this enrollment: it gets a certificate and serves the policy (mode ${p.mode ?? '?'}, id ${code(p.stsId ?? '?')}).`,
          watchWords(p),
        ],
        buttons: [],
      };
    case 'hosting-name-lost':
      return {
        headline: `:warning: *${d}: ${esc(p.policyHost)} no longer points at the bot*`,
        lines: [
          p.problem ? `Last look: ${quoted(p.problem, 300)}` : 'It resolves elsewhere.',
          'Senders that fetch the policy now fail; those with a cached one keep it. Put the CNAME back, or `Stop hosting` to leave the safe way.',
        ],
        buttons: ['check'],
      };
    case 'hosting-name-back':
      return {
        headline: `:white_check_mark: *${d}: ${esc(p.policyHost)} points at the bot again*`,
        lines: [],
        buttons: [],
      };
    case 'hosting-removed':
      return {
        headline: `:heavy_minus_sign: *${d}: hosting ended*`,
        lines: [
          `No sender holds a policy other than mode none any more: the CNAME ${code(p.policyHost)} and the ${code(`_mta-sts.${p.domain}`)} record must go now (hosting again needs a new enrollment, with a new CNAME target).`,
        ],
        buttons: [],
      };
    case 'certificate-issued':
      return {
        headline: `:lock: *${d}: certificate issued for ${esc(p.policyHost)}*`,
        lines: [`Valid until ${when(p.notAfter)}; the bot renews it 30 days before.`],
        buttons: [],
      };
    case 'certificate-failed':
      return {
        headline: `:warning: *${d}: the certificate for ${esc(p.policyHost)} could not be obtained*`,
        lines: [
          `The CA said: ${caWords(p.error)}`,
          `The bot tries again at ${when(p.retryAt)}. Meanwhile check that ${code(p.policyHost)} points at the bot.`,
        ],
        buttons: ['check'],
      };
    case 'hosting-proposal':
      return proposalAlert(p, d);
    case 'hosting-applied':
      return {
        headline: `:arrows_counterclockwise: *${d}: the MX records changed, and the hosted policy follows*`,
        lines: [
          `Mode ${p.mode ?? '?'} does not stop mail, so the change is served now: ${changeWords(p.change?.add ?? [], p.change?.drop ?? [])}; mx ${(p.mx ?? []).map(code).join(', ')}.`,
          `New id ${code(p.stsId ?? '?')}: publish it, so that senders fetch the new policy:`,
          txt,
        ],
        buttons: ['check'],
      };
    case 'hosting-id-reminder':
      return {
        headline: `:alarm_clock: *${d}: publish the new id ${code(p.stsId ?? '?')}*`,
        lines: [
          `${code(`_mta-sts.${p.domain}`)} carries ${p.seenId ? `id ${code(p.seenId)}` : 'no MTA-STS record'}, but the bot serves id ${code(p.stsId ?? '?')}. Senders that cached the policy fetch the new one only when the id changes:`,
          txt,
        ],
        buttons: ['check'],
      };
    case 'hosting-id-carried':
      return {
        headline: `:white_check_mark: *${d}: DNS now carries id ${code(p.stsId ?? '?')}*`,
        lines: [],
        buttons: [],
      };
    case 'hosting-dropped':
      return {
        headline: `:warning: *${d}: your request to host it was dropped*`,
        lines: [
          `Another enrollment proved control of ${code(p.policyHost)} first (its CNAME target is in DNS); your pending request was dropped. If the domain is yours, check who changed the CNAME.`,
        ],
        buttons: [],
      };
  }
}

function proposalAlert(p: HostingPayload, d: string): AlertText {
  const c = p.change;
  const next =
    c?.next === 'interim'
      ? `*Apply proposed change* serves step 1 now (mx ${c.nextMx.map(code).join(', ')}); the old hosts are dropped in step 2, once the old max_age has run out.`
      : c?.next === 'wait'
        ? `Step 2 is safe from ${when(c.until)}.`
        : `*Apply proposed change* serves mx ${(c?.nextMx ?? []).map(code).join(', ')}.`;
  return {
    headline: `:arrows_counterclockwise: *${d}: the MX records changed: a policy update is proposed*`,
    lines: [
      `In enforce, senders refuse MX hosts the policy does not list, so the change goes in the safe order: ${changeWords(c?.add ?? [], c?.drop ?? [])}.`,
      next,
    ],
    buttons: c?.next === 'wait' ? [] : ['apply'],
  };
}

function watchWords(p: HostingPayload): string {
  switch (p.watch) {
    case 'added':
    case 'resumed':
      return 'This channel now watches it: it hears when something changes or breaks.';
    case 'exists':
      return 'This channel already watches it.';
    case 'limit':
      return ':warning: This workspace watches as many domains as allowed, so it is not watched: unwatch one, then `/mtasts watch` it.';
    default:
      return '';
  }
}
