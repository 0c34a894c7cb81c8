import {
  checkServerIdentity,
  type DetailedPeerCertificate,
  type PeerCertificate,
  type TLSSocket,
} from 'node:tls';

/** What a certificate says and how it fares for one host name: the evidence behind the *_CERT_* findings. */
export interface CertificateEvidence {
  subject: string;
  /** DNS names from subjectAltName (or the subject CN when there are none). */
  names: string[];
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 fingerprint, colon-separated hex: identifies the certificate across checks. */
  fingerprint: string;
  serialNumber: string;
  /** Whole days from the check's clock to notAfter, truncated toward zero (negative once expired). */
  daysLeft: number;
  expired: boolean;
  /** Valid for the host name the check connected for. */
  nameMatches: boolean;
  nameError: string | null;
  /** Chains to a trusted root and is currently valid by the verifier's clock, apart from expiry. */
  trusted: boolean;
  /** OpenSSL's verification result code (e.g. DEPTH_ZERO_SELF_SIGNED_CERT), or null. */
  trustError: string | null;
  /** Subjects of the chain the server sent, leaf first. */
  chain: string[];
}

const DAY = 86_400_000;

/** "expires 2027-01-10 (in 42 days)", "expires 2026-11-29 (today)" or "expired 2026-11-26 (3 days ago)". */
export function expiryPhrase(c: { notAfter: string; daysLeft: number; expired: boolean }): string {
  const date = c.notAfter.slice(0, 10);
  if (c.expired) {
    const ago = Math.abs(c.daysLeft);
    return `expired ${date} (${ago === 0 ? 'today' : `${ago} day${ago === 1 ? '' : 's'} ago`})`;
  }
  if (c.daysLeft === 0) return `expires ${date} (today)`;
  return `expires ${date} (in ${c.daysLeft} day${c.daysLeft === 1 ? '' : 's'})`;
}

/** Judges the peer certificate of a finished TLS handshake (made with rejectUnauthorized: false) for `hostname`. */
export function certificateEvidence(
  socket: TLSSocket,
  hostname: string,
  now: Date,
): CertificateEvidence | null {
  const cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  if (!cert || Object.keys(cert).length === 0) return null;
  const notAfter = new Date(cert.valid_to);
  const notBefore = new Date(cert.valid_from);
  const identity = checkServerIdentity(hostname, cert);
  const authError = socket.authorized ? null : String(socket.authorizationError ?? 'UNKNOWN');
  // Expiry is judged by the check's clock; OpenSSL reports it too, but it is not a trust failure of its own.
  const expired = notAfter.getTime() <= now.getTime();
  // Node reports a name mismatch through the same field when the chain itself is fine: it is judged separately.
  const trustError =
    authError === 'CERT_HAS_EXPIRED' || authError === 'ERR_TLS_CERT_ALTNAME_INVALID' ? null : authError;
  return {
    subject: distinguishedName(cert.subject),
    names: dnsNames(cert),
    issuer: distinguishedName(cert.issuer),
    notBefore: validDate(notBefore),
    notAfter: validDate(notAfter),
    fingerprint: cert.fingerprint256 ?? '',
    serialNumber: cert.serialNumber ?? '',
    daysLeft: Math.trunc((notAfter.getTime() - now.getTime()) / DAY),
    expired,
    nameMatches: identity === undefined,
    nameError: identity ? identity.message : null,
    trusted: trustError === null,
    trustError,
    chain: chainSubjects(cert),
  };
}

/** Plain words for OpenSSL's verification codes. */
export function describeTrustError(code: string): string {
  switch (code) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'the certificate is self-signed';
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return 'the chain ends in a self-signed certificate that is not a trusted root';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return 'the chain is incomplete or its issuer is unknown (is the intermediate certificate missing?)';
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_GET_ISSUER_CERT':
      return 'the issuer is not a trusted CA, or the intermediate certificate is missing';
    case 'CERT_NOT_YET_VALID':
      return 'the certificate is not valid yet (its notBefore is in the future)';
    case 'CERT_REVOKED':
      return 'the certificate is revoked';
    case 'CERT_SIGNATURE_FAILURE':
      return 'the certificate signature does not verify';
    default:
      return `the certificate does not verify (${code})`;
  }
}

function validDate(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'unknown' : d.toISOString();
}

function distinguishedName(dn: PeerCertificate['subject'] | undefined): string {
  if (!dn) return '';
  const parts: string[] = [];
  for (const key of ['CN', 'O', 'C'] as const) {
    const v = (dn as unknown as Record<string, string | string[] | undefined>)[key];
    if (v !== undefined) parts.push(`${key}=${Array.isArray(v) ? v.join('+') : v}`);
  }
  return parts.join(', ');
}

function dnsNames(cert: PeerCertificate): string[] {
  const san = cert.subjectaltname ?? '';
  const names = san
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  if (names.length > 0) return names;
  const cn = (cert.subject as unknown as Record<string, string | undefined> | undefined)?.CN;
  return cn ? [cn] : [];
}

function chainSubjects(cert: DetailedPeerCertificate): string[] {
  const subjects: string[] = [];
  let current: DetailedPeerCertificate | undefined = cert;
  const seen = new Set<string>();
  while (current && !seen.has(current.fingerprint256) && subjects.length < 10) {
    seen.add(current.fingerprint256);
    subjects.push(distinguishedName(current.subject));
    current = current.issuerCertificate;
  }
  return subjects;
}
