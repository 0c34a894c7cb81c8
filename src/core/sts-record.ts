import { EXT_NAME, type Problem, shown } from './problem.js';

/** A parsed `_mta-sts` TXT record (RFC 8461 §3.1). */
export interface StsRecord {
  /** The sts id: 1-32 letters and digits; a change tells senders to fetch the policy again. */
  id: string;
  /** Extension fields, kept in order; senders ignore them. */
  extensions: { name: string; value: string }[];
}

export interface StsRecordResult {
  record: StsRecord | null;
  problems: Problem[];
}

/** Senders keep only the TXT records that start with the version tag; the others are not MTA-STS records. */
export function isStsRecord(txt: string): boolean {
  return txt.startsWith('v=STSv1');
}

const ID = /^[A-Za-z0-9]{1,32}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/**
 * Parses one TXT record (its strings already joined) per the RFC 8461 §3.1 grammar:
 * `v=STSv1` first and case-sensitive, fields separated by `;` with optional white space, an `id` of 1-32 letters and
 * digits, extension fields allowed and ignored, one optional trailing `;`. Never throws.
 */
export function parseStsRecord(txt: string): StsRecordResult {
  const invalid = (message: string): StsRecordResult => ({
    record: null,
    problems: [{ code: 'STS_RECORD_INVALID', message }],
  });
  // RFC 8461 §3.1: sts-version = %s"v=STSv1", then 1*(*WSP ";" *WSP sts-field) [";"].
  const m = /^v=STSv1([ \t]*;[ \t]*|[ \t]*$)/.exec(txt);
  if (!m) {
    if (/^v=stsv1/i.test(txt) && !txt.startsWith('v=STSv1')) {
      return invalid(`the version must be exactly "v=STSv1" (case-sensitive), seen "${shown(txt, 20)}"`);
    }
    if (txt.startsWith('v=STSv1')) {
      return invalid(`the version "v=STSv1" must be followed by ";" (seen "${shown(txt, 40)}")`);
    }
    return invalid(`the record must start with "v=STSv1", seen "${shown(txt, 40)}"`);
  }
  const rest = txt.slice(m[0].length).replace(/[ \t]+$/, '');
  const body = rest.endsWith(';') ? rest.slice(0, -1).replace(/[ \t]+$/, '') : rest;
  let id: string | null = null;
  const extensions: { name: string; value: string }[] = [];
  if (body.length > 0) {
    for (const raw of body.split(';')) {
      const field = raw.replace(/^[ \t]+|[ \t]+$/g, '');
      if (field.length === 0) return invalid('an empty field (two ";" in a row)');
      const eq = field.indexOf('=');
      if (eq <= 0) return invalid(`the field "${shown(field)}" is not of the form name=value`);
      const name = field.slice(0, eq);
      const value = field.slice(eq + 1);
      if (name === 'id') {
        if (!ID.test(value)) {
          return invalid(`the id "${shown(value)}" must be 1 to 32 letters and digits (RFC 8461 §3.1)`);
        }
        id ??= value; // a repeated id: the first counts, as for policy fields (RFC 8461 §3.2)
        continue;
      }
      if (!EXT_NAME.test(name))
        return invalid(`the field name "${shown(name)}" is not a valid extension name`);
      if (!EXT_VALUE.test(value)) {
        return invalid(`the field "${shown(name)}" has an empty value or one with a space, "=" or ";"`);
      }
      extensions.push({ name, value });
    }
  }
  if (id === null)
    return invalid('the id field is missing (RFC 8461 §3.1 requires id=<1-32 letters and digits>)');
  return { record: { id, extensions }, problems: [] };
}
