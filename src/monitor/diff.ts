import type { Report } from '../core/check.js';
import { CATALOG, type Finding, type FindingCode, finding, type Severity } from '../core/findings.js';
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
  readyAfterMs: 14 * 24 * 3600_000,
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
}

export interface DiffInputs {
  /** The end of the latest TLS-RPT period with failed sessions: "ready to enforce" counts from after it. */
  lastReportedFailureAt?: string | null;
}

export function diff(
  prev: DomainState,
  snap: Snapshot,
  report: Report,
  now: Date,
  settings: DiffSettings = DEFAULT_DIFF_SETTINGS,
  inputs: DiffInputs = {},
): DiffResult {
  const nowIso = now.toISOString();
  const baseline = prev.snapshot === null;
  const events: MonitorEvent[] = [];
  const extraFindings: Finding[] = [];
  const previous = new Map(prev.conditions.map((c) => [c.key, c]));
  const next = new Map<string, Condition>();

  // 1. Conditions from findings.
  const candidates = new Map<string, { info: ConditionInfo; debounce: number }>();
  for (const f of report.findings) {
    // How each code alerts is declared in the catalog; certificates are followed below, by fingerprint.
    const alert = CATALOG[f.code].alert;
    if (alert === 'never' || alert === 'certificate' || f.code === 'STS_ID_NOT_UPDATED') continue; // the id: step 2
    candidates.set(`finding:${f.code}:${f.subject}`, {
      info: infoOf(f, 'finding'),
      debounce: alert === 'after-passes' ? settings.debouncePasses : 1,
    });
  }

  // 2. The sts id: policy text changed, id did not.
  const stuck = previous.get('sts-id');
  const idUnchangedNow =
    prev.snapshot?.policyHash &&
    snap.policyHash &&
    prev.snapshot.policyHash !== snap.policyHash &&
    snap.stsId !== null &&
    prev.snapshot.stsId === snap.stsId;
  if (idUnchangedNow || (stuck && snap.stsId === stuck.info.stsId)) {
    const id = snap.stsId ?? '';
    const f = finding(
      'STS_ID_NOT_UPDATED',
      snap.domain,
      `_mta-sts.${snap.domain}`,
      `The policy text changed but the id is still ${id}.`,
    );
    extraFindings.push(f);
    candidates.set('sts-id', {
      info: { ...infoOf(f, 'sts-id'), stsId: id },
      debounce: 1,
    });
  }

  for (const [key, { info, debounce }] of candidates) {
    const old = previous.get(key);
    if (!old) {
      const opens = debounce <= 1;
      const condition: Condition = {
        key,
        state: opens ? 'open' : 'pending',
        count: 1,
        firstSeenAt: nowIso,
        openedAt: opens ? nowIso : null,
        lastRemindedAt: opens ? nowIso : null,
        openerKey: opens && !baseline ? `${key}@${nowIso}` : null,
        info,
      };
      if (opens && !baseline) events.push({ key: `${key}@${nowIso}`, kind: 'opened', threadKey: null, info });
      next.set(key, condition);
      continue;
    }
    if (old.state === 'pending') {
      const count = old.count + 1;
      if (count >= debounce) {
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
      } else next.set(key, { ...old, count, info });
      continue;
    }
    next.set(key, remind(old, info, now, settings, events));
  }

  // 3. Certificates, followed by host and fingerprint across passes.
  const certsNow = new Map(snap.certs.map((c) => [`cert:${c.role}:${c.host}:${c.fingerprint}`, c]));
  for (const [key, cert] of certsNow) {
    const level = certLevel(cert.notAfter, now);
    const old = previous.get(key);
    if (level === null) continue; // more than 30 days left, and no alert open for it (handled below)
    const info = certInfo(cert, level, snap.domain);
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
      continue;
    }
    const oldLevel = old.info.cert?.level ?? 30;
    if (severityRank(level) < severityRank(oldLevel)) {
      // One alert per threshold crossed, in the thread of the first.
      const eventKey = `${key}:${level}`;
      events.push({ key: eventKey, kind: 'escalated', threadKey: old.openerKey, info });
      next.set(key, { ...old, info, lastRemindedAt: nowIso, openerKey: old.openerKey ?? eventKey });
    } else {
      next.set(key, remind(old, info, now, settings, events));
    }
  }
  for (const old of prev.conditions) {
    if (old.info.kind !== 'cert' || next.has(old.key) || !old.info.cert) continue;
    const c = old.info.cert;
    const replacement = snap.certs.find(
      (x) => x.role === c.role && x.host === c.host && x.fingerprint !== c.fingerprint,
    );
    const hostGone = c.role === 'mx' && snap.mx !== null && !snap.mx.includes(c.host);
    if (replacement) {
      const newLevel = certLevel(replacement.notAfter, now);
      close(
        old,
        `replaced: the new certificate expires ${replacement.notAfter.slice(0, 10)}${newLevel === null ? '' : ` (${newLevel === 'expired' ? 'already expired' : `within ${newLevel} days`})`}`,
      );
    } else if (hostGone) {
      close(old, `${c.host} is no longer an MX host`);
    } else {
      next.set(old.key, old); // not seen this pass (e.g. unreachable): keep following it
    }
  }

  // 4. Conditions that cleared.
  for (const old of prev.conditions) {
    if (old.info.kind === 'cert' || next.has(old.key) || candidates.has(old.key)) continue;
    if (old.state === 'open') {
      close(old, old.info.kind === 'sts-id' ? `the id changed to ${snap.stsId ?? 'none'}` : 'no longer seen');
    }
  }

  function close(old: Condition, resolution: string): void {
    if (old.state !== 'open') return;
    const opened = Date.parse(old.openedAt ?? old.firstSeenAt);
    events.push({
      key: `${old.key}@${nowIso}:recovered`,
      kind: 'recovered',
      threadKey: old.openerKey,
      info: old.info,
      durationMs: now.getTime() - opened,
      resolution,
    });
  }

  // 5. MX set changes.
  if (prev.snapshot?.mx && snap.mx) {
    const before = prev.snapshot.mx;
    const added = snap.mx.filter((h) => !before.includes(h));
    const removed = before.filter((h) => !snap.mx?.includes(h));
    if (added.length > 0 || removed.length > 0) {
      events.push({
        key: `mx-changed@${nowIso}`,
        kind: 'changed',
        threadKey: null,
        mxChange: { added, removed },
        info: {
          kind: 'finding',
          title: 'MX hosts changed',
          subject: snap.domain,
          severity: 'info',
          message: `MX hosts ${[...added.map((h) => `added ${h}`), ...removed.map((h) => `removed ${h}`)].join(', ')}; now ${snap.mx.join(', ') || 'none'}.`,
          fix: 'Make sure the policy lists every MX host (an alert follows if one is not covered), and publish a new id when you change it.',
        },
      });
    }
  }

  // 6. Ready to enforce: testing, and no errors for the whole window.
  const errors = report.findings.some((f) => f.severity === 'error');
  const cleanSince = snap.mode === 'testing' && !errors ? (prev.cleanSince ?? nowIso) : null;
  let readyAnnounced = prev.readyAnnounced;
  const failure = inputs.lastReportedFailureAt ?? null;
  const readySince = cleanSince && failure && failure > cleanSince ? failure : cleanSince;
  if (
    readySince &&
    now.getTime() - Date.parse(readySince) >= settings.readyAfterMs &&
    readyAnnounced !== readySince
  ) {
    readyAnnounced = readySince;
    events.push({
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
  }

  return {
    state: { snapshot: snap, conditions: [...next.values()], cleanSince, readyAnnounced },
    events,
    extraFindings,
  };
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
