/**
 * The finding catalog: every code the check can report, with its severity, a short title, why it matters and what
 * to do. The codes and severities are the contract in shared/docs/check-contract.md: add codes, never rename one.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** What the finding is about: the domain, a record name, a host or a host and address. */
  subject: string;
  /** What is wrong, with the values seen. */
  message: string;
  /** What to do about it. */
  fix: string;
}

/**
 * What the monitor does when a finding starts, declared with the code so that a new code cannot be added without
 * deciding it:
 * - `now`: an alert at the first pass that sees it;
 * - `after-passes`: its cause is often a passing network fault, so it alerts only once seen in a row for the
 *   monitor's debounce passes (2 by default);
 * - `certificate`: followed by certificate (host and fingerprint) and expiry thresholds (30, 14, 7, 3 and 1 days, then
 *   expired) rather than by the finding;
 * - `never`: shown in reports, never alerted on its own.
 * Errors always alert (`never` is for warnings and notes); reminders repeat for errors only.
 */
export type AlertBehaviour = 'now' | 'after-passes' | 'certificate' | 'never';

type CatalogEntry = {
  title: string;
  /** Why it matters to delivery; shown after the message. */
  impact: string;
  /** What to do; `{domain}` and `{subject}` are filled in. */
  fix: string;
  /**
   * `policy`: while this is seen, a sender without a cached policy gets none (it never fetches it, or discards what it
   * fetched): the check's "impact now" then speaks of cached copies. `mx`: a sender that enforces MTA-STS does not
   * deliver to the MX host this is about.
   */
  stops?: 'policy' | 'mx';
} & (
  | { severity: 'error'; alert: Exclude<AlertBehaviour, 'never'> }
  | { severity: 'warning' | 'info'; alert: AlertBehaviour }
);

export const CATALOG = {
  STS_RECORD_MISSING: {
    severity: 'error',
    stops: 'policy',
    alert: 'now',
    title: 'No MTA-STS record',
    impact:
      'Senders look for this record first; without it they never fetch the policy and deliver without verified TLS.',
    fix: 'Publish a TXT record at _mta-sts.{domain} such as "v=STSv1; id=20261129T120000" (`mtasts records {domain}` writes it).',
  },
  STS_RECORD_MULTIPLE: {
    severity: 'error',
    stops: 'policy',
    alert: 'now',
    title: 'More than one MTA-STS record',
    impact: 'RFC 8461 §3.1: with more than one v=STSv1 record, senders treat the domain as having no policy.',
    fix: 'Keep exactly one TXT record starting with v=STSv1 at _mta-sts.{domain} and delete the others.',
  },
  STS_RECORD_INVALID: {
    severity: 'error',
    stops: 'policy',
    alert: 'now',
    title: 'MTA-STS record is malformed',
    impact: 'Senders discard a record that breaks the RFC 8461 §3.1 syntax, so the policy is never used.',
    fix: 'Publish the record as "v=STSv1; id=<1-32 letters and digits>" with v=STSv1 first and fields separated by ";".',
  },
  DNS_LOOKUP_FAILED: {
    severity: 'error',
    alert: 'after-passes',
    title: 'DNS lookup failed',
    impact: 'Senders whose lookups fail the same way cannot find the policy or the mail servers.',
    fix: 'Ask each authoritative name server of {domain} for {subject} directly (dig @<server> {subject}): each must answer, and DNSSEC, if used, must validate. If they all answer, the resolver this check uses failed instead (MTASTS_DNS_SERVERS).',
  },
  DNS_RESOLVER_FAILED: {
    severity: 'error',
    alert: 'after-passes',
    title: 'The DNS resolver of this check failed',
    impact:
      "This is the checker's resolver failing, not {domain}'s name servers: nothing was learned about these names, and senders using other resolvers may find them.",
    fix: 'Check the resolver this check asks (MTASTS_DNS_SERVERS, else the system resolvers in /etc/resolv.conf): it must be running and answer recursive queries from this host.',
  },
  DOMAIN_NOT_FOUND: {
    severity: 'error',
    alert: 'now',
    title: 'Domain does not exist',
    impact:
      'The DNS says there is no such name: mail to it cannot be delivered at all, and there are no records to check.',
    fix: 'Check the spelling of {domain}. If it is yours, check that its registration has not expired and that the registrar delegates it to name servers that serve its zone.',
  },
  ADDRESS_NOT_ALLOWED: {
    severity: 'error',
    alert: 'now',
    title: 'Host resolves to a non-public address',
    impact:
      'Senders on the Internet cannot reach a loopback, private or link-local address; this check does not connect to it.',
    fix: 'Publish public addresses for {subject}. For a lab or internal check, set MTASTS_ALLOW_PRIVATE_NETWORKS=1.',
  },
  POLICY_HOST_UNRESOLVABLE: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy host does not resolve',
    impact: 'Senders cannot fetch the policy, so MTA-STS is not applied.',
    fix: 'Publish an A and/or AAAA record (or a CNAME to your web host) for mta-sts.{domain}.',
  },
  POLICY_FETCH_FAILED: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy could not be fetched',
    impact: 'Senders with no cached policy deliver without MTA-STS; cached policies expire after max_age.',
    fix: 'Make https://mta-sts.{domain}/.well-known/mta-sts.txt reachable over HTTPS on port 443.',
  },
  POLICY_CERT_EXPIRED: {
    severity: 'error',
    stops: 'policy',
    alert: 'certificate',
    title: 'Policy host certificate expired',
    impact:
      'Senders must validate this certificate (RFC 8461 §3.3); with it expired they cannot fetch the policy.',
    fix: 'Renew the certificate of mta-sts.{domain} and make the renewal automatic (ACME).',
  },
  POLICY_CERT_NAME_MISMATCH: {
    severity: 'error',
    stops: 'policy',
    alert: 'now',
    title: 'Policy host certificate does not name mta-sts',
    impact:
      'Senders reject a certificate that is not valid for mta-sts.{domain}, so they cannot fetch the policy.',
    fix: 'Issue a certificate whose subjectAltName includes mta-sts.{domain} and serve it for that name (SNI).',
  },
  POLICY_CERT_UNTRUSTED: {
    severity: 'error',
    stops: 'policy',
    alert: 'now',
    title: 'Policy host certificate is not trusted',
    impact:
      'Senders validate the chain to a public root; a self-signed, incomplete or not-yet-valid chain stops the fetch.',
    fix: 'Serve a certificate from a public CA with the full chain (leaf plus intermediates), e.g. fullchain.pem.',
  },
  POLICY_CERT_EXPIRING: {
    severity: 'warning',
    alert: 'certificate',
    title: 'Policy host certificate expires soon',
    impact: 'When it expires, senders can no longer refresh the policy.',
    fix: 'Renew the certificate of mta-sts.{domain} now and check that automatic renewal works.',
  },
  POLICY_HTTP_STATUS: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy URL does not answer 200',
    impact: 'Senders accept only a 200 answer; anything else means no policy.',
    fix: 'Serve the policy at exactly /.well-known/mta-sts.txt on mta-sts.{domain} with status 200.',
  },
  POLICY_REDIRECT: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy URL redirects',
    impact: 'RFC 8461 §3.3: senders must not follow redirects, so a redirected policy is never read.',
    fix: 'Serve the file directly at https://mta-sts.{domain}/.well-known/mta-sts.txt with no redirect (check HTTP-to-HTTPS and www rules).',
  },
  POLICY_CONTENT_TYPE: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy is not served as text/plain',
    impact: 'RFC 8461 §3.2 requires text/plain; strict senders discard the policy otherwise.',
    fix: 'Serve mta-sts.txt with "Content-Type: text/plain" (e.g. nginx: default_type text/plain; in that location).',
  },
  POLICY_TOO_LARGE: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy is larger than 64 KiB',
    impact: 'Senders stop reading at 64 KiB and discard the policy.',
    fix: 'Serve only the policy file: a few lines of version, mode, mx and max_age.',
  },
  POLICY_SYNTAX: {
    severity: 'error',
    stops: 'policy',
    alert: 'after-passes',
    title: 'Policy is malformed',
    impact: 'Senders discard a policy that breaks the RFC 8461 §3.2 syntax, so MTA-STS is not applied.',
    fix: 'Write one "key: value" per line: version: STSv1, mode, max_age and one mx line per MX host (`mtasts records {domain}`).',
  },
  POLICY_DUPLICATE_FIELD: {
    severity: 'warning',
    alert: 'never',
    title: 'Policy repeats a field',
    impact: 'Senders use the first occurrence; the later one is ignored, which is rarely what was meant.',
    fix: 'Keep one line for each of version, mode and max_age.',
  },
  POLICY_UNKNOWN_FIELD: {
    severity: 'warning',
    alert: 'never',
    title: 'Policy has a field RFC 8461 does not define',
    impact: 'Senders ignore unknown fields; if it is a typo, the field you meant is missing.',
    fix: 'Correct or remove the field.',
  },
  POLICY_MODE_TESTING: {
    severity: 'warning',
    alert: 'never',
    title: 'Policy is in testing mode',
    impact:
      'Senders report TLS failures (with TLS-RPT) but still deliver without verified TLS: no protection yet.',
    fix: 'Once reports and checks are clean for a couple of weeks, switch to mode: enforce and publish a new id.',
  },
  POLICY_MODE_NONE: {
    severity: 'warning',
    alert: 'now',
    title: 'Policy mode is none',
    impact: 'MTA-STS is switched off for {domain}.',
    fix: 'If this is not a deliberate withdrawal, publish mode: testing or enforce with a new id.',
  },
  POLICY_MAX_AGE_SHORT: {
    severity: 'warning',
    alert: 'never',
    title: 'Policy max_age is short for enforce',
    impact:
      'A short max_age lets an attacker who blocks the policy fetch wait out the cache; RFC 8461 suggests weeks.',
    fix: 'Use max_age: 604800 (one week) or more, e.g. 1209600 or 31557600, and publish a new id.',
  },
  POLICY_MX_UNUSED: {
    severity: 'warning',
    alert: 'never',
    title: 'Policy mx pattern matches no MX host',
    impact:
      'A stale pattern is harmless for delivery but usually means the policy was not updated after an MX change.',
    fix: 'Remove the pattern from the policy (and publish a new id), unless an MX host for it is about to be added.',
  },
  MX_MISSING: {
    severity: 'error',
    alert: 'now',
    title: 'No MX hosts',
    impact:
      'The domain publishes no MX records (or a null MX): it does not receive mail, so MTA-STS has nothing to protect.',
    fix: 'Publish MX records for {domain}, or remove the MTA-STS records if the domain takes no mail.',
  },
  MX_NOT_IN_POLICY: {
    severity: 'error',
    stops: 'mx',
    alert: 'now',
    title: 'MX host not covered by the policy',
    impact:
      'In enforce mode senders refuse to deliver to an MX host the policy does not list; in testing they report it.',
    fix: 'Add "mx: {subject}" (or a *. pattern covering it) to the policy and publish a new id.',
  },
  MX_UNREACHABLE: {
    severity: 'error',
    alert: 'after-passes',
    title: 'MX host unreachable on port 25',
    impact: 'Senders cannot connect to this MX host; mail queues for it or goes to other MX hosts.',
    fix: 'Check that the mail server at {subject} runs and that port 25 is open to the Internet.',
  },
  MX_SMTP_ERROR: {
    severity: 'error',
    alert: 'after-passes',
    title: 'MX host refuses the SMTP session',
    impact:
      'The server accepted the connection but refused or broke the greeting or EHLO, so senders cannot deliver to it.',
    fix: 'Check the mail server on {subject}: its greeting must be 220 and EHLO must be answered with 250.',
  },
  MX_STARTTLS_MISSING: {
    severity: 'error',
    stops: 'mx',
    alert: 'now',
    title: 'MX host does not offer STARTTLS',
    impact: 'Under MTA-STS senders need TLS; in enforce mode they will not deliver to this host.',
    fix: 'Enable STARTTLS on {subject} with a valid certificate (Postfix: smtpd_tls_security_level = may).',
  },
  MX_TLS_FAILED: {
    severity: 'error',
    stops: 'mx',
    alert: 'after-passes',
    title: 'TLS with the MX host fails',
    impact: 'Senders need TLS 1.2 or later with a valid certificate; in enforce mode they will not deliver.',
    fix: 'Allow TLS 1.2 and 1.3 on {subject} with modern ciphers and check the server key and certificate files.',
  },
  MX_CERT_EXPIRED: {
    severity: 'error',
    stops: 'mx',
    alert: 'certificate',
    title: 'MX certificate expired',
    impact: 'In enforce mode senders refuse to deliver to this host; in testing they report the failure.',
    fix: 'Renew the certificate of {subject}, reload the mail server, and make the renewal automatic.',
  },
  MX_CERT_NAME_MISMATCH: {
    severity: 'error',
    stops: 'mx',
    alert: 'now',
    title: 'MX certificate does not name the host',
    impact:
      'Under MTA-STS senders check that the certificate is valid for the MX host name; in enforce mode they refuse it.',
    fix: 'Issue a certificate whose subjectAltName includes {subject} and install it in the mail server.',
  },
  MX_CERT_UNTRUSTED: {
    severity: 'error',
    stops: 'mx',
    alert: 'now',
    title: 'MX certificate is not trusted',
    impact:
      'Under MTA-STS senders validate the chain to a public root; in enforce mode they refuse this host.',
    fix: 'Install a certificate from a public CA on {subject} with its full chain (leaf plus intermediates).',
  },
  MX_CERT_EXPIRING: {
    severity: 'warning',
    alert: 'certificate',
    title: 'MX certificate expires soon',
    impact: 'When it expires, senders that enforce MTA-STS stop delivering to this host.',
    fix: 'Renew the certificate of {subject} now and check that automatic renewal and the mail server reload work.',
  },
  SMTP_PORT_BLOCKED: {
    severity: 'warning',
    alert: 'after-passes',
    title: 'Port 25 may be blocked from here',
    impact:
      'Every MX address timed out on port 25. Either all mail servers are down, or the network this check runs from blocks outbound port 25 (many clouds do), and the MX checks say nothing.',
    fix: 'Run the check from a network that allows outbound port 25, or set MTASTS_SMTP_PROBE=off to skip the MX probes.',
  },
  MX_PROBE_SKIPPED: {
    severity: 'info',
    alert: 'never',
    title: 'MX probes skipped',
    impact: 'MTASTS_SMTP_PROBE=off: STARTTLS, TLS and certificates of the MX hosts were not checked.',
    fix: 'Run the check from a network that allows outbound port 25 to check the MX hosts too.',
  },
  MX_PROBE_LIMITED: {
    severity: 'info',
    alert: 'never',
    title: 'Not every MX host or address was probed',
    impact:
      'A check opens a bounded number of SMTP connections per domain; the MX hosts and addresses beyond the limit were not checked, so their faults are not reported.',
    fix: 'Publish only the MX hosts and addresses in use for {domain}; an installation that must check more raises MTASTS_MAX_MX_HOSTS or MTASTS_MAX_ADDRESSES_PER_MX.',
  },
  TLSRPT_MISSING: {
    severity: 'warning',
    alert: 'now',
    title: 'No TLS-RPT record',
    impact:
      'Senders have nowhere to report TLS failures, so a broken MX or policy goes unnoticed until mail bounces.',
    fix: 'Publish a TXT record at _smtp._tls.{domain}: "v=TLSRPTv1; rua=mailto:tls-reports@{domain}".',
  },
  TLSRPT_MULTIPLE: {
    severity: 'error',
    alert: 'now',
    title: 'More than one TLS-RPT record',
    impact: 'RFC 8460 §3: with more than one v=TLSRPTv1 record senders send no reports.',
    fix: 'Keep exactly one TXT record starting with v=TLSRPTv1 at _smtp._tls.{domain}.',
  },
  TLSRPT_INVALID: {
    severity: 'error',
    alert: 'now',
    title: 'TLS-RPT record is malformed',
    impact: 'Senders ignore a record that breaks RFC 8460 §3 and send no reports.',
    fix: 'Publish "v=TLSRPTv1; rua=mailto:tls-reports@{domain}" (several URIs are separated by ",").',
  },
  STS_ID_NOT_UPDATED: {
    severity: 'warning',
    alert: 'now',
    title: 'Policy changed but the id did not',
    impact:
      'Senders that cached the old policy keep using it until max_age runs out, because they only refetch when the id changes.',
    fix: 'Publish a new id in the _mta-sts.{domain} TXT record (e.g. the current UTC timestamp).',
  },
} as const satisfies Record<string, CatalogEntry>;

export type FindingCode = keyof typeof CATALOG;

export const FINDING_CODES = Object.keys(CATALOG) as FindingCode[];

/**
 * Builds a finding from the catalog: the message is what was seen, followed by why it matters. `fix` replaces the
 * catalog's fix where the check knows the exact change to make (the line of the policy to write).
 */
export function finding(
  code: FindingCode,
  domain: string,
  subject: string,
  seen: string,
  severity: Severity = CATALOG[code].severity,
  fix?: string,
): Finding {
  const entry: CatalogEntry = CATALOG[code];
  const fill = (s: string) => s.replaceAll('{domain}', domain).replaceAll('{subject}', subject);
  return {
    code,
    severity,
    subject,
    message: `${seen} ${fill(entry.impact)}`,
    fix: fix ?? fill(entry.fix),
  };
}

/** What a finding stops, as the catalog declares: the policy for new senders, an MX host for enforcing ones. */
export function stopsOf(code: FindingCode): CatalogEntry['stops'] {
  const entry: CatalogEntry = CATALOG[code];
  return entry.stops;
}

export const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function statusOf(findings: readonly Finding[]): 'pass' | 'warn' | 'fail' {
  if (findings.some((f) => f.severity === 'error')) return 'fail';
  if (findings.some((f) => f.severity === 'warning')) return 'warn';
  return 'pass';
}
