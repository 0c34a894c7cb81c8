import { type HttpsGetEvidence, type HttpsGetOptions, httpsGet } from './https-get.js';

export const POLICY_MAX_BYTES = 64 * 1024;
export const POLICY_PATH = '/.well-known/mta-sts.txt';

export type PolicyFetchOptions = Omit<HttpsGetOptions, 'path' | 'maxBytes' | 'accept'>;
export type PolicyFetchEvidence = HttpsGetEvidence;

/**
 * Fetches the policy exactly as a strict sender does (RFC 8461 §3.3): HTTPS with SNI for `mta-sts.<domain>`, a GET of
 * /.well-known/mta-sts.txt, no redirects followed, the body capped at 64 KiB by Content-Length and by the stream.
 */
export function fetchPolicy(options: PolicyFetchOptions): Promise<PolicyFetchEvidence> {
  return httpsGet({ ...options, path: POLICY_PATH, maxBytes: POLICY_MAX_BYTES, accept: 'text/plain' });
}
