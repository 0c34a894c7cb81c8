import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ApiCall {
  method: string;
  token: string | null;
  body: Record<string, unknown>;
  /** chat.postMessage: the ts this fake answered with. */
  ts?: string;
  /** Held open without an answer (see `holdNext`). */
  held?: boolean;
  /** The client closed the request before it was answered (a timeout abandoned it). */
  abandoned?: boolean;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  json: unknown;
}

/** How a scripted call is answered: a reply, or never (the request is held open until the client gives up). */
export type Scripted = Reply | 'hold';

/**
 * A stand-in for Slack on loopback: the Web API (`SLACK_API_URL` points here) and `response_url` receivers. It records
 * every call; a test can change how a method answers (errors, 429 with Retry-After) to see what the app does.
 */
export class FakeSlack {
  readonly calls: ApiCall[] = [];
  readonly responses: { id: string; body: Record<string, unknown> }[] = [];
  readonly handlers = new Map<string, (call: ApiCall) => Reply>();
  /** Answers for the next calls of a method, used up in order before `handlers` and the defaults. */
  readonly scripted = new Map<string, Scripted[]>();
  /** Waits this long before answering any Web API call (so that calls overlap). */
  answerDelayMs = 0;
  /** chat.postMessage calls open now per channel, and the most ever open at once per channel. */
  readonly openPosts = new Map<string, number>();
  readonly mostOpenPosts = new Map<string, number>();
  /** Channels the bot is not a member of: conversations.info says so, and a post there fails with not_in_channel. */
  readonly notMemberOf = new Set<string>();
  /** Channels the bot cannot see (private ones it is not in): conversations.info answers channel_not_found. */
  readonly hiddenChannels = new Set<string>();
  private server!: Server;
  private ts = 1700000000;
  port = 0;

  static async start(): Promise<FakeSlack> {
    const fake = new FakeSlack();
    fake.server = createServer((req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  responseUrl(id: string): string {
    return `http://127.0.0.1:${this.port}/response/${id}`;
  }

  callsTo(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** The next `times` calls of `method` get `reply` (e.g. 429 with Retry-After, or 500). */
  answerNext(method: string, times: number, reply: Reply): void {
    this.script(
      method,
      Array.from({ length: times }, () => reply),
    );
  }

  /** The next `times` calls of `method` are held open and never answered. */
  holdNext(method: string, times = 1): void {
    this.script(
      method,
      Array.from({ length: times }, (): Scripted => 'hold'),
    );
  }

  private script(method: string, answers: Scripted[]): void {
    this.scripted.set(method, [...(this.scripted.get(method) ?? []), ...answers]);
  }

  /** Resolves when `predicate` holds, checking after every request; fails after `ms`. */
  async waitFor(predicate: () => boolean | Promise<boolean>, ms = 10000): Promise<void> {
    const start = Date.now();
    while (!(await predicate())) {
      if (Date.now() - start > ms) throw new Error('FakeSlack.waitFor: condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const body = parseBody(raw, req.headers['content-type'] ?? '');
    const url = req.url ?? '';
    const send = (reply: Reply) => {
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.json));
    };
    if (url.startsWith('/response/')) {
      this.responses.push({ id: url.slice('/response/'.length), body });
      send({ json: { ok: true } });
      return;
    }
    const method = url.replace(/^\/api\//, '').split('?')[0] ?? '';
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ')
      ? auth.slice(7)
      : typeof body.token === 'string'
        ? body.token
        : null;
    const call: ApiCall = { method, token, body };
    this.calls.push(call);
    if (method === 'chat.postMessage') this.trackPost(call, res);
    const scripted = this.scripted.get(method)?.shift();
    if (scripted === 'hold') {
      call.held = true;
      return;
    }
    if (this.answerDelayMs > 0) await new Promise((r) => setTimeout(r, this.answerDelayMs));
    if (res.destroyed) return;
    if (scripted) return send(scripted);
    const handler = this.handlers.get(method);
    if (handler) return send(handler(call));
    switch (method) {
      case 'auth.test':
        return send({
          json: {
            ok: true,
            url: 'https://test.slack.com/',
            team: 'Test',
            user: 'mtasts',
            team_id: 'T1',
            user_id: 'UBOT',
            bot_id: 'BBOT',
          },
        });
      case 'conversations.info': {
        const channel = String(body.channel ?? '');
        if (this.hiddenChannels.has(channel))
          return send({ json: { ok: false, error: 'channel_not_found' } });
        return send({
          json: {
            ok: true,
            channel: { id: channel, is_channel: true, is_member: !this.notMemberOf.has(channel) },
          },
        });
      }
      case 'users.info': {
        // Every user is a full member of the workspace unless a test's handler says otherwise.
        const id = String(body.user ?? '');
        return send({
          json: {
            ok: true,
            user: {
              id,
              team_id: 'T1',
              name: id,
              deleted: false,
              is_bot: false,
              is_restricted: false,
              is_ultra_restricted: false,
            },
          },
        });
      }
      case 'chat.postMessage':
        if (this.notMemberOf.has(String(body.channel)) || this.hiddenChannels.has(String(body.channel)))
          return send({ json: { ok: false, error: 'not_in_channel' } });
        call.ts = `${this.ts++}.000100`;
        return send({ json: { ok: true, channel: body.channel, ts: call.ts, message: { text: body.text } } });
      default:
        return send({ json: { ok: true } });
    }
  }

  /** Counts the posts open per channel until each is answered or dropped by the client. */
  private trackPost(call: ApiCall, res: ServerResponse): void {
    const channel = String(call.body.channel);
    const open = (this.openPosts.get(channel) ?? 0) + 1;
    this.openPosts.set(channel, open);
    this.mostOpenPosts.set(channel, Math.max(open, this.mostOpenPosts.get(channel) ?? 0));
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      this.openPosts.set(channel, (this.openPosts.get(channel) ?? 1) - 1);
      if (!res.writableFinished) call.abandoned = true;
    };
    res.once('finish', end);
    res.once('close', end);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType.includes('application/json')) {
    try {
      return JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return { raw };
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if ((k === 'blocks' || k === 'attachments' || k === 'view') && v.startsWith('[')) {
      try {
        out[k] = JSON.parse(v);
        continue;
      } catch {
        // keep the raw string
      }
    }
    out[k] = v;
  }
  return out;
}

/** Sends a request to the app as Slack does: form-encoded, signed with v0 HMAC-SHA256 over `v0:timestamp:body`. */
export async function sendSigned(
  url: string,
  secret: string,
  fields: Record<string, string>,
  options: { timestamp?: number; signature?: string; contentType?: string; rawBody?: string } = {},
): Promise<{ status: number; body: string; json: () => Record<string, unknown> }> {
  const body = options.rawBody ?? new URLSearchParams(fields).toString();
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature =
    options.signature ?? `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': options.contentType ?? 'application/x-www-form-urlencoded',
      'X-Slack-Request-Timestamp': String(timestamp),
      'X-Slack-Signature': signature,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** The form fields of a slash command as Slack posts them. */
export function slashCommand(
  text: string,
  where: { team?: string; channel?: string; user?: string; responseUrl: string },
): Record<string, string> {
  return {
    token: 'legacy-verification-token',
    team_id: where.team ?? 'T1',
    team_domain: 'test',
    channel_id: where.channel ?? 'C1',
    channel_name: 'mail-ops',
    user_id: where.user ?? 'U1',
    user_name: 'admin',
    command: '/mtasts',
    text,
    api_app_id: 'A1',
    is_enterprise_install: 'false',
    response_url: where.responseUrl,
    trigger_id: '1.2.3',
  };
}
