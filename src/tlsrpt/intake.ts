import type { IncomingMessage, ServerResponse } from 'node:http';
import { simpleParser } from 'mailparser';
import type { FailureRatePayload } from '../monitor/payload.js';
import type { NewAlert } from '../store/monitor.js';
import { isActive, type Subscription, type SubscriptionStore } from '../store/subscriptions.js';
import type { TlsRptStore } from '../store/tlsrpt.js';
import { bodyKind, decodeReport, MAX_COMPRESSED_BYTES } from './report.js';

export interface IntakeSettings {
  /** Keep reports about domains no channel watches. */
  keepUnwatched: boolean;
  /** Failure share (0-1) of a day's reported sessions that triggers an alert. */
  alertRate: number;
  /** Fewest sessions in a day for the rate to count (a single failed session is not a trend). */
  alertMinSessions: number;
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
  status: 200 | 201 | 400 | 413 | 415;
  message: string;
}

/**
 * Takes one report body (gzip or JSON): validates it, stores it whole or not at all, and queues an alert in the
 * same transaction when the day's reported failures for a watched domain cross the threshold. Never throws on
 * anything a sender can send.
 */
export function ingestReport(
  body: Buffer,
  contentType: string | null | undefined,
  source: 'https' | 'email',
  deps: IntakeDeps,
): IntakeResult {
  const kind = bodyKind(contentType, body);
  if (!kind) {
    return {
      status: 415,
      message: `unsupported media type "${contentType ?? ''}": send application/tlsrpt+gzip or application/tlsrpt+json`,
    };
  }
  const decoded = decodeReport(body, kind);
  if (!decoded.ok) return { status: decoded.status, message: decoded.error };
  const report = decoded.report;
  const now = deps.now();
  const domains = [...new Set(report.policies.map((p) => p.policyDomain))];
  const subscribers = new Map<string, Subscription[]>(
    domains.map((d) => [d, deps.subscriptions.forDomain(d)]),
  );
  const watched = domains.filter((d) => (subscribers.get(d) ?? []).length > 0);
  if (watched.length === 0 && !deps.settings.keepUnwatched) {
    return {
      status: 200,
      message: `report ${report.reportId} ignored: no channel watches ${domains.join(', ')}`,
    };
  }
  const outcome = deps.store.save(report, source, now, () =>
    watched.map((domain) => {
      const day = report.end.slice(0, 10);
      const summary = deps.store.summary(domain, day);
      const total = summary.successful + summary.failed;
      const rate = total === 0 ? 0 : summary.failed / total;
      const alerts: NewAlert[] = [];
      if (total >= deps.settings.alertMinSessions && rate >= deps.settings.alertRate) {
        const payload: FailureRatePayload = {
          kind: 'tlsrpt-rate',
          domain,
          summary,
          rate,
          threshold: deps.settings.alertRate,
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
      return { domain, alerts };
    }),
  );
  if (outcome === 'duplicate')
    return {
      status: 200,
      message: `report ${report.reportId} from ${report.organization} was already stored`,
    };
  deps.onStored?.();
  return { status: 201, message: `report ${report.reportId} from ${report.organization} stored` };
}

/** POST /tlsrpt (RFC 8460 §5.3): the body capped before it is read whole, answered 201 when stored. */
export function tlsrptHandler(deps: IntakeDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const reply = (status: number, message: string) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
      res.end(`${message}\n`);
    };
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > MAX_COMPRESSED_BYTES) {
      reply(413, `the body is larger than ${MAX_COMPRESSED_BYTES} bytes`);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_COMPRESSED_BYTES) {
        refused = true;
        reply(413, `the body is larger than ${MAX_COMPRESSED_BYTES} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      try {
        const result = ingestReport(Buffer.concat(chunks), req.headers['content-type'], 'https', deps);
        reply(result.status, result.message);
      } catch (err) {
        reply(500, 'the report could not be stored; try again later');
        process.stderr.write(`tlsrpt: storing a report failed: ${(err as Error).message}\n`);
      }
    });
    req.on('error', () => reply(400, 'the request was broken off'));
  };
}

const REPORT_PART = /^application\/(tlsrpt\+gzip|tlsrpt\+json|gzip|x-gzip|json|octet-stream)$/i;

/** A report e-mail (multipart/report; report-type="tlsrpt"): finds the report part and takes it in. */
export async function ingestEmail(raw: Buffer, deps: IntakeDeps): Promise<IntakeResult> {
  let mail: Awaited<ReturnType<typeof simpleParser>>;
  try {
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
  return ingestReport(part.content, part.contentType, 'email', deps);
}
