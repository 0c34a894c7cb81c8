import { inject } from 'vitest';
import { type AppConfig, loadAppConfig } from '../../src/config.js';
import { databaseFor } from './postgres.js';

/** Whether this run is the postgres project's (vitest.config.ts): the store is PostgreSQL, not SQLite. */
export const onPostgres = process.env.MTASTS_TEST_DB === 'postgres';

/**
 * The app's settings for a test, read through the real loader from the variables a deployment would set. In the
 * postgres project, DATABASE_URL names a database of the test cluster of its own for each DATABASE_PATH.
 */
export function testConfig(env: Record<string, string>): AppConfig {
  return loadAppConfig({
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'secret',
    PORT: '0',
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    MTASTS_TIMEOUT_MS: '3000',
    MTASTS_EHLO_NAME: 'checker.test',
    ...env,
    ...(onPostgres ? { DATABASE_URL: postgresUrlFor(env.DATABASE_PATH ?? 'default') } : {}),
  });
}

/** The test cluster's database standing for a DATABASE_PATH (postgres project only). */
export function postgresUrlFor(path: string): string {
  return databaseFor(inject('pgPort'), `${process.pid} ${path}`);
}

/**
 * Variables for a command (`mtasts sweep`, `ingest-email`) run on a test's database: in the postgres project, with the
 * DATABASE_URL that stands for its DATABASE_PATH, as testConfig gives the app.
 */
export function cliEnv(env: Record<string, string>): Record<string, string> {
  return onPostgres ? { ...env, DATABASE_URL: postgresUrlFor(env.DATABASE_PATH ?? 'default') } : env;
}
