import { type AppConfig, loadAppConfig } from '../../src/config.js';

/** The app's settings for a test, read through the real loader from the variables a deployment would set. */
export function testConfig(env: Record<string, string>): AppConfig {
  return loadAppConfig({
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'secret',
    PORT: '0',
    MTASTS_ALLOW_PRIVATE_NETWORKS: '1',
    MTASTS_TIMEOUT_MS: '3000',
    MTASTS_EHLO_NAME: 'checker.test',
    ...env,
  });
}
