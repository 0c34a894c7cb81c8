import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { envelopeProblem, isSslCheck } from './input.js';

/** Slack's window: a request signed more than 5 minutes before or after now is refused. */
export const SIGNATURE_WINDOW_S = 300;
/** An unsigned request is read only this far (Slack's `ssl_check=1` is unsigned and tiny). */
const UNSIGNED_BYTES = 1024;

/**
 * The signatures of verified requests, each kept until its timestamp leaves the window (after that the timestamp
 * alone refuses it), so that a captured request cannot be delivered twice. Bounded: when full of signatures that are
 * all still valid, new requests are refused (503) rather than old ones forgotten. Per process.
 */
export class ReplayMemory {
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  /** 'fresh' (now remembered), 'replay' (seen before), or 'full'. */
  remember(signature: string, timestampS: number, nowMs: number): 'fresh' | 'replay' | 'full' {
    this.forget(nowMs, false);
    if (this.seen.has(signature)) return 'replay';
    if (this.seen.size >= this.capacity) {
      this.forget(nowMs, true);
      if (this.seen.size >= this.capacity) return 'full';
    }
    this.seen.set(signature, (timestampS + SIGNATURE_WINDOW_S + 1) * 1000);
    return 'fresh';
  }

  get size(): number {
    return this.seen.size;
  }

  /** Drops expired signatures: from the oldest while they are expired, or all of them (`everywhere`). */
  private forget(nowMs: number, everywhere: boolean): void {
    for (const [signature, until] of this.seen) {
      if (until > nowMs) {
        if (everywhere) continue;
        return;
      }
      this.seen.delete(signature);
    }
  }
}

/** Why a timestamp header is refused, or null when it is within 5 minutes of now. */
export function timestampProblem(header: string | null, nowMs: number): string | null {
  if (header === null || !/^\d{1,12}$/.test(header)) return 'missing or malformed X-Slack-Request-Timestamp';
  const skew = nowMs / 1000 - Number(header);
  if (Math.abs(skew) > SIGNATURE_WINDOW_S) {
    return `the request was signed ${Math.round(Math.abs(skew))} s ${skew > 0 ? 'ago' : 'in the future'} (more than 5 minutes)`;
  }
  return null;
}

/** v0 HMAC-SHA256 over `v0:timestamp:body`, compared in constant time. */
export function signatureMatches(
  secret: string,
  timestamp: string,
  body: Buffer,
  signature: string,
): boolean {
  if (!/^v0=[0-9a-fA-F]{64}$/.test(signature)) return false;
  const expected = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest();
  return timingSafeEqual(Buffer.from(signature.slice(3), 'hex'), expected);
}

/** Reads a body of at most `cap` bytes; stops reading at the first byte past it. */
export function readCapped(req: IncomingMessage, cap: number): Promise<Buffer | 'too large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: Buffer | 'too large' | 'aborted') => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        req.pause();
        finish('too large');
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(Buffer.concat(chunks, size)));
    req.once('error', () => finish('aborted'));
    req.once('close', () => finish('aborted'));
  });
}

export interface GuardSettings {
  signingSecret: string;
  maxBodyBytes: number;
  replay: ReplayMemory;
  now: () => number;
  /** Told each refusal (status, reason), e.g. to log it. */
  onRefused?: (status: number, reason: string) => void;
}

/** Refuses a request and closes its connection, so that a body not read is never read. */
export function refuse(
  res: ServerResponse,
  status: number,
  reason: string,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...headers });
  res.end(`${reason}\n`);
}

const header = (req: IncomingMessage, name: string): string | null => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : null;
};

/**
 * POST /slack/events before Bolt sees it: a body over the cap is refused (413) without being read; the timestamp must
 * be within 5 minutes either way and the signature must match the raw body; a signature seen before is a replay; the
 * body must be an object of the shape Bolt reads. The verified body is then handed on (`pass`) with the request.
 */
export async function guardSlackRequest(
  req: IncomingMessage,
  res: ServerResponse,
  s: GuardSettings,
  pass: (body: Buffer) => void,
): Promise<void> {
  const no = (status: number, reason: string, headers?: Record<string, string>) => {
    s.onRefused?.(status, reason);
    refuse(res, status, reason, headers);
  };
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > s.maxBodyBytes) return no(413, `the body is larger than ${s.maxBodyBytes} bytes`);
  const timestamp = header(req, 'x-slack-request-timestamp');
  const signature = header(req, 'x-slack-signature');
  if (timestamp === null || signature === null) return unsigned(req, res, no);
  const late = timestampProblem(timestamp, s.now());
  if (late) return no(401, late);
  const body = await readCapped(req, s.maxBodyBytes);
  if (body === 'aborted') return;
  if (body === 'too large') return no(413, `the body is larger than ${s.maxBodyBytes} bytes`);
  if (!signatureMatches(s.signingSecret, timestamp, body, signature))
    return no(401, 'the signature does not match');
  const seen = s.replay.remember(signature.toLowerCase(), Number(timestamp), s.now());
  if (seen === 'replay') return no(401, 'this signed request was already received');
  if (seen === 'full') return no(503, 'too many requests in the last minutes', { 'Retry-After': '60' });
  const problem = envelopeProblem(body, req.headers['content-type']);
  if (problem) return no(400, `malformed body: ${problem}`);
  pass(body);
}

/** An unsigned request: only Slack's SSL check is answered (200, nothing else done); anything else is 401. */
async function unsigned(
  req: IncomingMessage,
  res: ServerResponse,
  no: (status: number, reason: string) => void,
): Promise<void> {
  if (Number(req.headers['content-length'] ?? UNSIGNED_BYTES + 1) > UNSIGNED_BYTES) {
    return no(401, 'the request is not signed');
  }
  const body = await readCapped(req, UNSIGNED_BYTES);
  if (body === 'aborted') return;
  if (body === 'too large' || !isSslCheck(body, req.headers['content-type'])) {
    return no(401, 'the request is not signed');
  }
  res.writeHead(200).end();
}
