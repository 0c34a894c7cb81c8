import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookKind } from '../../src/webhooks/destinations.js';

/** One request a receiver took, whatever it answered. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The status it was answered with. */
  status: number;
}

/** A scripted answer: status, headers and body (a string as is, anything else as JSON). */
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** What each service answers a post it took (Slack and Mattermost: 200 "ok"; Discord: 204; a JSON receiver: 200). */
const ACCEPTED: Record<WebhookKind, Answer> = {
  slack: { status: 200, headers: { 'Content-Type': 'text/html' }, body: 'ok' },
  mattermost: { status: 200, headers: { 'Content-Type': 'text/plain' }, body: 'ok' },
  discord: { status: 204 },
  json: { status: 200, headers: { 'Content-Type': 'application/json' }, body: { ok: true } },
};

/** How each service says "too many requests", asking for `seconds` of wait, as its documentation shows. */
export function rateLimited(kind: WebhookKind, seconds: number): Answer {
  switch (kind) {
    case 'discord':
      return {
        status: 429,
        headers: {
          'X-RateLimit-Limit': '5',
          'X-RateLimit-Remaining': '0',
          'X-RateLimit-Reset-After': String(seconds),
          'X-RateLimit-Scope': 'shared',
        },
        body: { message: 'You are being rate limited.', retry_after: seconds, global: false },
      };
    case 'mattermost':
      return {
        status: 429,
        headers: {
          'X-Ratelimit-Limit': '10',
          'X-Ratelimit-Remaining': '0',
          'X-Ratelimit-Reset': String(seconds),
        },
        body: 'limit exceeded',
      };
    default:
      return { status: 429, headers: { 'Retry-After': String(seconds) }, body: 'rate_limited' };
  }
}

/**
 * An incoming-webhook receiver of one kind on loopback: it records every request and answers what the script says
 * next (then what the service answers an accepted post).
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  private readonly script: Answer[] = [];

  private constructor(
    readonly kind: WebhookKind,
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(
    kind: WebhookKind,
    path = `/hooks/${kind}/T000/B000/secret-${kind}-token`,
  ): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // recorded as text
        }
        const self = receiver as WebhookReceiver;
        const answer = self.script.shift() ?? ACCEPTED[kind];
        self.received.push({ path: req.url ?? '', headers: req.headers, body, status: answer.status });
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(
          answer.body === undefined
            ? undefined
            : typeof answer.body === 'string'
              ? answer.body
              : JSON.stringify(answer.body),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    receiver = new WebhookReceiver(kind, server, `http://127.0.0.1:${port}${path}`);
    return receiver;
  }

  /** The next answers, in order; once they are used, posts are accepted. */
  answer(...answers: Answer[]): void {
    this.script.push(...answers);
  }

  /** The bodies of the posts it accepted. */
  accepted(): unknown[] {
    return this.received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.body);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
