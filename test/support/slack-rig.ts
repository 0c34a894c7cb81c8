import { buildSlackApp, openRuntime, type Runtime, type RuntimeOverrides } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { testConfig } from './config.js';
import type { FakeSlack } from './fake-slack.js';
import type { Lab } from './lab.js';

/** The real Slack app (HTTP mode) over a real runtime: signed requests go to `url`, its Slack calls to the fake. */
export interface SlackRig {
  app: SlackApp;
  runtime: Runtime;
  port: number;
  /** The app's base URL; events at `${url}/slack/events`. */
  url: string;
  close: () => Promise<void>;
}

/**
 * Starts the app on the loopback lab (its DNS server, its CA, its policy and SMTP ports) and the fake Slack API, with
 * the test's settings over the defaults and any runtime overrides (a clock, monitor settings).
 */
export async function startSlackRig(
  lab: Lab,
  slack: FakeSlack,
  p: { secret: string; databasePath: string; env?: Record<string, string>; overrides?: RuntimeOverrides },
): Promise<SlackRig> {
  const overrides = p.overrides ?? {};
  const runtime = await openRuntime(
    testConfig({
      SLACK_SIGNING_SECRET: p.secret,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: p.databasePath,
      MTASTS_DNS_SERVERS: lab.dns.address,
      ...p.env,
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
    {
      ...overrides,
      engine: {
        ...overrides.engine,
        options: {
          ca: [lab.ca.rootPem],
          policyPort: lab.policyPort,
          smtpPort: lab.smtpPort,
          ...overrides.engine?.options,
        },
      },
    },
  );
  const app = buildSlackApp(runtime);
  const port = await app.start();
  return {
    app,
    runtime,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await app.stop();
      await runtime.close();
    },
  };
}
