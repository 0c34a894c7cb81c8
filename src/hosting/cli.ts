import { parseArgs, UsageError } from '../args.js';
import type { CheckDeps } from '../core/check.js';
import { durationText } from '../core/rollout.js';
import { CLI_OWNER, type HostedDomain } from '../store/hosting.js';
import type { ProposalStep } from './policy-plan.js';
import type {
  HostingRecord,
  HostingService,
  Outcome,
  PolicyChangeRequest,
  ProposalOutcome,
  ShowResult,
} from './service.js';

export const HOST_USAGE = `usage:
  mtasts host add <domain> [--mode testing|none] [--max-age N] [--mx host ...] [--json]
                                  host the domain's policy: prints the records to publish (CNAME, _mta-sts, TLS-RPT)
  mtasts host list [--json]        the domains hosted from the command line, with their status
  mtasts host show <domain> [--json]   served policy, id, records, whether DNS carries the id, cached versions
  mtasts host verify <domain> [--json] look at DNS now: the CNAME (pending -> active) and the _mta-sts id
  mtasts host set <domain> [--mode testing|enforce|none] [--max-age N] [--mx host ...] [--force] [--json]
                                  change the policy (a new id each time); enforce only when the rollout rule says
                                  ready, unless --force
  mtasts host apply <domain> [--json]  apply the next step of the proposed MX change
  mtasts host remove <domain> [--json] stop hosting: mode none first, until cached policies expire
exit: 0 done, 1 refused (hosting off, hosted by someone else, the cap, not ready, not now), 2 bad input
`;

export interface HostIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  deps?: CheckDeps;
  engine?: { now?: () => Date };
}

/** `mtasts host …` on the database at DATABASE_PATH, with the engine's resolver. Returns the exit code. */
export async function runHost(args: string[], io: HostIo): Promise<number> {
  const [{ loadAppConfig }, { openDatabase }, { defaultDeps }, { openHostingService }] = await Promise.all([
    import('../config.js'),
    import('../store/db.js'),
    import('../core/check.js'),
    import('./setup.js'),
  ]);
  const [sub] = args;
  if (sub === undefined || sub === 'help') {
    io.stdout(HOST_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (!COMMANDS.has(sub)) {
    throw new UsageError(`unknown host command "${sub}"; use add, list, show, verify, set, apply or remove`);
  }
  const config = loadAppConfig(io.env, 'ingest');
  const { dnsServers, timeoutMs } = config.engine;
  const dns = io.deps?.dns ?? defaultDeps({ ...(dnsServers ? { dnsServers } : {}), timeoutMs }).dns;
  const db = openDatabase(config.databasePath, undefined, config.dbBusyTimeoutMs);
  try {
    return await hostCommand(args, openHostingService(db, dns, config, io.engine?.now), io);
  } finally {
    db.close();
  }
}

const COMMANDS = new Set(['add', 'list', 'show', 'verify', 'set', 'apply', 'remove']);

const FLAGS = { json: false, mode: true, 'max-age': true, mx: true, force: false };

interface Parsed {
  domain: string;
  json: boolean;
  force: boolean;
  change: PolicyChangeRequest;
}

/** The flags of a host command; `allowed` names the flags it takes. */
function parse(args: string[], allowed: readonly string[], needsDomain = true): Parsed {
  const { positional, flags } = parseArgs(args, FLAGS);
  for (const name of flags.keys()) {
    if (!allowed.includes(name)) throw new UsageError(`--${name} does not go with this host command`);
  }
  if (needsDomain && positional.length !== 1) {
    throw new UsageError(
      positional.length === 0 ? 'no domain given: name one domain, e.g. example.com' : 'give one domain',
    );
  }
  if (!needsDomain && positional.length > 0) throw new UsageError('host list takes no domain');
  const one = (name: string) => {
    const values = flags.get(name);
    if (values && values.length > 1) throw new UsageError(`--${name} may be given once`);
    return values?.[0];
  };
  const change: PolicyChangeRequest = {};
  const mode = one('mode');
  if (mode !== undefined) change.mode = mode as PolicyChangeRequest['mode'];
  const maxAge = one('max-age');
  if (maxAge !== undefined) {
    if (!/^\d+$/.test(maxAge))
      throw new UsageError(`--max-age must be a whole number of seconds, not "${maxAge.slice(0, 20)}"`);
    change.maxAge = maxAge.length > 15 ? Number.MAX_SAFE_INTEGER : Number(maxAge);
  }
  const mx = flags.get('mx')?.flatMap((v) =>
    v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );
  if (mx) change.mx = mx;
  return { domain: positional[0] ?? '', json: flags.has('json'), force: flags.has('force'), change };
}

/** Runs one host command against the service; refusals print one line on stderr. */
export async function hostCommand(args: string[], service: HostingService, io: HostIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const p = parse(rest, ['json', 'mode', 'max-age', 'mx']);
      if (p.change.mode === 'enforce') {
        throw new UsageError(
          'a hosted domain starts in testing (or none): move it to enforce with "mtasts host set" once the rollout rule says ready',
        );
      }
      const r = await service.add(p.domain, CLI_OWNER, null, p.change);
      return answer(r, p.json, io, () => addText(r.ok ? r : null));
    }
    case 'list': {
      const p = parse(rest, ['json'], false);
      const list = await service.list(CLI_OWNER);
      if (p.json) io.stdout(`${JSON.stringify({ domains: list }, null, 2)}\n`);
      else if (list.length === 0)
        io.stdout(
          'no domain is hosted from the command line: add one with "npx mtasts host add example.com"\n',
        );
      else io.stdout(list.map(listLine).join(''));
      return 0;
    }
    case 'show': {
      const p = parse(rest, ['json']);
      const r = await service.show(p.domain, CLI_OWNER);
      return answer(r, p.json, io, () => (r.ok ? showText(r) : ''));
    }
    case 'verify': {
      const p = parse(rest, ['json']);
      const r = await service.verify(p.domain, CLI_OWNER);
      return answer(r, p.json, io, () =>
        r.ok
          ? `${statusLine(r.hosted)}\n${r.name}\n${mxText(r.mx)}${r.dns ? dnsLine(r.dns) : 'the _mta-sts record could not be read now'}\n`
          : '',
      );
    }
    case 'set': {
      const p = parse(rest, ['json', 'mode', 'max-age', 'mx', 'force']);
      const r = await service.set(p.domain, CLI_OWNER, p.change, { force: p.force });
      return answer(r, p.json, io, () => (r.ok ? setText(r) : ''));
    }
    case 'apply': {
      const p = parse(rest, ['json']);
      const r = await service.applyProposal(p.domain, CLI_OWNER);
      return answer(r, p.json, io, () =>
        r.ok
          ? `${r.hosted.domain}: ${r.step === 'interim' ? 'step 1 of the MX change' : 'the MX change'} applied: mx ${r.hosted.mx.join(', ')}\n${newIdText(r.hosted, r.previousId)}${r.next ? `${stepText(r.next)}\n` : ''}`
          : '',
      );
    }
    default: {
      const p = parse(rest, ['json']);
      const r = await service.remove(p.domain, CLI_OWNER);
      return answer(r, p.json, io, () => (r.ok ? removeText(r) : ''));
    }
  }
}

/** Prints an outcome: JSON or text on success; one line on stderr for a refusal (exit 2 for bad input, else 1). */
function answer<T>(r: Outcome<T>, json: boolean, io: HostIo, text: () => string): number {
  if (!r.ok) {
    io.stderr(`mtasts: ${r.message}\n`);
    if (json) io.stdout(`${JSON.stringify({ refused: r.kind, message: r.message })}\n`);
    return r.kind === 'input' ? 2 : 1;
  }
  io.stdout(json ? `${JSON.stringify(r, null, 2)}\n` : text());
  return 0;
}

const policyUrl = (h: HostedDomain) => `https://${h.policyHost}/.well-known/mta-sts.txt`;

function statusLine(h: HostedDomain): string {
  switch (h.status) {
    case 'pending':
      return `${h.domain}: pending: the policy is served once ${h.policyHost} points at its own CNAME target${h.nameProblem ? ` (now: ${h.nameProblem})` : ''}`;
    case 'active':
      return `${h.domain}: active: served at ${policyUrl(h)}${h.nameLostAt ? `, but since ${h.nameLostAt} ${h.nameProblem ?? `${h.policyHost} no longer resolves to the bot`}` : ''}`;
    case 'leaving':
      return `${h.domain}: leaving: mode none is served until ${h.leavingUntil ?? 'cached policies expire'}; then hosting ends and the CNAME must go`;
    default:
      return `${h.domain}: removed: no longer hosted`;
  }
}

function recordLines(records: HostingRecord[]): string {
  return records
    .map(
      (r) =>
        `  ${r.name}  ${r.ttl}  IN ${r.type}  ${r.type === 'TXT' ? `"${r.value}"` : `${r.value}.`}\n    (${r.purpose})\n`,
    )
    .join('');
}

function addText(
  r: { created: boolean; hosted: HostedDomain; records: HostingRecord[]; notes: string[] } | null,
): string {
  if (!r) return '';
  const h = r.hosted;
  const head = r.created ? `hosting ${h.domain}` : `${h.domain} is already hosted from the command line`;
  return `${head}: mode ${h.mode}, max_age ${h.maxAge} (${durationText(h.maxAge)}), mx ${h.mx.join(', ') || '(none)'}, id ${h.stsId}\nPublish these records:\n${recordLines(r.records)}${statusLine(h)}\n${r.notes.map((n) => `note: ${n}\n`).join('')}`;
}

function listLine(h: HostedDomain): string {
  const dns = h.dnsCarriesAt
    ? 'DNS carries the id'
    : h.dnsCheckedAt
      ? `DNS carries ${h.dnsId ?? 'no id'}`
      : 'DNS not checked';
  return `${h.domain}\t${h.status}\t${h.mode}\tmax_age ${h.maxAge}\tid ${h.stsId}\t${dns}\n`;
}

function dnsLine(d: NonNullable<ShowResult['dns']>): string {
  if (d.carries) return `DNS carries the id ${d.expected}`;
  return `DNS carries ${d.seen === null ? 'no single _mta-sts id' : `the id ${d.seen}`}, not ${d.expected}: publish "v=STSv1; id=${d.expected}" at _mta-sts`;
}

function stepText(step: ProposalStep): string {
  if (step.kind === 'wait') return `next: mx ${step.mx.join(', ')}, not before ${step.until}`;
  return `next: ${step.kind === 'interim' ? 'step 1, serving' : 'serve'} mx ${step.mx.join(', ')} (mtasts host apply)`;
}

/** What the MX records in DNS called for, when anything. */
function mxText(r: ProposalOutcome | null): string {
  if (r === null || r.kind === 'none') return '';
  const p = r.proposal;
  const what = `the MX records list ${p.observed.join(', ')}: add ${p.add.join(', ') || 'nothing'}, drop ${p.drop.join(', ') || 'nothing'}`;
  if (r.kind === 'applied')
    return `${what}: applied at once (mode ${r.hosted.mode})\n${newIdText(r.hosted, r.previousId)}`;
  return `${what}: proposed\n${stepText(r.next)}\n`;
}

function showText(r: ShowResult): string {
  const h = r.hosted;
  const lines = [
    statusLine(h),
    `id ${h.stsId}, served text:`,
    ...r.policyText
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`),
  ];
  lines.push('Records to publish:', recordLines(r.records).trimEnd());
  lines.push(
    r.dns ? dnsLine(r.dns) : `the _mta-sts record could not be read now (${r.dnsError ?? 'no answer'})`,
  );
  if (h.certificate) {
    const c = h.certificate;
    lines.push(
      `certificate: ${c.state} at ${c.at}${c.notAfter ? `, valid until ${c.notAfter}` : ''}${c.error ? `: ${c.error}` : ''}${c.retryAt ? `; next try ${c.retryAt}` : ''}`,
    );
  }
  lines.push('Versions senders may still cache:');
  lines.push(
    ...(r.cached.length === 0
      ? ['  none']
      : r.cached.map(
          (v) =>
            `  id ${v.stsId}: mode ${v.mode}, max_age ${v.maxAge}, served ${v.servedFrom} to ${v.servedUntil ?? 'now'}, cached until ${v.cachedUntil} at most`,
        )),
  );
  if (r.proposal) {
    const p = r.proposal.proposal;
    lines.push(
      `Proposed MX change (DNS lists ${p.observed.join(', ')}): add ${p.add.join(', ') || 'nothing'}, drop ${p.drop.join(', ') || 'nothing'}`,
    );
    lines.push(`  ${stepText(r.proposal.next)}`);
  }
  return `${lines.join('\n')}\n`;
}

function newIdText(h: HostedDomain, previousId: string): string {
  return `new id ${h.stsId} (was ${previousId}): publish "v=STSv1; id=${h.stsId}" at _mta-sts.${h.domain}; the policy is already served with it\n`;
}

function setText(r: {
  changed: boolean;
  hosted: HostedDomain;
  previousId: string;
  forced: string[];
}): string {
  const h = r.hosted;
  const forced = r.forced
    .map((f) => `forced (--force): the rollout rule is not met: it needs ${f}\n`)
    .join('');
  if (!r.changed) return `${forced}${h.domain}: nothing changes; the id stays ${h.stsId}\n`;
  return `${forced}${h.domain}: now mode ${h.mode}, max_age ${h.maxAge} (${durationText(h.maxAge)}), mx ${h.mx.join(', ') || '(none)'}\n${newIdText(h, r.previousId)}`;
}

function removeText(r: { hosted: HostedDomain; leavingUntil: string | null; removed: boolean }): string {
  const h = r.hosted;
  if (r.removed)
    return `${h.domain}: hosting ended; the CNAME ${h.policyHost} and the _mta-sts record must go (hosting again needs a new CNAME target)\n`;
  return `${h.domain}: leaving: mode none is served now with id ${h.stsId} (publish "v=STSv1; id=${h.stsId}" at _mta-sts.${h.domain}), until ${r.leavingUntil} at the earliest (the old max_age after DNS carries that id), when every sender's cached policy has expired; then hosting ends and the CNAME ${h.policyHost} must go, not before\n`;
}
