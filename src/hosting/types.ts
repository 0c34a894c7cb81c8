/**
 * The seam between the two halves of hosted MTA-STS:
 * - the serving half (src/hosting/server.ts, acme.ts, certificates): a TLS listener that picks a certificate by SNI and
 *   serves /.well-known/mta-sts.txt, and a certificate manager that orders and renews certificates over ACME;
 * - the control half (src/hosting/service.ts, the hosting store): enrollment, ownership, modes, versions and ids.
 * Everything here is asynchronous because the store will also run on PostgreSQL, where every read is a round trip.
 */

/** What the serving half asks of the hosting state. Implementations read the store on each call (no process state). */
export interface HostedPolicies {
  /**
   * The exact policy text to serve at `https://<name>/.well-known/mta-sts.txt`, or undefined when `name` (a policy host
   * name such as `mta-sts.example.com`, lower case, no trailing dot) is not enrolled, in which case the TLS handshake
   * for it is refused.
   */
  policyFor(name: string): Promise<string | undefined>;
  /** Every policy host name that should have a certificate now (enrolled and not yet fully retired). */
  namesNeedingCertificates(): Promise<string[]>;
}

/** What the certificate manager reports, so that the control half can tell the channels that own the name. */
export interface CertificateEvent {
  name: string;
  kind: 'issued' | 'renewed' | 'failed';
  /** ISO 8601 time of the event. */
  at: string;
  /** The certificate's notAfter (ISO 8601) for issued and renewed. */
  notAfter?: string;
  /** One line, no secrets, for failed: what the CA or the validation said. */
  error?: string;
  /** For failed: when the manager will try again (ISO 8601). */
  retryAt?: string;
}

export type CertificateEventSink = (event: CertificateEvent) => Promise<void> | void;
