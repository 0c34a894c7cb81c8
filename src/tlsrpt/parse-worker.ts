import { parentPort } from 'node:worker_threads';
import { type DecodeResult, decodeReport } from '../core/tlsrpt-report.js';

/** One body to decode, as the intake posts it to this worker thread. */
export interface ParseJob {
  id: number;
  body: Uint8Array;
  kind: 'gzip' | 'json';
  maxBytes: number;
  maxSessions: number;
  maxPeriodDays: number;
  nowMs: number;
}

export type WorkerMessage = { ready: true } | { id: number; result: DecodeResult };

/**
 * The worker thread that decodes reports (inflate, nesting check, JSON.parse, zod), so that a large or hostile body
 * never holds the main thread, where Slack's commands are acknowledged.
 */
const port = parentPort;
if (port) {
  port.on('message', (job: ParseJob) => {
    const result = decodeReport(job.body, job.kind, {
      maxBytes: job.maxBytes,
      maxSessions: job.maxSessions,
      maxPeriodDays: job.maxPeriodDays,
      now: new Date(job.nowMs),
    });
    port.postMessage({ id: job.id, result } satisfies WorkerMessage);
  });
  port.postMessage({ ready: true } satisfies WorkerMessage);
}
