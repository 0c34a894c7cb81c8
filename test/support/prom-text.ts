/**
 * A strict parser of Prometheus' text exposition format (0.0.4), for tests: it throws, naming the line, on anything a
 * Prometheus server would refuse or misread. Metric and label names, label values with their escapes, sample values
 * (Go floats, NaN, ±Inf), an optional timestamp; every family's TYPE before its samples and its lines together; no
 * sample twice; histograms with an `le` on every bucket, buckets in increasing order with counts that never fall, a
 * +Inf bucket equal to _count, and a _sum.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  /** A TYPE line was read for it. */
  typed: boolean;
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function fail(n: number, line: string, why: string): never {
  throw new Error(`Prometheus text, line ${n}: ${why}: ${JSON.stringify(line)}`);
}

function parseValue(text: string, n: number, line: string): number {
  if (!FLOAT.test(text)) fail(n, line, `not a number: ${text}`);
  if (/^[+-]?Inf$/.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return text === 'NaN' ? Number.NaN : Number(text);
}

/** Reads `{a="x",b="y"}` from `line` at `at`; returns the labels and where they end. */
function parseLabels(line: string, at: number, n: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) fail(n, line, 'a label without "="');
    const name = line.slice(i, eq);
    if (!LABEL.test(name)) fail(n, line, `bad label name ${name}`);
    if (name in labels) fail(n, line, `label ${name} twice`);
    if (line[eq + 1] !== '"') fail(n, line, 'a label value without quotes');
    let value = '';
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j++) {
      if (line[j] === '\\') {
        const next = line[++j];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else fail(n, line, `bad escape \\${next}`);
      } else value += line[j];
    }
    if (j >= line.length) fail(n, line, 'an unterminated label value');
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') fail(n, line, 'labels not separated by ","');
  }
}

function parseSample(line: string, n: number): Sample {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
  if (nameEnd <= 0) fail(n, line, 'no metric name');
  const name = line.slice(0, nameEnd);
  if (!METRIC.test(name)) fail(n, line, `bad metric name ${name}`);
  let labels: Record<string, string> = {};
  let rest = line.slice(nameEnd);
  if (line[nameEnd] === '{') {
    const parsed = parseLabels(line, nameEnd, n);
    labels = parsed.labels;
    rest = line.slice(parsed.end);
  }
  const parts = rest.split(' ');
  if (parts[0] !== '' || parts.length < 2 || parts.length > 3) fail(n, line, 'expected " value [timestamp]"');
  const value = parseValue(parts[1] ?? '', n, line);
  if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) fail(n, line, 'bad timestamp');
  return { name, labels, value };
}

/** The family a sample belongs to: its name, or a histogram's or summary's name without the suffix. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(name);
  if (exact) return exact;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const f = families.get(base);
  return f && (f.type === 'histogram' || f.type === 'summary') ? f : undefined;
}

function checkHistogram(f: Family): void {
  const series = new Map<
    string,
    { buckets: { le: number; count: number }[]; sum?: number; count?: number }
  >();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    const h = series.get(key) ?? { buckets: [] };
    series.set(key, h);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      h.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: s.value });
    } else if (s.name === `${f.name}_sum`) h.sum = s.value;
    else if (s.name === `${f.name}_count`) h.count = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, h] of series) {
    for (let i = 1; i < h.buckets.length; i++) {
      const [a, b] = [h.buckets[i - 1], h.buckets[i]];
      if (!a || !b || !(b.le > a.le) || b.count < a.count)
        throw new Error(`${f.name}${key}: buckets out of order or falling`);
    }
    const inf = h.buckets.at(-1);
    if (inf?.le !== Infinity || inf.count !== h.count || h.sum === undefined)
      throw new Error(`${f.name}${key}: no +Inf bucket equal to _count, or no _sum`);
  }
}

/** Parses a whole exposition; throws on the first thing that is not valid. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('Prometheus text: does not end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | null = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === '') return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name = '', rest = ''] = meta;
      if (!METRIC.test(name)) fail(n, line, `bad metric name ${name}`);
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', help: null, typed: false, samples: [] };
        families.set(name, f);
      } else if (f !== current) fail(n, line, `${name}'s lines are not together`);
      current = f;
      if (kind === 'HELP') {
        if (f.help !== null) fail(n, line, 'HELP twice');
        f.help = rest;
      } else {
        if (!TYPES.has(rest)) fail(n, line, `unknown type ${rest}`);
        if (f.samples.length > 0 || f.typed) fail(n, line, 'TYPE after samples, or twice');
        f.type = rest as Family['type'];
        f.typed = true;
      }
      return;
    }
    if (line.startsWith('#')) return;
    const sample = parseSample(line, n);
    const f = familyOf(sample.name, families);
    if (!f?.typed) fail(n, line, `a sample of ${sample.name} before its TYPE`);
    if (f !== current) fail(n, line, `${f.name}'s lines are not together`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) fail(n, line, 'the same sample twice');
    seen.add(key);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The value of one sample, by metric name and exact labels; undefined when there is none. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values()) {
    const s = f.samples.find(
      (x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === want,
    );
    if (s) return s.value;
  }
  return undefined;
}
