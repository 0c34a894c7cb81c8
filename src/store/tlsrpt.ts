import type { TlsRptReport } from '../tlsrpt/report.js';
import type { DomainReportSummary, OrgSummary } from '../tlsrpt/summary.js';
import type { Db } from './db.js';
import type { NewAlert } from './monitor.js';
import { enqueue } from './outbox.js';

/** Stored TLS-RPT reports, their policies and failure details, queried per domain and per day. */
export class TlsRptStore {
  constructor(private readonly db: Db) {}

  /**
   * Stores a report whole or not at all, and (in the same transaction) the alerts it causes. A report already stored
   * (same organization and report-id) is left as it is.
   */
  save(
    report: TlsRptReport,
    source: 'https' | 'email',
    now: Date,
    alertsFor: () => { domain: string; alerts: NewAlert[] }[] = () => [],
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
            report.end.slice(0, 10),
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
      for (const { domain, alerts } of alertsFor()) enqueue(this.db, domain, alerts, now);
      return 'stored';
    })();
  }

  /** Sessions and failures for a domain from reports whose period ended at or after `since` (a date or date-time). */
  summary(domain: string, since: string, receivedAfter?: string): DomainReportSummary {
    const day = since.slice(0, 10);
    const filter = receivedAfter ? 'AND r.received_at > ?' : '';
    const args = receivedAfter ? [domain, day, receivedAfter] : [domain, day];
    const orgs = this.db
      .prepare(
        `SELECT r.organization AS organization, SUM(p.successful) AS successful, SUM(p.failed) AS failed, COUNT(DISTINCT r.id) AS reports
         FROM tlsrpt_policies p JOIN tlsrpt_reports r ON r.id = p.report_id
         WHERE p.policy_domain = ? AND p.day >= ? ${filter} GROUP BY r.organization ORDER BY failed DESC, organization`,
      )
      .all(...args) as OrgSummary[];
    const failures = (
      this.db
        .prepare(
          `SELECT f.result_type AS resultType, f.receiving_mx AS receivingMx, SUM(f.count) AS count,
                  group_concat(DISTINCT f.reason_code) AS reasons
           FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy_id JOIN tlsrpt_reports r ON r.id = p.report_id
           WHERE p.policy_domain = ? AND p.day >= ? ${filter}
           GROUP BY f.result_type, f.receiving_mx ORDER BY count DESC`,
        )
        .all(...args) as {
        resultType: string;
        receivingMx: string | null;
        count: number;
        reasons: string | null;
      }[]
    ).map((f) => ({
      resultType: f.resultType,
      receivingMx: f.receivingMx,
      count: f.count,
      reasonCodes: f.reasons ? f.reasons.split(',') : [],
    }));
    return {
      domain,
      since: day,
      reports: orgs.reduce((a, o) => a + o.reports, 0),
      successful: orgs.reduce((a, o) => a + o.successful, 0),
      failed: orgs.reduce((a, o) => a + o.failed, 0),
      organizations: orgs,
      failures,
    };
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

  /** Forgets reports whose period ended before `cutoff` (their policies and failure details go with them). */
  prune(cutoff: Date): number {
    return this.db.prepare('DELETE FROM tlsrpt_reports WHERE end_at < ?').run(cutoff.toISOString()).changes;
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
