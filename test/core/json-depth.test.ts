import { describe, expect, test } from 'vitest';
import { nestingDepth } from '../../src/core/json-depth.js';

/**
 * The nesting scan that runs before JSON.parse: how deep arrays and objects go, with brackets inside strings (and
 * escaped quotes inside those strings) not counted.
 */

const bytes = (text: string) => new TextEncoder().encode(text);
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

describe('nestingDepth', () => {
  test.each([
    ['', 0],
    ['42', 0],
    ['"text"', 0],
    ['{}', 1],
    ['[]', 1],
    ['[1, 2, 3]', 1],
    ['{"a": [1, {"b": 2}]}', 3],
    // Siblings do not add up: the deepest path counts.
    ['[[1], [2], [[3]]]', 3],
    ['[[[]]] [[]]', 3],
    // A TLS-RPT report: report > policies > policy > failure-details > detail.
    ['{"policies": [{"failure-details": [{"result-type": "x"}]}]}', 5],
    // Brackets in strings are the reporter's text, not structure.
    ['"[[[[{{{{"', 0],
    ['{"a": "]]]}}}[[[", "b": [1]}', 2],
    // An escaped quote does not end the string; an escaped backslash before a quote does.
    ['["\\"[[[["]', 1],
    ['["\\\\", [[1]]]', 3],
    ['["a\\\\\\"[[", []]', 2],
    // Multi-byte UTF-8 never looks like a quote or a bracket.
    ['{"ä€😀": ["「[」"]}', 2],
  ])('%j nests %i deep', (json, depth) => {
    expect(nestingDepth(bytes(json))).toBe(depth);
  });

  test('a closing bracket closes one level: the next opening one is as deep as before', () => {
    expect(nestingDepth(bytes('[[]][[]][[]]'))).toBe(2);
    expect(nestingDepth(bytes('{}{}{}{}'))).toBe(1);
  });

  test.each([
    [10, 10, 10],
    [11, 10, 11],
    [5, 10, 5],
    [1000, 10, 11],
  ])('%i levels with stopAbove %i: %i', (levels, stopAbove, found) => {
    expect(nestingDepth(bytes(nested(levels)), stopAbove)).toBe(found);
  });

  test('the scan stops at the first level past stopAbove, without reading the rest', () => {
    // After the 3rd "[", the rest is unread: a deeper run further on is not seen.
    expect(nestingDepth(bytes(`[[[]]] ${nested(50)}`), 2)).toBe(3);
    expect(nestingDepth(bytes(`[[[]]] ${nested(50)}`))).toBe(50);
  });

  test('without stopAbove, a deep nesting is read to its bottom', () => {
    expect(nestingDepth(bytes(nested(100_000)))).toBe(100_000);
  });
});
