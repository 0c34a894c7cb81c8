import { EXT_NAME, type Problem, shown } from './problem.js';

/** A parsed `_smtp._tls` TXT record (RFC 8460 §3). */
export interface TlsRptRecord {
  /** Where reports go: `mailto:` and `https:` URIs, in order. */
  rua: string[];
  extensions: { name: string; value: string }[];
}

export interface TlsRptRecordResult {
  record: TlsRptRecord | null;
  problems: Problem[];
}

export function isTlsRptRecord(txt: string): boolean {
  return txt.startsWith('v=TLSRPTv1');
}

const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

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
  const rest = txt.slice(m[0].length).replace(/[ \t]+$/, '');
  const body = rest.endsWith(';') ? rest.slice(0, -1).replace(/[ \t]+$/, '') : rest;
  let rua: string[] | null = null;
  const extensions: { name: string; value: string }[] = [];
  for (const raw of body.length > 0 ? body.split(';') : []) {
    const field = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (field.length === 0) return invalid('an empty field (two ";" in a row)');
    const eq = field.indexOf('=');
    if (eq <= 0) return invalid(`the field "${shown(field)}" is not of the form name=value`);
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'rua') {
      if (rua !== null) continue; // the first rua counts
      const uris = value.split(',').map((u) => u.replace(/^[ \t]+|[ \t]+$/g, ''));
      for (const uri of uris) {
        const problem = ruaProblem(uri);
        if (problem) return invalid(`the rua URI "${shown(uri)}" ${problem}`);
      }
      rua = uris;
      continue;
    }
    if (!EXT_NAME.test(name)) return invalid(`the field name "${shown(name)}" is not a valid extension name`);
    if (!EXT_VALUE.test(value)) {
      return invalid(`the field "${shown(name)}" has an empty value or one with a space, "=" or ";"`);
    }
    extensions.push({ name, value });
  }
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
  } else if (url.hostname === '') {
    return 'has no host';
  }
  return null;
}
