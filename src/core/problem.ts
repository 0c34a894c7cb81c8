import type { FindingCode } from './findings.js';

/**
 * One rule a parsed text breaks. Parsers return these instead of throwing: `code` is the finding the check will
 * report, `message` names the rule and the value seen.
 */
export interface Problem {
  code: FindingCode;
  message: string;
}

/** Visible form of text from the network for a message: control characters escaped, length capped. */
export function shown(text: string, max = 60): string {
  const escaped = text.replace(
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
}

/** RFC 8461 / RFC 8460 extension field names: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
export const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
