import { EXT_NAME, shown } from './problem.js';

/**
 * The field list the two TXT records share (RFC 8461 §3.1 and RFC 8460 §3): after the version, `name=value` fields
 * separated by `;` with optional white space (space and tab) around it, and one optional trailing `;`. Fields a
 * record does not define are extension fields: a name of letters, digits, `_`, `-` and `.`, and a value of visible
 * characters other than `=` and `;`.
 */

export interface TxtField {
  name: string;
  value: string;
}

/** The record's own fields: returns what is wrong, null when it took the field, undefined for an extension field. */
export type OwnField = (name: string, value: string) => string | null | undefined;

export interface FieldListResult {
  /** The extension fields, in order; empty when a problem was found. */
  extensions: TxtField[];
  /** The first rule broken, or null. */
  problem: string | null;
}

/** RFC 8461 §3.1 sts-ext-value, RFC 8460 §3 ext-value: 1*(%x21-3A / %x3C / %x3E-7E). */
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;
const WSP_END = /[ \t]+$/;

/**
 * Reads the fields after the version tag and its separator, in order, and stops at the first problem. `own` sees each
 * field first; the others must be valid extension fields. Never throws.
 */
export function readFieldList(text: string, own: OwnField): FieldListResult {
  const rest = text.replace(WSP_END, '');
  const body = rest.endsWith(';') ? rest.slice(0, -1).replace(WSP_END, '') : rest;
  const extensions: TxtField[] = [];
  const fail = (problem: string): FieldListResult => ({ extensions: [], problem });
  for (const raw of body.length > 0 ? body.split(';') : []) {
    const field = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (field.length === 0) return fail('an empty field (two ";" in a row)');
    const eq = field.indexOf('=');
    if (eq <= 0) return fail(`the field "${shown(field)}" is not of the form name=value`);
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    const taken = own(name, value);
    if (taken === null) continue;
    if (taken !== undefined) return fail(taken);
    const problem = extensionProblem(name, value);
    if (problem) return fail(problem);
    extensions.push({ name, value });
  }
  return { extensions, problem: null };
}

/** An extension field's name and value (RFC 8461 §3.1, RFC 8460 §3); returns what is wrong, or null. */
export function extensionProblem(name: string, value: string): string | null {
  if (!EXT_NAME.test(name)) return `the field name "${shown(name)}" is not a valid extension name`;
  if (!EXT_VALUE.test(value)) {
    return `the field "${shown(name)}" has an empty value or one with a space, "=" or ";"`;
  }
  return null;
}

/** The record as one TXT string: the version, then each field, `; ` between them. */
export function formatFieldList(version: string, fields: readonly TxtField[]): string {
  return [version, ...fields.map((f) => `${f.name}=${f.value}`)].join('; ');
}
