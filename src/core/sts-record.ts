import { type Problem, shown } from './problem.js';
import { formatFieldList, readFieldList, type TxtField } from './txt-fields.js';

/** A parsed `_mta-sts` TXT record (RFC 8461 §3.1). */
export interface StsRecord {
  /** The sts id: 1-32 letters and digits; a change tells senders to fetch the policy again. */
  id: string;
  /** Extension fields, kept in order; senders ignore them. */
  extensions: TxtField[];
}

export interface StsRecordResult {
  record: StsRecord | null;
  problems: Problem[];
}

/** Senders keep only the TXT records that start with the version tag; the others are not MTA-STS records. */
export function isStsRecord(txt: string): boolean {
  return txt.startsWith('v=STSv1');
}

/** RFC 8461 §3.1 sts-id: 1*32(ALPHA / DIGIT). */
export const STS_ID = /^[A-Za-z0-9]{1,32}$/;

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
  let id: string | null = null;
  const { extensions, problem } = readFieldList(txt.slice(m[0].length), (name, value) => {
    if (name !== 'id') return undefined;
    if (!STS_ID.test(value))
      return `the id "${shown(value)}" must be 1 to 32 letters and digits (RFC 8461 §3.1)`;
    id ??= value; // a repeated id: the first counts, as for policy fields (RFC 8461 §3.2)
    return null;
  });
  if (problem !== null) return invalid(problem);
  if (id === null)
    return invalid('the id field is missing (RFC 8461 §3.1 requires id=<1-32 letters and digits>)');
  return { record: { id, extensions }, problems: [] };
}

/**
 * The `_mta-sts` TXT record for an id (and extension fields, if any): `v=STSv1; id=<id>`. The id must be 1-32 letters
 * and digits; what this gives parses back with parseStsRecord to the same id.
 */
export function formatStsRecord(record: { id: string; extensions?: readonly TxtField[] }): string {
  return formatFieldList('v=STSv1', [{ name: 'id', value: record.id }, ...(record.extensions ?? [])]);
}
