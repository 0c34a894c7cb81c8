import { type PolicySeen, policyInForce, type Report } from '../core/check.js';
import {
  CATALOG,
  type Finding,
  type FindingCode,
  finding,
  SEVERITY_ORDER,
  stopsOf,
} from '../core/findings.js';
import { cleanSince, ROLLOUT_WINDOW_MS, rolloutVerdict } from '../core/rollout.js';
import type {
  CertLevel,
  CertSeen,
  Condition,
  ConditionInfo,
  DomainState,
  MonitorEvent,
  Snapshot,
} from '../store/monitor-state.js';

/**
 * Comparing a pass with the state left by the previous ones. Pure: state in, state and events out. Conditions open
 * (with an alert) when a problem starts, are reminded while they last, and recover (in the opener's thread) when they
 * clear; each event has a stable key, so that the outbox can post it exactly once.
 */

export interface DiffSettings {
  /** Passes a flaky condition must be seen in a row before it alerts. */
  debouncePasses: number;
  reminderMs: number;
  readyAfterMs: number;
}

export const DEFAULT_DIFF_SETTINGS: DiffSettings = {
  debouncePasses: 2,
  reminderMs: 24 * 3600_000,
  readyAfterMs: ROLLOUT_WINDOW_MS,
};

const THRESHOLDS = [30, 14, 7, 3, 1] as const;
const DAY = 86_400_000;

export function certLevel(notAfter: string, now: Date): CertLevel | null {
  const ms = Date.parse(notAfter) - now.getTime();
  if (Number.isNaN(ms)) return null;
  if (ms <= 0) return 'expired';
  const days = ms / DAY;
  let level: CertLevel | null = null;
  for (const t of THRESHOLDS) if (days <= t) level = t;
  return level;
}

function severityRank(level: CertLevel): number {
  return level === 'expired' ? 0 : level;
}

export interface DiffResult {
  state: DomainState;
  events: MonitorEvent[];
  /** Findings only the monitor can make (STS_ID_NOT_UPDATED), to add to the stored report. */
  extraFindings: Finding[];
  /** When this pass saw no policy in force: the last one seen (null: none since monitoring began); else undefined. */
  lastPolicy: PolicySeen | null | undefined;
}

export interface DiffInputs {
  /** The end of the latest TLS-RPT period with failed sessions: "ready to enforce" counts from after it. */
  lastReportedFailureAt?: string | null;
}

/** One comparison in progress: what the steps of `diff` read and add to. */
interface Pass {
  prev: DomainState;
  snap: Snapshot;
  now: Date;
  nowIso: string;
  /** The first pass of a domain: its conditions are recorded without alerts. */
  baseline: boolean;
  /** The check's resolver failed (DNS_RESOLVER_FAILED): what it did not see has not cleared, only gone unseen. */
  blind: boolean;
  settings: DiffSettings;
  previous: Map<string, Condition>;
  next: Map<string, Condition>;
  events: MonitorEvent[];
}

/** A condition this pass raises, and the passes in a row it needs before it alerts. */
interface Candidate {
  info: ConditionInfo;
  debounce: number;
}

export function diff(
  prev: DomainState,
  seen: Snapshot,
  report: Report,
  now: Date,
  settings: DiffSettings = DEFAULT_DIFF_SETTINGS,
  inputs: DiffInputs = {},
): DiffResult {
  // MX hosts a failed lookup did not give are not known, not gone: nothing to compare (no MX change, no host left).
  const snap = mxUnknown(report) ? { ...seen, mx: null } : seen;
  const pass: Pass = {
    prev,
    snap,
    now,
    nowIso: now.toISOString(),
    baseline: prev.snapshot === null,
    blind: report.findings.some((f) => f.code === 'DNS_RESOLVER_FAILED'),
    settings,
    previous: new Map(prev.conditions.map((c) => [c.key, c])),
    next: new Map(),
    events: [],
  };
  const candidates = findingCandidates(report, settings);
  const stuckId = stsIdCandidate(pass);
  if (stuckId) candidates.set('sts-id', stuckId.candidate);
  for (const [key, candidate] of candidates) advance(pass, key, candidate);
  followCertificates(pass);
  closeCleared(pass, candidates);
  const mxChanged = mxChange(prev.snapshot, snap, pass.nowIso);
  if (mxChanged) {
    const change = withRelated(pass, mxChanged); // takes the related events out of pass.events first
    pass.events.push(change);
  }
  const { cleanSince, readyAnnounced } = readyToEnforce(pass, report, inputs);
  const lastPolicy = policyInForce(report) ? undefined : lastPolicyOf(prev.snapshot);
  const snapshot = lastPolicy === undefined ? snap : { ...snap, lastPolicy };
  return {
    state: { snapshot, conditions: [...pass.next.values()], cleanSince, readyAnnounced },
    events: pass.events,
    extraFindings: stuckId ? [stuckId.finding] : [],
    lastPolicy,
  };
}

/** The MX lookup failed (no answer, the resolver's failure): the MX hosts are not known, rather than none. */
function mxUnknown(report: Report): boolean {
  const mx = report.evidence.mx;
  const answered = report.findings.some((f) => f.code === 'MX_MISSING' || f.code === 'DOMAIN_NOT_FOUND');
  return mx.error !== null && mx.hosts.length === 0 && !answered;
}

/** The policy in force a snapshot saw, else the one it remembered: what senders may hold in their caches. */
export function lastPolicyOf(s: Snapshot | null): PolicySeen | null {
  if (!s) return null;
  const stopped = s.findings.some((f) => {
    const code = f.split(' ')[0] ?? '';
    return code in CATALOG && stopsOf(code as FindingCode) === 'policy';
  });
  if (s.mode !== null && s.maxAge !== null && s.stsId !== null && !stopped)
    return { mode: s.mode, maxAge: s.maxAge, id: s.stsId, seenAt: s.takenAt };
  return s.lastPolicy ?? null;
}

/** 1. The findings that alert, as the catalog declares; certificates are followed apart, by fingerprint. */
function findingCandidates(report: Report, settings: DiffSettings): Map<string, Candidate> {
  const candidates = new Map<string, Candidate>();
  for (const f of report.findings) {
    const alert = CATALOG[f.code].alert;
    if (alert === 'never' || alert === 'certificate' || f.code === 'STS_ID_NOT_UPDATED') continue; // the id: step 2
    candidates.set(`finding:${f.code}:${f.subject}`, {
      info: infoOf(f, 'finding'),
      debounce: alert === 'after-passes' ? settings.debouncePasses : 1,
    });
  }
  return candidates;
}

/** 2. The sts id: the policy text changed and the id did not (or still has not, since it was seen). */
function stsIdCandidate({ prev, snap, previous }: Pass): { candidate: Candidate; finding: Finding } | null {
  const stuck = previous.get('sts-id');
  const idUnchangedNow =
    prev.snapshot?.policyHash &&
    snap.policyHash &&
    prev.snapshot.policyHash !== snap.policyHash &&
    snap.stsId !== null &&
    prev.snapshot.stsId === snap.stsId;
  if (!idUnchangedNow && !(stuck && snap.stsId === stuck.info.stsId)) return null;
  const id = snap.stsId ?? '';
  const f = finding(
    'STS_ID_NOT_UPDATED',
    snap.domain,
    `_mta-sts.${snap.domain}`,
    `The policy text changed but the id is still ${id}.`,
  );
  return { candidate: { info: { ...infoOf(f, 'sts-id'), stsId: id }, debounce: 1 }, finding: f };
}

/** A condition seen this pass: opened (at once, or once debounced), or reminded while it lasts. */
function advance(pass: Pass, key: string, { info, debounce }: Candidate): void {
  const { nowIso, baseline, events, next } = pass;
  const old = pass.previous.get(key);
  if (!old) {
    const opens = debounce <= 1;
    next.set(key, {
      key,
      state: opens ? 'open' : 'pending',
      count: 1,
      firstSeenAt: nowIso,
      openedAt: opens ? nowIso : null,
      lastRemindedAt: opens ? nowIso : null,
      openerKey: opens && !baseline ? `${key}@${nowIso}` : null,
      info,
    });
    if (opens && !baseline) events.push({ key: `${key}@${nowIso}`, kind: 'opened', threadKey: null, info });
    return;
  }
  if (old.state === 'pending') {
    const count = old.count + 1;
    if (count < debounce) {
      next.set(key, { ...old, count, info });
      return;
    }
    const openerKey = `${key}@${nowIso}`;
    next.set(key, {
      ...old,
      state: 'open',
      count,
      openedAt: old.firstSeenAt,
      lastRemindedAt: nowIso,
      openerKey,
      info,
    });
    events.push({ key: openerKey, kind: 'opened', threadKey: null, info });
    return;
  }
  next.set(key, remind(old, info, pass.now, pass.settings, events));
}

/** 3. Certificates, followed by host and fingerprint across passes: one alert per threshold crossed. */
function followCertificates(pass: Pass): void {
  const { snap, now, nowIso, baseline, events, next } = pass;
  const certsNow = new Map(snap.certs.map((c) => [`cert:${c.role}:${c.host}:${c.fingerprint}`, c]));
  for (const [key, cert] of certsNow) {
    const level = certLevel(cert.notAfter, now);
    if (level === null) continue; // more than 30 days left, and no alert open for it (handled below)
    const info = certInfo(cert, level, snap.domain);
    const old = pass.previous.get(key);
    if (!old) {
      const eventKey = `${key}:${level}`;
      next.set(key, {
        key,
        state: 'open',
        count: 1,
        firstSeenAt: nowIso,
        openedAt: nowIso,
        lastRemindedAt: nowIso,
        openerKey: baseline ? null : eventKey,
        info,
      });
      if (!baseline) events.push({ key: eventKey, kind: 'opened', threadKey: null, info });
    } else if (severityRank(level) < severityRank(old.info.cert?.level ?? 30)) {
      // One alert per threshold crossed, in the thread of the first.
      const eventKey = `${key}:${level}`;
      events.push({ key: eventKey, kind: 'escalated', threadKey: old.openerKey, info });
      next.set(key, { ...old, info, lastRemindedAt: nowIso, openerKey: old.openerKey ?? eventKey });
    } else {
      next.set(key, remind(old, info, now, pass.settings, events));
    }
  }
  closeReplacedCertificates(pass);
}

/** A certificate alert not seen this pass closes when it was replaced or its MX host left; otherwise it is kept. */
function closeReplacedCertificates(pass: Pass): void {
  const { snap, now } = pass;
  for (const old of pass.prev.conditions) {
    if (old.info.kind !== 'cert' || pass.next.has(old.key) || !old.info.cert) continue;
    const c = old.info.cert;
    const replacement = snap.certs.find(
      (x) => x.role === c.role && x.host === c.host && x.fingerprint !== c.fingerprint,
    );
    if (replacement) {
      const newLevel = certLevel(replacement.notAfter, now);
      recover(
        pass,
        old,
        `replaced: the new certificate expires ${replacement.notAfter.slice(0, 10)}${newLevel === null ? '' : ` (${newLevel === 'expired' ? 'already expired' : `within ${newLevel} days`})`}`,
      );
    } else if (c.role === 'mx' && snap.mx !== null && !snap.mx.includes(c.host)) {
      recover(pass, old, `${c.host} is no longer an MX host`);
    } else {
      pass.next.set(old.key, old); // not seen this pass (e.g. unreachable): keep following it
    }
  }
}

/** 4. Conditions that cleared: each open one recovers in its opener's thread. */
function closeCleared(pass: Pass, candidates: Map<string, Candidate>): void {
  for (const old of pass.prev.conditions) {
    if (old.info.kind === 'cert' || pass.next.has(old.key) || candidates.has(old.key)) continue;
    if (pass.blind) {
      pass.next.set(old.key, old); // the check saw nothing of it: not recovered, followed on
      continue;
    }
    recover(
      pass,
      old,
      old.info.kind === 'sts-id' ? `the id changed to ${pass.snap.stsId ?? 'none'}` : 'no longer seen',
    );
  }
}

function recover(pass: Pass, old: Condition, resolution: string): void {
  if (old.state !== 'open') return;
  const opened = Date.parse(old.openedAt ?? old.firstSeenAt);
  pass.events.push({
    key: `${old.key}@${pass.nowIso}:recovered`,
    kind: 'recovered',
    threadKey: old.openerKey,
    info: old.info,
    durationMs: pass.now.getTime() - opened,
    resolution,
  });
}

/** 5. MX hosts added or removed since the previous pass (nothing to compare while a lookup fails). */
function mxChange(before: Snapshot | null, snap: Snapshot, nowIso: string): MonitorEvent | null {
  if (!before?.mx || !snap.mx) return null;
  const now = snap.mx;
  const added = now.filter((h) => !before.mx?.includes(h));
  const removed = before.mx.filter((h) => !now.includes(h));
  if (added.length === 0 && removed.length === 0) return null;
  return {
    key: `mx-changed@${nowIso}`,
    kind: 'changed',
    threadKey: null,
    mxChange: { added, removed },
    info: {
      kind: 'finding',
      title: 'MX hosts changed',
      subject: snap.domain,
      severity: 'info',
      message: `MX hosts ${[...added.map((h) => `added ${h}`), ...removed.map((h) => `removed ${h}`)].join(', ')}; now ${now.join(', ') || 'none'}.`,
      fix: 'Make sure the policy lists every MX host (an alert follows if one is not covered), and publish a new id when you change it.',
    },
  };
}

/**
 * 5b. What opened this pass about the MX hosts just added (not covered by the policy, no STARTTLS, a certificate
 * expiring…) goes in the change's own alert: one message about the move. Their conditions are followed as before,
 * with the change as their opener, so that reminders and recoveries go in its thread.
 */
function withRelated(pass: Pass, change: MonitorEvent): MonitorEvent {
  const added = change.mxChange?.added ?? [];
  const related = pass.events.filter(
    (e) => e.kind === 'opened' && e.threadKey === null && added.includes(e.info.subject),
  );
  if (related.length === 0) return change;
  pass.events = pass.events.filter((e) => !related.includes(e));
  for (const [key, c] of pass.next) {
    if (related.some((e) => e.key === c.openerKey)) pass.next.set(key, { ...c, openerKey: change.key });
  }
  const worst = [change.info, ...related.map((e) => e.info)].sort(
    (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity],
  )[0];
  const titles = [...new Set(related.map((e) => e.info.title))];
  return {
    ...change,
    info: {
      ...change.info,
      title: `${change.info.title}; ${titles.length === 1 ? titles[0] : `${titles.length} problems with the new hosts`}`,
      severity: worst?.severity ?? change.info.severity,
      message: [
        change.info.message,
        ...related.map((e) => `${e.info.title} (${e.info.subject}): ${e.info.message}`),
      ].join('\n'),
      fix: [...new Set(related.map((e) => e.info.fix))].join('\n'),
    },
  };
}

/** 6. Ready to enforce, by the rollout rule (core/rollout.ts), announced once per clean stretch. */
function readyToEnforce(
  pass: Pass,
  report: Report,
  inputs: DiffInputs,
): { cleanSince: string | null; readyAnnounced: string | null } {
  const { snap, now } = pass;
  const errors = report.findings.some((f) => f.severity === 'error');
  const clean = cleanSince(pass.prev.cleanSince, snap.mode, errors, now);
  const failure = inputs.lastReportedFailureAt ?? null;
  const verdict = rolloutVerdict({
    mode: snap.mode,
    cleanSince: clean,
    lastReportedFailureAt: failure,
    now,
    windowMs: pass.settings.readyAfterMs,
  });
  const readySince = verdict.since;
  if (!verdict.ready || readySince === null || pass.prev.readyAnnounced === readySince) {
    return { cleanSince: clean, readyAnnounced: pass.prev.readyAnnounced };
  }
  pass.events.push({
    key: `ready@${readySince}`,
    kind: 'ready',
    threadKey: null,
    info: {
      kind: 'finding',
      title: 'Ready to move from testing to enforce',
      subject: snap.domain,
      severity: 'info',
      message: `${snap.domain} has been in testing mode with no errors${failure ? ' and no reported TLS failures' : ''} since ${readySince.slice(0, 10)}.`,
      fix: 'Publish the policy with mode: enforce and a new id (records below).',
    },
  });
  return { cleanSince: clean, readyAnnounced: readySince };
}

function remind(
  old: Condition,
  info: ConditionInfo,
  now: Date,
  settings: DiffSettings,
  events: MonitorEvent[],
): Condition {
  const last = Date.parse(old.lastRemindedAt ?? old.openedAt ?? old.firstSeenAt);
  if (info.severity === 'error' && now.getTime() - last >= settings.reminderMs) {
    const opened = Date.parse(old.openedAt ?? old.firstSeenAt);
    events.push({
      key: `${old.key}@${now.toISOString()}:reminder`,
      kind: 'reminder',
      threadKey: old.openerKey,
      info,
      durationMs: now.getTime() - opened,
    });
    return { ...old, info, lastRemindedAt: now.toISOString() };
  }
  return { ...old, info };
}

function certInfo(cert: CertSeen, level: CertLevel, domain: string): ConditionInfo {
  const which = cert.role === 'policy' ? 'Policy host' : 'MX';
  const expired = level === 'expired';
  const code: FindingCode = `${cert.role === 'policy' ? 'POLICY' : 'MX'}_CERT_${expired ? 'EXPIRED' : 'EXPIRING'}`;
  const f = finding(
    code,
    domain,
    cert.host,
    expired
      ? `The certificate of ${cert.host} expired on ${cert.notAfter.slice(0, 10)}.`
      : `The certificate of ${cert.host} expires on ${cert.notAfter.slice(0, 10)}, within ${level} day${level === 1 ? '' : 's'}.`,
  );
  return {
    ...infoOf(f, 'cert'),
    title: expired
      ? `${which} certificate expired`
      : `${which} certificate expires within ${level} day${level === 1 ? '' : 's'}`,
    cert: { ...cert, level },
  };
}

/** A condition's description from the finding that raised it. */
function infoOf(f: Finding, kind: ConditionInfo['kind']): ConditionInfo {
  return {
    kind,
    code: f.code,
    title: CATALOG[f.code].title,
    subject: f.subject,
    severity: f.severity,
    message: f.message,
    fix: f.fix,
  };
}
