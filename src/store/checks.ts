import type { Report } from '../core/check.js';
import { type Db, sql } from './db.js';

/** The last check result of each domain. */
export class CheckStore {
  constructor(private readonly db: Db) {}

  async save(report: Report): Promise<void> {
    await this.db.run(
      sql`INSERT INTO domain_checks (domain, checked_at, status, report_json)
          VALUES (${report.domain}, ${report.checkedAt}, ${report.status}, ${JSON.stringify(report)})
          ON CONFLICT (domain) DO UPDATE SET checked_at = excluded.checked_at, status = excluded.status,
            report_json = excluded.report_json`,
    );
  }

  async last(domain: string): Promise<Report | null> {
    const row = await this.db.get<{ report_json: string }>(
      sql`SELECT report_json FROM domain_checks WHERE domain = ${domain}`,
    );
    if (!row) return null;
    try {
      return JSON.parse(row.report_json) as Report;
    } catch {
      return null;
    }
  }
}
