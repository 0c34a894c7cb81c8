import { defineConfig } from 'vitest/config';
import { RULE_TESTS } from './stryker.config.mjs';

// The vitest configuration Stryker runs: only the rules' own table tests. (Stryker's `testFiles` option would say the
// same, but in Stryker 9.6.1 it also turns every static mutant, such as an entry of a module-level Set, into one that
// is switched on only after the module has loaded, so those mutants could never be killed.)
export default defineConfig({
  test: {
    include: RULE_TESTS,
    testTimeout: 30000,
    hookTimeout: 30000,
  },
});
