import type { TlsRptReport } from '../core/tlsrpt-report.js';
import type { Db } from './db.js';
import { enqueue, type NewAlert } from './outbox.js';

/** Alerts a stored report causes for one domain, about the day its sessions belong to. */
export interface DayAlerts {
  domain: string;
  day: string;
  alerts: NewAlert[];
}

/** Sums stay exact up to here; past it (only rows stored before counts were bounded can get there) they are capped. */
const MAX_SUM = Number.MAX_SAFE_INTEGER;

/**
 * Stored TLS-RPT reports, their policies and failure details, queried per domain and per day. Sums use SQLite's
 * TOTAL (a float that cannot overflow, unlike SUM), so no stored count can make a query, and with it every later
 * report for the domain, fail.
 */
export class TlsRptStore {
  constructor(private readonly db: Db) {}

  /** The database file, or null for an in-memory database. */
  location(): string | null {
    const name = this.db.name;
    return name === '' || name === ':memory:' ? null : name;
  }

  /**
   * Stores a report whole or not at all, and (in the same transaction) the alerts it causes: each domain's alerts
   * about a day are queued the first time only, however many reports about that day follow. A report already stored
   * (same organization and report-id) is left as it is.
   */
  save(
    report: TlsRptReport,
    source: 'https' | 'email',
    now: Date,
    alertsFor: () => DayAlerts[] = () => [],
  ): 'stored' | 'duplicate' {
    return this.db.transaction((): 'stored' | 'duplicate' => {
      const info = this.db
        .prepare(
          `INSERT INTO tlsrpt_reports (organization, report_id, contact_info, start_at, end_at, received_at, source)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (organization, report_id) DO NOTHING`,
        )
        .run(
          report.organization,
          report.reportId,
          report.contactInfo,
          report.start,
          report.end,
          now.toISOString(),
          source,
        );
      if (info.changes === 0) return 'duplicate';
      const id = Number(info.lastInsertRowid);
      const insertPolicy = this.db.prepare(
        `INSERT INTO tlsrpt_policies (report_id, policy_type, policy_domain, policy_string, mx_hosts, successful, failed, day)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const insertFailure = this.db.prepare(
        `INSERT INTO tlsrpt_failures (policy_id, result_type, sending_ip, receiving_mx, receiving_helo, receiving_ip, count, reason_code, additional_info)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const p of report.policies) {
        const policyId = Number(
          insertPolicy.run(
            id,
            p.policyType,
            p.policyDomain,
            JSON.stringify(p.policyString),
            JSON.stringify(p.mxHosts),
            p.successful,
            p.failed,
            report.day,
          ).lastInsertRowid,
        );
        for (const f of p.failures) {
          insertFailure.run(
            policyId,
            f.resultType,
            f.sendingIp,
            f.receivingMx,
            f.receivingHelo,
            f.receivingIp,
            f.count,
            f.reasonCode,
            f.additionalInfo,
          );
        }
      }
      for (const { domain, day, alerts } of alertsFor()) {
        if (alerts.length > 0 && this.claimDay(domain, day, now)) enqueue(this.db, domain, alerts, now);
      }
      return 'stored';
    })();
  }

  /** True the first time a domain's alert about `day` is asked for, false ever after (until the day is pruned). */
  private claimDay(domain: string, day: string, now: Date): boolean {
    return (
      this.db
        .prepare(
          'INSERT INTO tlsrpt_alert_days (domain, day, alerted_at) VALUES (?, ?, ?) ON CONFLICT (domain, day) DO NOTHING',
        )
        .run(domain, day, now.toISOString()).changes === 1
    );
  }

  /** Sessions and failures for a domain from reports whose sessions belong to `since` (a date or date-time) or later. */
  summary(domain: string, since: string, receivedAfter?: string): DomainReportSummary {
    return this.aggregate(domain, since.slice(0, 10), null, receivedAfter);
  }

  /** Sessions and failures for a domain on one UTC day (YYYY-MM-DD). */
  daySummary(domain: string, day: string): DomainReportSummary {
    return { ...this.aggregate(domain, day, day), until: day };
  }

  private aggregate(
    domain: string,
    from: string,
    to: string | null,
    receivedAfter?: string,
  ): DomainReportSummary {
    const where = `p.policy_domain = ? AND p.day >= ?${to ? ' AND p.day <= ?' : ''}${receivedAfter ? ' AND r.received_at > ?' : ''}`;
    const args = [domain, from, ...(to ? [to] : []), ...(receivedAfter ? [receivedAfter] : [])];
    const orgs = (
      this.db
        .prepare(
          `SELECT r.organization AS organization, TOTAL(p.successful) AS successful, TOTAL(p.failed) AS failed, COUNT(DISTINCT r.id) AS reports
           FROM tlsrpt_policies p JOIN tlsrpt_reports r ON r.id = p.report_id
           WHERE ${where} GROUP BY r.organization ORDER BY failed DESC, organization`,
        )
        .all(...args) as OrgSummary[]
    ).map((o) => ({ ...o, successful: capped(o.successful), failed: capped(o.failed) }));
    return {
      domain,
      since: from,
      reports: orgs.reduce((a, o) => a + o.reports, 0),
      successful: capped(orgs.reduce((a, o) => a + o.successful, 0)),
      failed: capped(orgs.reduce((a, o) => a + o.failed, 0)),
      organizations: orgs,
      failures: this.failureGroups(where, args),
    };
  }

  private failureGroups(where: string, args: string[]): FailureGroup[] {
    const rows = this.db
      .prepare(
        `SELECT f.result_type AS resultType, f.receiving_mx AS receivingMx,
                CASE WHEN f.receiving_mx IS NULL THEN f.receiving_ip END AS receivingIp,
                TOTAL(f.count) AS count, json_group_array(DISTINCT f.reason_code) AS reasons
         FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy_id JOIN tlsrpt_reports r ON r.id = p.report_id
         WHERE ${where}
         GROUP BY f.result_type, f.receiving_mx, receivingIp ORDER BY count DESC, resultType, receivingMx`,
      )
      .all(...args) as {
      resultType: string;
      receivingMx: string | null;
      receivingIp: string | null;
      count: number;
      reasons: string;
    }[];
    return rows.map((f) => ({
      resultType: f.resultType,
      receivingMx: f.receivingMx,
      receivingIp: f.receivingIp,
      count: capped(f.count),
      reasonCodes: (JSON.parse(f.reasons) as (string | null)[])
        .filter((r): r is string => r !== null)
        .slice(0, 10),
    }));
  }

  /** The end of the latest reported period with failed sessions for a domain, or null. */
  lastFailureAt(domain: string): string | null {
    const row = this.db
      .prepare(
        `SELECT MAX(r.end_at) AS at FROM tlsrpt_policies p JOIN tlsrpt_reports r ON r.id = p.report_id
         WHERE p.policy_domain = ? AND p.failed > 0`,
      )
      .get(domain) as { at: string | null };
    return row.at;
  }

  lastDigest(domain: string): string | null {
    const row = this.db.prepare('SELECT last_at FROM tlsrpt_digests WHERE domain = ?').get(domain) as
      | { last_at: string }
      | undefined;
    return row?.last_at ?? null;
  }

  /** Records a digest and queues its alerts in one transaction. */
  commitDigest(domain: string, at: Date, alerts: NewAlert[]): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO tlsrpt_digests (domain, last_at) VALUES (?, ?) ON CONFLICT (domain) DO UPDATE SET last_at = excluded.last_at',
        )
        .run(domain, at.toISOString());
      enqueue(this.db, domain, alerts, at);
    })();
  }

  /**
   * Forgets reports whose period ended before `cutoff` (their policies and failure details go with them), and the
   * alerted days before it. Reports cannot end later than tomorrow, so nothing escapes this.
   */
  prune(cutoff: Date): number {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM tlsrpt_alert_days WHERE day < ?').run(cutoff.toISOString().slice(0, 10));
      return this.db.prepare('DELETE FROM tlsrpt_reports WHERE end_at < ?').run(cutoff.toISOString()).changes;
    })();
  }

  counts(): { reports: number; policies: number; failures: number } {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      reports: one('SELECT COUNT(*) AS n FROM tlsrpt_reports'),
      policies: one('SELECT COUNT(*) AS n FROM tlsrpt_policies'),
      failures: one('SELECT COUNT(*) AS n FROM tlsrpt_failures'),
    };
  }
}

function capped(n: number): number {
  return Math.min(MAX_SUM, Math.round(n));
}

/* What the stored TLS-RPT reports say about one domain over a period (the store's answers). */

export interface OrgSummary {
  organization: string;
  successful: number;
  failed: number;
  reports: number;
}

export interface FailureGroup {
  resultType: string;
  receivingMx: string | null;
  /** The receiving address, for failures whose reporter named no MX host. */
  receivingIp: string | null;
  count: number;
  reasonCodes: string[];
}

export interface DomainReportSummary {
  domain: string;
  /** First UTC day counted (YYYY-MM-DD). */
  since: string;
  /** Last UTC day counted, when the summary is of one day or a closed period. */
  until?: string;
  reports: number;
  successful: number;
  failed: number;
  organizations: OrgSummary[];
  failures: FailureGroup[];
}
