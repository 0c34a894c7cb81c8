import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import type { ParsedMail } from 'mailparser';
import { clientKey } from '../core/net/client-key.js';
import { daysAgo } from '../core/tlsrpt-dates.js';
import { bodyKind, type TlsRptReport } from '../core/tlsrpt-report.js';
import type { FailureRatePayload } from '../store/monitor-state.js';
import type { NewAlert } from '../store/outbox.js';
import { isActive, type Subscription, type SubscriptionStore } from '../store/subscriptions.js';
import type { DayAlerts, TlsRptStore } from '../store/tlsrpt.js';
import { DiskGuard, type Rate, RateLimiter } from './guards.js';
import { type ReportParser, reportParser } from './parser.js';

export interface IntakeSettings {
  /** Keep reports about domains no channel watches. */
  keepUnwatched: boolean;
  /** Failure share (0-1) of a day's reported sessions that triggers an alert. */
  alertRate: number;
  /** Fewest sessions in a day for the rate to count (a single failed session is not a trend). */
  alertMinSessions: number;
  /** The failure-rate alert is about recent days only: at most this many days before today (UTC). */
  alertMaxAgeDays: number;
  /** Largest body, and largest report once decompressed, in bytes. */
  maxBytes: number;
  /** Largest session count a summary or failure detail may hold. */
  maxSessions: number;
  /** Longest period a report may cover, in days. */
  maxPeriodDays: number;
  /** A body not decoded within this is refused (503) and its worker replaced. */
  parseTimeoutMs: number;
  /** Reports over HTTPS per client address (IPv6: per /64), and per policy domain: token buckets in memory. */
  clientRate: Rate;
  domainRate: Rate;
  /** Reports are refused while the database's file system has less free space than this. */
  minFreeMb: number;
}

export interface IntakeDeps {
  store: TlsRptStore;
  subscriptions: SubscriptionStore;
  settings: IntakeSettings;
  now: () => Date;
  /** Called after a report is stored, e.g. to deliver the alerts it queued. */
  onStored?: () => void;
}

export interface IntakeResult {
  status: 200 | 201 | 400 | 413 | 415 | 429 | 503 | 507;
  message: string;
  /** Seconds after which the sender may try again (Retry-After). */
  retryAfter?: number;
}

/** How long a sender is asked to wait while the disk is short of space. */
const DISK_RETRY_SECONDS = 600;

/**
 * The TLS-RPT intake: the HTTPS endpoint and the e-mail path share it. A body is read up to its cap, decoded in a
 * worker thread under a time limit, bounded to what a sender can have reported, rate-limited (HTTPS: per client and
 * per policy domain), and stored whole or not at all (with the alert it causes, once per domain and day) while the disk
 * has room. Never throws on anything a sender can send.
 */
export class Intake {
  private readonly clients: RateLimiter;
  private readonly domains: RateLimiter;
  private readonly disk: DiskGuard;

  constructor(
    private readonly deps: IntakeDeps,
    private readonly parser: ReportParser = reportParser,
  ) {
    this.clients = new RateLimiter(deps.settings.clientRate);
    this.domains = new RateLimiter(deps.settings.domainRate);
    const file = deps.store.location();
    this.disk = new DiskGuard(file ? dirname(file) : null, deps.settings.minFreeMb * 1024 * 1024);
  }

  /** One report body (gzip or JSON), as it came by HTTPS or in an e-mail. */
  async ingest(
    body: Buffer,
    contentType: string | null | undefined,
    source: 'https' | 'email',
  ): Promise<IntakeResult> {
    const kind = bodyKind(contentType, body);
    if (!kind) {
      return {
        status: 415,
        message: `unsupported media type "${contentType ?? ''}": send application/tlsrpt+gzip or application/tlsrpt+json`,
      };
    }
    const s = this.deps.settings;
    const decoded = await this.parser.parse(body, kind, {
      maxBytes: s.maxBytes,
      maxSessions: s.maxSessions,
      maxPeriodDays: s.maxPeriodDays,
      now: this.deps.now(),
      timeoutMs: s.parseTimeoutMs,
    });
    if (!decoded.ok) {
      return {
        status: decoded.status,
        message: decoded.error,
        ...('retryAfter' in decoded ? { retryAfter: decoded.retryAfter } : {}),
      };
    }
    return this.keep(decoded.report, source);
  }

  /** A report e-mail (multipart/report; report-type="tlsrpt"): finds the report part and takes it in. */
  async email(raw: Buffer): Promise<IntakeResult> {
    let mail: ParsedMail;
    try {
      // Loaded on the first e-mail, not at start: the app and `mtasts check` start without the MIME parser.
      const { simpleParser } = await import('mailparser');
      mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
    } catch (err) {
      return { status: 400, message: `the message could not be parsed as MIME: ${(err as Error).message}` };
    }
    const part = mail.attachments.find(
      (a) =>
        REPORT_PART.test(a.contentType) &&
        (/tlsrpt/i.test(a.contentType) || /\.json(\.gz)?$|\.gz$/i.test(a.filename ?? '')),
    );
    if (!part)
      return {
        status: 400,
        message: 'no TLS-RPT report is attached (expected an application/tlsrpt+gzip or +json part)',
      };
    return this.ingest(part.content, part.contentType, 'email');
  }

  /** POST /tlsrpt (RFC 8460 §5.3): limited per client before the body is read, the body capped while it is read. */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const wait = this.clients.take([clientKey(req.socket.remoteAddress)], this.deps.now().getTime());
      if (wait > 0) {
        answer(req, res, {
          status: 429,
          message: `too many reports from this address; try again in ${wait} s`,
          retryAfter: wait,
        });
        return;
      }
      void this.serve(req, res);
    };
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const max = this.deps.settings.maxBytes;
    const body = await readCapped(req, max);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      answer(req, res, { status: 413, message: `the body is larger than ${max} bytes` });
      return;
    }
    try {
      answer(req, res, await this.ingest(body, req.headers['content-type'], 'https'));
    } catch (err) {
      answer(req, res, {
        status: 503,
        message: 'the report could not be stored; try again later',
        retryAfter: 60,
      });
      process.stderr.write(`tlsrpt: storing a report failed: ${(err as Error).message}\n`);
    }
  }

  /** Stores a decoded report if a channel watches one of its domains, their rate allows and the disk has room. */
  private async keep(report: TlsRptReport, source: 'https' | 'email'): Promise<IntakeResult> {
    const { store, subscriptions, settings } = this.deps;
    const now = this.deps.now();
    const domains = [...new Set(report.policies.map((p) => p.policyDomain))];
    const subscribers = new Map<string, Subscription[]>();
    for (const d of domains) subscribers.set(d, await subscriptions.forDomain(d));
    const watched = domains.filter((d) => (subscribers.get(d) ?? []).length > 0);
    if (watched.length === 0 && !settings.keepUnwatched) {
      return {
        status: 200,
        message: `report ${report.reportId} ignored: no channel watches ${domains.join(', ')}`,
      };
    }
    // Per domain over HTTPS, where anyone may post; e-mail comes through the owner's own mail system, and a mailbox
    // read after days away holds many reports per domain at once.
    const wait =
      source === 'https' ? this.domains.take(settings.keepUnwatched ? domains : watched, now.getTime()) : 0;
    if (wait > 0) {
      return {
        status: 429,
        message: `too many reports about ${watched.join(', ') || domains.join(', ')}; try again in ${wait} s`,
        retryAfter: wait,
      };
    }
    if (this.disk.shortOfSpace(now.getTime()) !== null) {
      return {
        status: 507,
        message: 'the server is short of disk space and takes no reports for now; try again later',
        retryAfter: DISK_RETRY_SECONDS,
      };
    }
    const outcome = await store.save(report, source, now, () =>
      this.alertsFor(report, watched, subscribers, now),
    );
    if (outcome === 'duplicate')
      return {
        status: 200,
        message: `report ${report.reportId} from ${report.organization} was already stored`,
      };
    this.deps.onStored?.();
    return { status: 201, message: `report ${report.reportId} from ${report.organization} stored` };
  }

  /**
   * The failure-rate alert for each watched domain whose sessions on the report's day (a recent one) fail at or over
   * the threshold; the store queues it once per domain and day.
   */
  private async alertsFor(
    report: TlsRptReport,
    watched: string[],
    subscribers: Map<string, Subscription[]>,
    now: Date,
  ): Promise<DayAlerts[]> {
    const { store, settings } = this.deps;
    const day = report.day;
    if (daysAgo(day, now) > settings.alertMaxAgeDays) return [];
    const all: DayAlerts[] = [];
    for (const domain of watched) {
      const summary = await store.daySummary(domain, day);
      const total = summary.successful + summary.failed;
      const rate = total === 0 ? 0 : summary.failed / total;
      const alerts: NewAlert[] = [];
      if (total >= settings.alertMinSessions && rate >= settings.alertRate) {
        const payload: FailureRatePayload = {
          kind: 'tlsrpt-rate',
          domain,
          summary,
          rate,
          threshold: settings.alertRate,
        };
        for (const s of (subscribers.get(domain) ?? []).filter((x) => isActive(x, now))) {
          alerts.push({
            eventKey: `tlsrpt-rate@${day}`,
            teamId: s.teamId,
            channelId: s.channelId,
            threadEventKey: null,
            broadcast: false,
            payload,
          });
        }
      }
      all.push({ domain, day, alerts });
    }
    return all;
  }
}

const REPORT_PART = /^application\/(tlsrpt\+gzip|tlsrpt\+json|gzip|x-gzip|json|octet-stream)$/i;

/**
 * Reads a request body up to `max` bytes. A larger one (declared or sent) stops the reading there: what was read is
 * dropped and no more is taken. A request broken off by the client is dropped too.
 */
function readCapped(req: IncomingMessage, max: number): Promise<Buffer | 'too-large' | 'aborted'> {
  if (Number(req.headers['content-length'] ?? '0') > max) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | 'too-large' | 'aborted') => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      chunks.length = 0;
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        done('too-large');
      } else chunks.push(chunk);
    };
    const onEnd = () => done(Buffer.concat(chunks));
    const onClose = () => done('aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

/**
 * Answers in plain text and closes the connection. When the request body was not read to its end (refused before or
 * while reading), the connection is half-closed once the answer is out, and dropped a moment later whatever the
 * client still sends.
 */
function answer(req: IncomingMessage, res: ServerResponse, result: IntakeResult): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(result.status, {
    'Content-Type': 'text/plain; charset=utf-8',
    Connection: 'close',
    ...(result.retryAfter !== undefined ? { 'Retry-After': String(result.retryAfter) } : {}),
  });
  res.end(`${result.message}\n`);
  if (req.complete) return;
  res.once('finish', () => {
    const socket = req.socket;
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}

const intakes = new WeakMap<IntakeDeps, Intake>();

/** The intake of a set of dependencies: one per set, so that callers sharing them share the rate limits. */
function intakeFor(deps: IntakeDeps): Intake {
  let intake = intakes.get(deps);
  if (!intake) {
    intake = new Intake(deps);
    intakes.set(deps, intake);
  }
  return intake;
}

/** The POST /tlsrpt handler, `(req, res)` as any Node HTTP server or router calls it. */
export function tlsrptHandler(deps: IntakeDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return intakeFor(deps).handler();
}

/** Takes in one report body; see Intake.ingest. */
export function ingestReport(
  body: Buffer,
  contentType: string | null | undefined,
  source: 'https' | 'email',
  deps: IntakeDeps,
): Promise<IntakeResult> {
  return intakeFor(deps).ingest(body, contentType, source);
}

/** Takes in one report e-mail; see Intake.email. */
export function ingestEmail(raw: Buffer, deps: IntakeDeps): Promise<IntakeResult> {
  return intakeFor(deps).email(raw);
}
