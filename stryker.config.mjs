// Mutation testing of the rules (`npm run mutation`; the README's "Mutation testing" section has the last scores).
// Each rule file is mutated and run against the rules' own table tests only (stryker.config.vitest.mjs keeps the
// slow end-to-end suites out); vitest's related mode keeps to the tests that import the mutated file, and per-test
// coverage runs, for each mutant, only the tests that execute the mutated code.

/** The rules' own tests: what the mutants of the files in `mutate` are run against. */
export const RULE_TESTS = [
  'test/core/domain.test.ts',
  'test/core/sts-record.test.ts',
  'test/core/tlsrpt-record.test.ts',
  'test/core/policy.test.ts',
  'test/core/txt-fields.test.ts',
  'test/core/rollout.test.ts',
  'test/core/address-guard.test.ts',
  'test/monitor/diff.test.ts',
  'test/core/tlsrpt-report.test.ts',
  'test/core/tlsrpt-dates.test.ts',
  'test/core/json-depth.test.ts',
  'test/tlsrpt/guards.test.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'stryker.config.vitest.mjs', related: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/core/domain.ts',
    'src/core/sts-record.ts',
    'src/core/tlsrpt-record.ts',
    'src/core/policy.ts',
    'src/core/txt-fields.ts',
    'src/core/rollout.ts',
    'src/core/net/address-guard.ts',
    'src/monitor/diff.ts',
    'src/core/tlsrpt-report.ts',
    'src/core/tlsrpt-dates.ts',
    'src/core/json-depth.ts',
    'src/tlsrpt/guards.ts',
    'src/core/net/client-key.ts',
  ],
  // The TLS-RPT report tests find the public sample reports by walking up from their own folder to the first
  // shared/fixtures/tlsrpt, so they read the same files from a Stryker sandbox (.stryker-tmp/sandbox-*) as from here.
  // The score per file, and every mutant that survived, with where it is: what a contributor acts on.
  reporters: ['clear-text', 'progress', 'html', 'json'],
  clearTextReporter: { reportTests: false, logTests: false, reportMutants: true, reportScoreTable: true },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // The targets: 90% for the parsers and the guard, 85% for the monitor's diff. The run fails (exit code 1) when
  // the score of all the files together falls under 85%, so that a change that weakens the tests does not pass.
  thresholds: { high: 90, low: 85, break: 85 },
  // Module-level constants (the alert-behaviour sets, the regular expressions) are static mutants: each runs every
  // related test after a reload. They are what the rules are made of, so they are tested, not ignored.
  warnings: { slow: false },
  // Two cores here, shared; override with --concurrency.
  concurrency: 2,
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'dist-bench', 'coverage', 'bench', 'db/*.sqlite*', 'test-results.json'],
};
