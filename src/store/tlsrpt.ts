import type { TlsRptReport } from '../core/tlsrpt-report.js';
import { type Db, sql } from './db.js';
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
 * Stored TLS-RPT reports, their policies and failure details, queried per domain and per day. Sums are floats (SQLite's
 * TOTAL, PostgreSQL's SUM as float8) that cannot overflow, so no stored count can make a query, and with it every
 * later report for the domain, fail.
 */
export class TlsRptStore {
  constructor(private readonly db: Db) {}

  /** The SQLite database file, or null for an in-memory database or PostgreSQL (no local disk to watch). */
  location(): string | null {
    const name = this.db.sqlite?.name ?? '';
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
    alertsFor: () => Promise<DayAlerts[]> = async () => [],
  ): Promise<'stored' | 'duplicate'> {
    return this.db.transaction(async (): Promise<'stored' | 'duplicate'> => {
      const row = await this.db.get<{ id: number }>(
        sql`INSERT INTO tlsrpt_reports (organization, report_id, contact_info, start_at, end_at, received_at, source)
            VALUES (${report.organization}, ${report.reportId}, ${report.contactInfo}, ${report.start}, ${report.end},
              ${now.toISOString()}, ${source})
            ON CONFLICT (organization, report_id) DO NOTHING RETURNING id`,
      );
      if (!row) return 'duplicate';
      for (const p of report.policies) await this.savePolicy(row.id, p, report.day);
      for (const { domain, day, alerts } of await alertsFor()) {
        if (alerts.length > 0 && (await this.claimDay(domain, day, now)))
          await enqueue(this.db, domain, alerts, now);
      }
      return 'stored';
    });
  }

  private async savePolicy(
    reportId: number,
    p: TlsRptReport['policies'][number],
    day: string,
  ): Promise<void> {
    const row = await this.db.get<{ id: number }>(
      sql`INSERT INTO tlsrpt_policies (report_id, policy_type, policy_domain, policy_string, mx_hosts, successful, failed, day)
          VALUES (${reportId}, ${p.policyType}, ${p.policyDomain}, ${JSON.stringify(p.policyString)},
            ${JSON.stringify(p.mxHosts)}, ${p.successful}, ${p.failed}, ${day}) RETURNING id`,
    );
    const policyId = Number(row?.id);
    for (const f of p.failures) {
      await this.db.run(
        sql`INSERT INTO tlsrpt_failures (policy_id, result_type, sending_ip, receiving_mx, receiving_helo, receiving_ip, count, reason_code, additional_info)
            VALUES (${policyId}, ${f.resultType}, ${f.sendingIp}, ${f.receivingMx}, ${f.receivingHelo}, ${f.receivingIp},
              ${f.count}, ${f.reasonCode}, ${f.additionalInfo})`,
      );
    }
  }

  /** True the first time a domain's alert about `day` is asked for, false ever after (until the day is pruned). */
  private async claimDay(domain: string, day: string, now: Date): Promise<boolean> {
    const n = await this.db.run(
      sql`INSERT INTO tlsrpt_alert_days (domain, day, alerted_at) VALUES (${domain}, ${day}, ${now.toISOString()})
          ON CONFLICT (domain, day) DO NOTHING`,
    );
    return n === 1;
  }

  /** Sessions and failures for a domain from reports whose sessions belong to `since` (a date or date-time) or later. */
  summary(domain: string, since: string, receivedAfter?: string): Promise<DomainReportSummary> {
    return this.aggregate(domain, since.slice(0, 10), null, receivedAfter);
  }

  /** Sessions and failures for a domain on one UTC day (YYYY-MM-DD). */
  async daySummary(domain: string, day: string): Promise<DomainReportSummary> {
    return { ...(await this.aggregate(domain, day, day)), until: day };
  }

  /** A float sum that cannot overflow (0 over no rows). */
  private total(column: string) {
    return this.db.pick(`TOTAL(${column})`, `COALESCE(SUM(${column})::float8, 0)`);
  }

  private async aggregate(
    domain: string,
    from: string,
    to: string | null,
    receivedAfter?: string,
  ): Promise<DomainReportSummary> {
    const where = sql`p.policy_domain = ${domain} AND p.day >= ${from}
      ${to ? sql`AND p.day <= ${to}` : sql``} ${receivedAfter ? sql`AND r.received_at > ${receivedAfter}` : sql``}`;
    const orgs = (
      await this.db.all<OrgSummary>(
        sql`SELECT r.organization AS organization, ${this.total('p.successful')} AS successful,
              ${this.total('p.failed')} AS failed, COUNT(DISTINCT r.id) AS reports
            FROM tlsrpt_policies p JOIN tlsrpt_reports r ON r.id = p.report_id
            WHERE ${where} GROUP BY r.organization ORDER BY failed DESC, organization`,
      )
    ).map((o) => ({ ...o, successful: capped(o.successful), failed: capped(o.failed) }));
    return {
      domain,
      since: from,
      reports: orgs.reduce((a, o) => a + o.reports, 0),
      successful: capped(orgs.reduce((a, o) => a + o.successful, 0)),
      failed: capped(orgs.reduce((a, o) => a + o.failed, 0)),
      organizations: orgs,
      failures: await this.failureGroups(where),
    };
  }

  private async failureGroups(where: ReturnType<typeof sql>): Promise<FailureGroup[]> {
    const reasons = this.db.pick(
      'json_group_array(DISTINCT f.reason_code)',
      'json_agg(DISTINCT f.reason_code)::text',
    );
    const rows = await this.db.all<{
      resultType: string;
      receivingMx: string | null;
      receivingIp: string | null;
      count: number;
      reasons: string;
    }>(
      sql`SELECT f.result_type AS "resultType", f.receiving_mx AS "receivingMx",
                 CASE WHEN f.receiving_mx IS NULL THEN f.receiving_ip END AS "receivingIp",
                 ${this.total('f.count')} AS count, ${reasons} AS reasons
          FROM tlsrpt_failures f JOIN tlsrpt_policies p ON p.id = f.policy_id JOIN tlsrpt_reports r ON r.id = p.report_id
          WHERE ${where}
          GROUP BY f.result_type, f.receiving_mx, 3 ORDER BY count DESC, "resultType", "receivingMx"`,
    );
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
  async lastFailureAt(domain: string): Promise<string | null> {
    const row = await this.db.get<{ at: string | null }>(
      sql`SELECT MAX(r.end_at) AS at FROM tlsrpt_policies p JOIN tlsrpt_reports r ON r.id = p.report_id
          WHERE p.policy_domain = ${domain} AND p.failed > 0`,
    );
    return row?.at ?? null;
  }

  async lastDigest(domain: string): Promise<string | null> {
    const row = await this.db.get<{ last_at: string }>(
      sql`SELECT last_at FROM tlsrpt_digests WHERE domain = ${domain}`,
    );
    return row?.last_at ?? null;
  }

  /** Records a digest and queues its alerts in one transaction. */
  commitDigest(domain: string, at: Date, alerts: NewAlert[]): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run(
        sql`INSERT INTO tlsrpt_digests (domain, last_at) VALUES (${domain}, ${at.toISOString()})
            ON CONFLICT (domain) DO UPDATE SET last_at = excluded.last_at`,
      );
      await enqueue(this.db, domain, alerts, at);
    });
  }

  /**
   * Forgets reports whose period ended before `cutoff` (their policies and failure details go with them), and the
   * alerted days before it. Reports cannot end later than tomorrow, so nothing escapes this.
   */
  prune(cutoff: Date): Promise<number> {
    return this.db.transaction(async () => {
      await this.db.run(sql`DELETE FROM tlsrpt_alert_days WHERE day < ${cutoff.toISOString().slice(0, 10)}`);
      return this.db.run(sql`DELETE FROM tlsrpt_reports WHERE end_at < ${cutoff.toISOString()}`);
    });
  }

  async counts(): Promise<{ reports: number; policies: number; failures: number }> {
    const one = async (table: string) =>
      (await this.db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM ${sql.table(table)}`))?.n ?? 0;
    return {
      reports: await one('tlsrpt_reports'),
      policies: await one('tlsrpt_policies'),
      failures: await one('tlsrpt_failures'),
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
