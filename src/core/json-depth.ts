/**
 * How deeply a JSON text nests arrays and objects, found by one pass over its bytes that skips strings (with their
 * escapes), so that brackets inside a reporter's text do not count. Runs before JSON.parse: a body nested deeper than
 * a report can be is refused without being parsed. Bytes of multi-byte UTF-8 characters are all >= 0x80 and never
 * look like a quote, a backslash or a bracket.
 */
export function nestingDepth(json: Uint8Array, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}
