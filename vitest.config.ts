import { defineConfig } from 'vitest/config';
import { postgresMissing } from './test/support/postgres.js';

/**
 * Two projects: every test on SQLite (the default engine), and the store, monitor, Slack and TLS-RPT tests a second
 * time on PostgreSQL (MTASTS_TEST_DB=postgres: test/support/config.ts gives each test's DATABASE_PATH a database of its
 * own in a cluster the run starts). Where PostgreSQL is not installed, the second project is left out, with one line.
 */
const POSTGRES_FILES = [
  'test/store/**/*.test.ts',
  'test/monitor/monitor.test.ts',
  'test/monitor/delivery.test.ts',
  'test/tlsrpt/tlsrpt.test.ts',
  'test/slack/commands.test.ts',
  'test/slack/app.test.ts',
  'test/slack/oauth.test.ts',
  'test/webhooks/delivery.test.ts',
  'test/process/**/*.test.ts',
];
const missing = postgresMissing();
if (missing) process.stderr.write(`PostgreSQL tests skipped: ${missing}\n`);

export default defineConfig({
  test: {
    testTimeout: 30000,
    hookTimeout: 30000,
    pool: 'forks',
    // The JSON report lets .ci/run print the plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/store/**', 'test/process/**'],
        },
      },
      ...(missing
        ? []
        : [
            {
              extends: true as const,
              test: {
                name: 'postgres',
                include: POSTGRES_FILES,
                env: { MTASTS_TEST_DB: 'postgres' },
                globalSetup: ['test/support/postgres-setup.ts'],
              },
            },
          ]),
    ],
  },
});
