import { type Problem, shown } from './problem.js';
import { formatFieldList, readFieldList, type TxtField } from './txt-fields.js';

/** A parsed `_smtp._tls` TXT record (RFC 8460 §3). */
export interface TlsRptRecord {
  /** Where reports go: `mailto:` and `https:` URIs, in order. */
  rua: string[];
  extensions: TxtField[];
}

export interface TlsRptRecordResult {
  record: TlsRptRecord | null;
  problems: Problem[];
}

export function isTlsRptRecord(txt: string): boolean {
  return txt.startsWith('v=TLSRPTv1');
}

/**
 * Parses one TXT record per RFC 8460 §3: `v=TLSRPTv1` first, fields separated by `;`, a `rua` field holding one or
 * more `mailto:` or `https:` URIs separated by `,`, extension fields ignored. Never throws.
 */
export function parseTlsRptRecord(txt: string): TlsRptRecordResult {
  const invalid = (message: string): TlsRptRecordResult => ({
    record: null,
    problems: [{ code: 'TLSRPT_INVALID', message }],
  });
  const m = /^v=TLSRPTv1[ \t]*;[ \t]*/.exec(txt);
  if (!m) {
    if (/^v=TLSRPTv1[ \t]*$/.test(txt))
      return invalid('the record has no rua field: senders have nowhere to report');
    return invalid(`the record must start with "v=TLSRPTv1;" (case-sensitive), seen "${shown(txt, 40)}"`);
  }
  let rua: string[] | null = null;
  const { extensions, problem } = readFieldList(txt.slice(m[0].length), (name, value) => {
    if (name !== 'rua') return undefined;
    if (rua !== null) return null; // the first rua counts
    const uris = value.split(',').map((u) => u.replace(/^[ \t]+|[ \t]+$/g, ''));
    for (const uri of uris) {
      const wrong = ruaProblem(uri);
      if (wrong) return `the rua URI "${shown(uri)}" ${wrong}`;
    }
    rua = uris;
    return null;
  });
  if (problem !== null) return invalid(problem);
  if (rua === null) return invalid('the record has no rua field: senders have nowhere to report');
  return { record: { rua, extensions }, problems: [] };
}

/** A reporting URI: `mailto:` with an address, or `https:` with a host (RFC 8460 §3). Returns what is wrong. */
export function ruaProblem(uri: string): string | null {
  if (uri.length === 0) return 'is empty';
  if (/[^\x21-\x7e]/.test(uri)) return 'holds a space or a character a URI cannot hold (percent-encode it)';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  if (scheme !== 'mailto' && scheme !== 'https') {
    return 'must be a mailto: or https: URI';
  }
  let url: URL;
  let address: string;
  try {
    url = new URL(uri);
    address = decodeURIComponent(url.pathname);
  } catch {
    return 'is not a well-formed URI';
  }
  if (scheme === 'mailto') {
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address))
      return 'does not hold an e-mail address (mailto:user@domain)';
  } else if (!/^https:\/\/[^/?#]/i.test(uri) || url.hostname === '') {
    // The WHATWG parser reads a host out of `https:///path` or `https:path`; a sender's HTTP client may not.
    return 'has no host';
  }
  return null;
}

/**
 * A reporting URI as it may stand in the record: `,` and `!` (RFC 8460 §3), `;` (the field separator), and every
 * character a URI cannot hold as it is (white space, control characters, quotes, angle brackets, braces, non-ASCII
 * as UTF-8) percent-encoded; `%` and the rest of RFC 3986's characters as given. A lone surrogate becomes U+FFFD.
 */
export function encodeRuaUri(uri: string): string {
  return uri.replace(/[^A-Za-z0-9\-._~:/?#[\]@$&'()*+=%]/gu, (c) =>
    /^[\ud800-\udfff]$/.test(c) ? '%EF%BF%BD' : encodeURIComponent(c).replace(/!/g, '%21'),
  );
}

/**
 * The `_smtp._tls` TXT record for its reporting URIs: `v=TLSRPTv1; rua=<uri>,<uri>`, each URI encoded as encodeRuaUri
 * says. Valid URIs (ruaProblem of the encoded URI is null) parse back with parseTlsRptRecord to the encoded URIs.
 */
export function formatTlsRptRecord(record: {
  rua: readonly string[];
  extensions?: readonly TxtField[];
}): string {
  return formatFieldList('v=TLSRPTv1', [
    { name: 'rua', value: record.rua.map(encodeRuaUri).join(',') },
    ...(record.extensions ?? []),
  ]);
}
