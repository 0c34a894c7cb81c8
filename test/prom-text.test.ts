import { expect, test } from 'vitest';
import { parsePrometheusText, sampleValue } from './support/prom-text.js';

/** The strict parser the /metrics tests rely on: it must refuse what Prometheus would. */
const VALID = `# HELP jobs_total Jobs done.
# TYPE jobs_total counter
jobs_total{kind="a\\"b\\\\c\\nd"} 3
jobs_total{kind="plain"} 1e3
# TYPE wait_seconds histogram
wait_seconds_bucket{le="0.5"} 1
wait_seconds_bucket{le="1"} 2
wait_seconds_bucket{le="+Inf"} 2
wait_seconds_sum 0.75
wait_seconds_count 2
# TYPE up gauge
up NaN 1700000000000
`;

test('a valid exposition: families, escaped label values, floats, NaN, histograms, timestamps', () => {
  const m = parsePrometheusText(VALID);
  expect([...m.keys()]).toEqual(['jobs_total', 'wait_seconds', 'up']);
  expect(m.get('jobs_total')?.help).toBe('Jobs done.');
  expect(sampleValue(m, 'jobs_total', { kind: 'a"b\\c\nd' })).toBe(3);
  expect(sampleValue(m, 'jobs_total', { kind: 'plain' })).toBe(1000);
  expect(sampleValue(m, 'wait_seconds_count')).toBe(2);
  expect(sampleValue(m, 'up')).toBeNaN();
});

test.each([
  ['no newline at the end', VALID.slice(0, -1), /newline/],
  ['a sample before its TYPE', 'x 1\n', /before its TYPE/],
  ['a bad metric name', '# TYPE 1x counter\n', /bad metric name/],
  ['an unknown type', '# TYPE x countr\n', /unknown type/],
  ['an unterminated label value', '# TYPE x gauge\nx{a="1} 2\n', /unterminated/],
  ['a bad escape', '# TYPE x gauge\nx{a="\\t"} 2\n', /bad escape/],
  ['a label twice', '# TYPE x gauge\nx{a="1",a="2"} 2\n', /twice/],
  ['the same sample twice', '# TYPE x gauge\nx{a="1"} 2\nx{a="1"} 3\n', /same sample twice/],
  ['a value that is no number', '# TYPE x gauge\nx 0x10\n', /not a number/],
  ['families interleaved', '# TYPE x gauge\n# TYPE y gauge\nx 1\n', /not together/],
  ['TYPE after samples', '# TYPE x gauge\nx 1\n# TYPE x gauge\n', /TYPE after samples/],
  [
    'buckets that fall',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    /out of order or falling/,
  ],
  [
    'a +Inf bucket unlike _count',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
    /\+Inf bucket equal to _count/,
  ],
])('refused: %s', (_name, text, why) => {
  expect(() => parsePrometheusText(text)).toThrow(why);
});
