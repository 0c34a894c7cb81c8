/** What the stored TLS-RPT reports say about one domain over a period. */

export interface OrgSummary {
  organization: string;
  successful: number;
  failed: number;
  reports: number;
}

export interface FailureGroup {
  resultType: string;
  receivingMx: string | null;
  count: number;
  reasonCodes: string[];
}

export interface DomainReportSummary {
  domain: string;
  since: string;
  reports: number;
  successful: number;
  failed: number;
  organizations: OrgSummary[];
  failures: FailureGroup[];
}
