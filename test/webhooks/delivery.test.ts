import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { DEFAULT_DELIVERY, DeliveryWorker, type Poster } from '../../src/monitor/deliver.js';
import { alertMessage } from '../../src/slack/blocks/alert.js';
import { LIMITS } from '../../src/slack/blocks/common.js';
import { type Db, openDatabase } from '../../src/store/db.js';
import { MonitorStore } from '../../src/store/monitor.js';
import type { EventPayload } from '../../src/store/monitor-state.js';
import { enqueue } from '../../src/store/outbox.js';
import {
  LOG_DESTINATION,
  SubscriptionStore,
  WATCH_LIST_TEAM,
  webhookDestination,
} from '../../src/store/subscriptions.js';
import type { Webhook, WebhookKind } from '../../src/webhooks/destinations.js';
import { logPoster, routingPoster } from '../../src/webhooks/poster.js';
import { rateLimited, WebhookReceiver } from '../support/webhook-receivers.js';

/**
 * Alerts of the command line's watch list delivered through the real outbox (SQLite) and delivery worker to
 * incoming-webhook receivers on loopback, one per kind. Waits pass on a clock the test moves.
 */

const T0 = Date.parse('2026-11-29T12:00:00Z');
let t = T0;
const now = () => new Date(t);
const receivers: WebhookReceiver[] = [];
const dbs: Db[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.stop();
  for (const db of dbs.splice(0)) await db.close();
  t = T0;
});

async function receiver(kind: WebhookKind): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start(kind);
  receivers.push(r);
  return r;
}

function opened(domain = 'example.com', title = 'MX certificate expired'): EventPayload {
  return {
    domain,
    domainUnicode: domain,
    mode: 'enforce',
    event: {
      key: `open:MX_CERT_EXPIRED:mx1.${domain}`,
      kind: 'opened',
      threadKey: null,
      info: {
        kind: 'finding',
        code: 'MX_CERT_EXPIRED',
        title,
        subject: `mx1.${domain}`,
        severity: 'error',
        message: `The certificate of mx1.${domain} expired on 2026-11-20 <b>@channel</b>.`,
        fix: 'Renew the certificate and reload the mail server.',
      },
    },
  };
}

function recovered(domain = 'example.com'): EventPayload {
  const p = opened(domain);
  return {
    ...p,
    event: {
      ...p.event,
      key: `recovered:MX_CERT_EXPIRED:mx1.${domain}`,
      kind: 'recovered',
      durationMs: 7_200_000,
      resolution: 'a new certificate',
    },
  };
}

interface Bed {
  db: Db;
  store: MonitorStore;
  subscriptions: SubscriptionStore;
  worker: DeliveryWorker;
  logged: string[];
  blocks: string[];
}

function bed(webhooks: Webhook[]): Bed {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'mtasts-hooks-')), 'db.sqlite'));
  dbs.push(db);
  const logged: string[] = [];
  const blocks: string[] = [];
  const poster: Poster = routingPoster({
    slack: null,
    webhooks,
    log: logPoster((b) => blocks.push(b)),
    timeoutMs: 2000,
    now,
  });
  const store = new MonitorStore(db);
  const subscriptions = new SubscriptionStore(db);
  const worker = new DeliveryWorker({
    store,
    subscriptions,
    poster,
    now,
    logger: { info: (m) => logged.push(m), warn: (m) => logged.push(m), error: (m) => logged.push(m) },
    settings: { ...DEFAULT_DELIVERY, channelPacingMs: 1, backoffMs: 30_000, random: () => 0 },
    holder: 'test#1',
  });
  return { db, store, subscriptions, worker, logged, blocks };
}

async function queue(
  b: Bed,
  destination: string,
  alerts: { key: string; payload: EventPayload; thread?: string }[],
): Promise<void> {
  for (const a of alerts) {
    await enqueue(
      b.db,
      a.payload.domain,
      [
        {
          eventKey: a.key,
          teamId: WATCH_LIST_TEAM,
          channelId: destination,
          threadEventKey: a.thread ?? null,
          broadcast: false,
          payload: a.payload,
        },
      ],
      now(),
    );
  }
}

/** Delivery rounds, the clock moved an hour between them, until nothing is pending (at most `rounds`). */
async function deliverAll(b: Bed, rounds = 30): Promise<void> {
  for (let i = 0; i < rounds && (await b.store.entries()).some((e) => e.state === 'pending'); i++) {
    await b.worker.deliver();
    t += 3_600_000;
  }
}

describe('the payload each service documents', () => {
  test('Slack incoming webhook: the Block Kit alert the app posts, without buttons, the CLI hint in place of the slash command', async () => {
    const r = await receiver('slack');
    const b = bed([{ name: 'team', kind: 'slack', url: r.url }]);
    await queue(b, webhookDestination('team'), [{ key: 'e1', payload: opened() }]);
    await deliverAll(b);
    expect(r.received).toHaveLength(1);
    expect(r.received[0]?.headers['content-type']).toBe('application/json');
    const app = alertMessage(opened());
    const body = r.received[0]?.body as { text: string; blocks: { type: string; text?: { text: string } }[] };
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text', 'unfurl_links', 'unfurl_media']);
    expect(body).toMatchObject({ text: app.text, unfurl_links: false, unfurl_media: false });
    // Every block of the app's message, bar the slash-command hint, in order; then the CLI's hint.
    expect(body.blocks.slice(0, -1)).toEqual(
      app.blocks.filter((x) => !JSON.stringify(x).includes('/mtasts ')),
    );
    expect(body.blocks.at(-1)).toEqual({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: '`npx mtasts watch mute example.com 24h` silences these alerts · `npx mtasts check example.com` for the full report',
        },
      ],
    });
    expect(body.blocks.some((x) => x.type === 'actions')).toBe(false);
    expect(body.blocks.length).toBeLessThanOrEqual(LIMITS.blocksPerMessage);
    expect(JSON.stringify(body)).not.toContain('<b>'); // DNS text escaped, as the app does
  });

  test('Slack: a follow-up has no thread there, so it names the alert it follows', async () => {
    const r = await receiver('slack');
    const b = bed([{ name: 'team', kind: 'slack', url: r.url }]);
    await queue(b, webhookDestination('team'), [
      { key: 'e1', payload: opened() },
      { key: 'e2', payload: recovered(), thread: 'e1' },
    ]);
    await deliverAll(b);
    const bodies = r.accepted() as {
      blocks: { type: string; elements?: { text: string }[] }[];
      thread_ts?: string;
    }[];
    expect(bodies).toHaveLength(2);
    expect(bodies[1]?.thread_ts).toBeUndefined();
    expect(bodies[1]?.blocks[0]).toEqual({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: 'Follow-up to the alert "example.com: MX certificate expired" (mx1.example.com)',
        },
      ],
    });
  });

  test('Mattermost: text and Slack-compatible attachments in its Markdown, no mention possible', async () => {
    const r = await receiver('mattermost');
    const b = bed([{ name: 'mm', kind: 'mattermost', url: r.url }]);
    await queue(b, webhookDestination('mm'), [{ key: 'e1', payload: opened() }]);
    await deliverAll(b);
    expect(r.accepted()).toEqual([
      {
        text: 'Error: example.com: MX certificate expired (mx1.example.com)',
        attachments: [
          {
            fallback: 'Error: example.com: MX certificate expired (mx1.example.com)',
            color: '#E01E5A',
            text: expect.stringContaining('**Fix:** Renew the certificate and reload the mail server.'),
          },
        ],
      },
    ]);
    const text = (r.accepted()[0] as { attachments: { text: string }[] }).attachments[0]?.text ?? '';
    expect(text).toContain('🚨 Error · **example.com: MX certificate expired**');
    expect(text).toContain('<b>@\u200bchannel</b>');
    expect(text).not.toMatch(/@channel/);
    expect(text).toContain('`npx mtasts watch mute example.com 24h`');
  });

  test('Discord: content and one embed, mentions switched off', async () => {
    const r = await receiver('discord');
    const b = bed([{ name: 'dc', kind: 'discord', url: r.url }]);
    await queue(b, webhookDestination('dc'), [{ key: 'e1', payload: opened() }]);
    await deliverAll(b);
    expect(r.received.map((x) => x.status)).toEqual([204]);
    expect(r.accepted()).toEqual([
      {
        content: 'Error: example.com: MX certificate expired (mx1.example.com)',
        embeds: [
          {
            title: 'Error: example.com: MX certificate expired (mx1.example.com)',
            description: expect.stringContaining('The certificate of mx1.example.com expired on 2026-11-20'),
            color: 0xe01e5a,
            timestamp: '2026-11-29T12:00:00.000Z',
          },
        ],
        allowed_mentions: { parse: [] },
      },
    ]);
  });

  test('json: the documented object', async () => {
    const r = await receiver('json');
    const b = bed([{ name: 'any', kind: 'json', url: r.url }]);
    await queue(b, webhookDestination('any'), [
      { key: 'e1', payload: opened() },
      { key: 'e2', payload: recovered(), thread: 'e1' },
    ]);
    await deliverAll(b);
    const [first, second] = r.accepted() as Record<string, unknown>[];
    expect(first).toEqual({
      kind: 'opened',
      domain: 'example.com',
      severity: 'error',
      codes: ['MX_CERT_EXPIRED'],
      title: 'Error: example.com: MX certificate expired (mx1.example.com)',
      message: 'The certificate of mx1.example.com expired on 2026-11-20 <b>@channel</b>.',
      fix: 'Renew the certificate and reload the mail server.',
      impact: expect.stringMatching(/^[^*]*enforce[^*]*$/),
      text: expect.stringContaining('Fix: Renew the certificate'),
      follows: null,
      times: { sentAt: '2026-11-29T12:00:00.000Z' },
    });
    expect(second).toMatchObject({
      kind: 'recovered',
      severity: 'info',
      fix: null,
      impact: null,
      follows: 'e1',
      times: { durationMs: 7_200_000 },
    });
  });
});

describe('retries through the same outbox', () => {
  for (const kind of ['slack', 'mattermost', 'discord', 'json'] as const) {
    test(`${kind}: 429 as the service says it, then 5xx for a while: nothing lost, nothing doubled, order kept`, async () => {
      const r = await receiver(kind);
      const b = bed([{ name: 'hook', kind, url: r.url }]);
      r.answer(rateLimited(kind, 7), { status: 503, body: 'down' }, { status: 502 }, rateLimited(kind, 3), {
        status: 500,
      });
      const domains = ['a.example', 'b.example', 'c.example'];
      await queue(
        b,
        webhookDestination('hook'),
        domains.map((d, i) => ({ key: `e${i}`, payload: opened(d) })),
      );
      await b.worker.deliver();
      // The 429's wait is what the service asked (jitter is 0 here), and no attempt was counted.
      const [first] = await b.store.entries();
      expect(first).toMatchObject({ state: 'pending', attempts: 0, rateLimited: 1 });
      expect(Date.parse(first?.nextAttemptAt ?? '') - t).toBe(7000);
      await deliverAll(b);
      expect((await b.store.entries()).map((e) => e.state)).toEqual(['sent', 'sent', 'sent']);
      const delivered = r.accepted().map((x) => JSON.stringify(x));
      expect(delivered).toHaveLength(3);
      expect(new Set(delivered).size).toBe(3);
      domains.forEach((d, i) => {
        expect(delivered[i]).toContain(d);
      });
      expect(r.received.map((x) => x.status).slice(0, 5)).toEqual([429, 503, 502, 429, 500]);
      expect(b.logged.join('\n')).not.toContain(r.url);
      expect(b.logged.join('\n')).not.toContain('secret-');
    });
  }
});

describe('destinations', () => {
  test('a webhook that is gone (404) pauses its watch-list subscriptions; the log takes its own', async () => {
    const r = await receiver('slack');
    const b = bed([{ name: 'gone', kind: 'slack', url: r.url }]);
    r.answer({ status: 404, body: 'no_service' });
    await b.subscriptions.watch(
      WATCH_LIST_TEAM,
      webhookDestination('gone'),
      'example.com',
      'cli',
      100,
      now(),
    );
    await b.subscriptions.watch(WATCH_LIST_TEAM, LOG_DESTINATION, 'example.com', 'cli', 100, now());
    await queue(b, webhookDestination('gone'), [{ key: 'e1', payload: opened() }]);
    await queue(b, LOG_DESTINATION, [{ key: 'e1', payload: opened() }]);
    await deliverAll(b);
    const list = await b.subscriptions.watchList();
    expect(list.map((s) => [s.channelId, s.pausedReason])).toEqual([
      ['log', null],
      ['webhook:gone', 'alerts cannot be posted: webhook gone: HTTP 404 no_service'],
    ]);
    expect(b.blocks).toHaveLength(1);
    expect(b.blocks[0]?.split('\n')[0]).toBe(
      'alert: Error: example.com: MX certificate expired (mx1.example.com)',
    );
    expect(b.blocks[0]).toContain('  Fix: Renew the certificate and reload the mail server.');
  });

  test('a webhook name no longer in MTASTS_WEBHOOKS pauses what was sent there, and says so', async () => {
    const b = bed([]);
    await b.subscriptions.watch(WATCH_LIST_TEAM, webhookDestination('old'), 'example.com', 'cli', 100, now());
    await queue(b, webhookDestination('old'), [{ key: 'e1', payload: opened() }]);
    await deliverAll(b);
    expect((await b.subscriptions.watchList())[0]?.pausedReason).toBe(
      'alerts cannot be posted: webhook old is not in MTASTS_WEBHOOKS',
    );
  });

  test('the database refuses a watch-list row with a destination that is neither the log nor a webhook', async () => {
    const b = bed([]);
    await expect(
      b.subscriptions.watch(WATCH_LIST_TEAM, 'C123', 'example.com', 'cli', 100, now()),
    ).rejects.toThrow(/log or webhook:NAME/);
    await expect(
      b.subscriptions.watch('T123', 'C123', 'example.com', 'U1', 100, now()),
    ).resolves.toMatchObject({
      kind: 'added',
    });
  });
});
