import type { Report } from '../core/check.js';
import type { Db } from './db.js';

/** The last check result of each domain. */
export class CheckStore {
  constructor(private readonly db: Db) {}

  save(report: Report): void {
    this.db
      .prepare(
        `INSERT INTO domain_checks (domain, checked_at, status, report_json) VALUES (?, ?, ?, ?)
         ON CONFLICT (domain) DO UPDATE SET checked_at = excluded.checked_at, status = excluded.status,
           report_json = excluded.report_json`,
      )
      .run(report.domain, report.checkedAt, report.status, JSON.stringify(report));
  }

  last(domain: string): Report | null {
    const row = this.db.prepare('SELECT report_json FROM domain_checks WHERE domain = ?').get(domain) as
      | { report_json: string }
      | undefined;
    if (!row) return null;
    try {
      return JSON.parse(row.report_json) as Report;
    } catch {
      return null;
    }
  }
}
