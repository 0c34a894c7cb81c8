import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LogSink } from '../src/log.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import { buildService, type Service } from '../src/service.js';
import { enqueue, type NewAlert } from '../src/store/outbox.js';
import { PassStore } from '../src/store/passes.js';
import { testConfig } from './support/config.js';
import { FakeSlack, sendSigned } from './support/fake-slack.js';
import { Lab } from './support/lab.js';
import { type Family, parsePrometheusText, sampleValue } from './support/prom-text.js';
import { tlsrptReport } from './support/report.js';

/** The service's /readyz and /metrics over a real runtime: loopback peers, fake Slack, SQLite. */
const METRICS_TOKEN = 'metrics-bearer-token';
const SECRET = 'service-signing-secret';
let lab: Lab;
let slack: FakeSlack;
let runtime: Runtime;
let service: Service;
let base = '';
const fatal: string[] = [];

beforeAll(async () => {
  [lab, slack] = await Promise.all([Lab.start(), FakeSlack.start()]);
  await lab.domain('good.test');
  runtime = await openRuntime(
    testConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-service-')), 'service.sqlite'),
      MTASTS_DNS_SERVERS: lab.dns.address,
      MTASTS_HEALTH_INTERVAL_MS: '1000',
      MTASTS_METRICS_TOKEN: METRICS_TOKEN,
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
    {
      engine: { options: { ca: [lab.ca.rootPem], policyPort: lab.policyPort, smtpPort: lab.smtpPort } },
      monitor: { jitterMs: 0 },
    },
  );
  service = buildService(runtime, { logs: new LogSink(() => {}), onFatal: (why) => void fatal.push(why) });
  base = `http://127.0.0.1:${await service.start()}`;
});
afterAll(async () => {
  await service.stop();
  await runtime.close();
  await Promise.all([lab.stop(), slack.stop()]);
});

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await res.text());
}

const readyz = async () => {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

test('/metrics needs the bearer token when MTASTS_METRICS_TOKEN is set', async () => {
  expect((await fetch(`${base}/metrics`)).status).toBe(401);
  expect((await fetch(`${base}/metrics`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
});

test('a failed alert post is counted by its Slack error code', async () => {
  slack.answerNext('chat.postMessage', 1, { json: { ok: false, error: 'channel_not_found' } });
  await enqueue(runtime.db, 'good.test', [alertRow('post-1', 'CGONE')], new Date());
  const round = await runtime.monitor.deliver();
  expect(round.channelsPaused).toBe(1);
  const m = await scrape();
  expect(
    sampleValue(m, 'mtasts_slack_api_errors_total', {
      method: 'chat.postMessage',
      error: 'channel_not_found',
    }),
  ).toBe(1);
});

test('a pass, a refused Web API call, a TLS-RPT report, a backlog and a lease show in /metrics, in valid Prometheus text', async () => {
  await runtime.subscriptions.watch('TSVC', 'CSVC', 'good.test', 'U1', 100, new Date());
  const pass = await runtime.monitor.runPass();
  expect(pass?.domains).toBe(1);

  // A post Slack refuses, through the app's own Web API client (Bolt's), and one through the alert poster.
  slack.answerNext('views.publish', 1, { json: { ok: false, error: 'invalid_view' } });
  await service.slack.app.client.views
    .publish({ user_id: 'U1', view: { type: 'home', blocks: [] } })
    .catch(() => {});
  const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const report = tlsrptReport({
    domain: 'good.test',
    id: 'svc-1',
    start: `${day}T00:00:00Z`,
    end: `${day}T23:59:59Z`,
    failed: 0,
    failures: [],
  });
  const posted = await fetch(`${base}/tlsrpt`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/tlsrpt+json' },
    body: report,
  });
  expect(posted.status).toBe(201);
  const queuedAt = new Date(Date.now() - 120_000);
  await enqueue(runtime.db, 'good.test', [alertRow('backlog-1')], queuedAt);
  // Another replica has begun a pass and works on its first page.
  const other = new PassStore(runtime.db, 'otherhost:4242');
  const open = await other.begin(new Date(), null);
  if (open.kind !== 'open') throw new Error('no pass');
  await other.plan(open.id, 100);
  expect(await other.claim(open.id, new Date(), 60_000)).toMatchObject({ seq: 0 });

  const m = await scrape();
  expect(sampleValue(m, 'mtasts_monitor_passes_total', { result: 'completed' })).toBe(1);
  expect(sampleValue(m, 'mtasts_monitor_pass_duration_seconds_count')).toBe(1);
  expect(sampleValue(m, 'mtasts_monitor_last_pass_timestamp_seconds')).toBeGreaterThan(1.7e9);
  expect(sampleValue(m, 'mtasts_checks_total', { status: 'pass' })).toBe(1);
  expect(sampleValue(m, 'mtasts_check_duration_seconds_count')).toBe(1);
  expect(
    sampleValue(m, 'mtasts_slack_api_errors_total', { method: 'views.publish', error: 'invalid_view' }),
  ).toBe(1);
  expect(sampleValue(m, 'mtasts_tlsrpt_reports_received_total')).toBe(1);
  expect(sampleValue(m, 'mtasts_http_requests_total', { route: '/tlsrpt', status: '201' })).toBe(1);
  expect(sampleValue(m, 'mtasts_outbox_pending')).toBe(1);
  expect(sampleValue(m, 'mtasts_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(120);
  expect(sampleValue(m, 'mtasts_monitor_lease_holder', { holder: 'otherhost:4242', self: '0' })).toBe(1);
  expect(sampleValue(m, 'mtasts_database_up')).toBe(1);
  expect(sampleValue(m, 'mtasts_slack_up')).toBe(1);
  expect(m.get('mtasts_check_duration_seconds')?.type).toBe('histogram');
  expect(m.get('process_resident_memory_bytes')?.type).toBe('gauge');
});

test('/readyz: ready with the database, Slack, the last pass and the backlog; not ready once Slack refuses the bot token', async () => {
  const ready = await readyz();
  expect(ready.status).toBe(200);
  expect(ready.body).toEqual({
    ready: true,
    mode: 'http',
    database: { ok: true },
    slack: { ok: true, state: 'reachable', api: { ok: true, checkedAt: expect.any(String) } },
    monitor: {
      lastPassAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      unfinishedPassSince: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      workers: ['otherhost:4242'],
    },
    outbox: { pending: 1, oldestAgeSeconds: expect.any(Number) },
  });
  expect(slack.callsTo('auth.test').at(-1)?.token).toBe('xoxb-test');

  slack.handlers.set('auth.test', () => ({ json: { ok: false, error: 'invalid_auth' } }));
  let last = ready;
  for (let i = 0; i < 100 && last.status === 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await readyz();
  }
  expect(last.status).toBe(503);
  expect(last.body.slack).toMatchObject({
    ok: false,
    state: 'reachable',
    api: { ok: false, error: 'Slack refused SLACK_BOT_TOKEN (invalid_auth)' },
  });
  expect(last.body.database).toEqual({ ok: true });
  expect(fatal).toEqual([]);
  slack.handlers.delete('auth.test');
});

test('a signed request still reaches Bolt beside the service routes', async () => {
  const res = await sendSigned(`${base}/slack/events`, SECRET, {
    token: 't',
    team_id: 'TSVC',
    channel_id: 'CSVC',
    user_id: 'U1',
    command: '/mtasts',
    text: 'list',
    response_url: slack.responseUrl('svc-list'),
    trigger_id: '1',
  });
  expect(JSON.stringify(res.json().blocks)).toContain('`good.test`');
});

/** An alert as the monitor queues it: a finding opened on good.test. */
function alertRow(key: string, channel = 'CSVC'): NewAlert {
  const info = {
    kind: 'finding' as const,
    title: 'MX certificate expires soon',
    subject: 'mx.good.test',
    severity: 'warning' as const,
    message: 'The certificate of mx.good.test expires in 9 days.',
    fix: 'Renew it.',
    code: 'MX_CERT_EXPIRING' as const,
  };
  return {
    eventKey: key,
    teamId: 'TSVC',
    channelId: channel,
    threadEventKey: null,
    broadcast: false,
    payload: {
      domain: 'good.test',
      domainUnicode: 'good.test',
      mode: 'enforce',
      event: { key, kind: 'opened', threadKey: null, info },
    },
  };
}
