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
