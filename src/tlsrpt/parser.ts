import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DecodeResult, ReportLimits } from '../core/tlsrpt-report.js';
import type { ParseJob, WorkerMessage } from './parse-worker.js';

export interface ParseOptions extends ReportLimits {
  /** A body still being decoded after this long is abandoned (the worker is replaced) and refused with 503. */
  timeoutMs: number;
}

export type ParseOutcome = DecodeResult | { ok: false; status: 503; error: string; retryAfter: number };

interface Pending {
  job: ParseJob;
  timeoutMs: number;
  resolve: (outcome: ParseOutcome) => void;
}

/** A worker that has not said it is ready after this long is replaced. */
const STARTUP_MS = 30_000;
/**
 * Bytes of bodies waiting for the worker; beyond this, 503. Real reports are a few KB, so a burst of thousands (senders
 * report at midnight UTC) waits its turn, while bodies at the size cap cannot pile up past this much memory.
 */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Heap of the worker: a report at the largest size cap (16 MiB) fits many times over. */
const WORKER_HEAP_MB = 256;

/**
 * Decodes report bodies in one worker thread, one at a time, each under a time limit: the main thread (which
 * acknowledges Slack's commands within 3 s) never runs JSON.parse or zod on a sender's body. A worker that overruns,
 * runs out of memory or dies is replaced; the body it held is refused and the others go on.
 */
export class ReportParser {
  private worker: Worker | null = null;
  private ready = false;
  private startTimer: NodeJS.Timeout | null = null;
  private readonly queue: Pending[] = [];
  private running: { pending: Pending; timer: NodeJS.Timeout } | null = null;
  private lastError: Error | null = null;
  private nextId = 1;
  private queuedBytes = 0;

  parse(body: Uint8Array, kind: 'gzip' | 'json', options: ParseOptions): Promise<ParseOutcome> {
    if (this.queuedBytes + body.length > MAX_QUEUED_BYTES) {
      return Promise.resolve({
        ok: false,
        status: 503,
        error: 'too many reports are waiting to be read; try again shortly',
        retryAfter: 5,
      });
    }
    // A copy of its own: the pooled buffer a small Buffer lives in must not be handed to the worker.
    const copy = new Uint8Array(body);
    const job: ParseJob = {
      id: this.nextId++,
      body: copy,
      kind,
      maxBytes: options.maxBytes,
      maxSessions: options.maxSessions,
      maxPeriodDays: options.maxPeriodDays,
      nowMs: options.now.getTime(),
    };
    return new Promise((resolve) => {
      this.queuedBytes += copy.length;
      this.queue.push({ job, timeoutMs: options.timeoutMs, resolve });
      this.pump();
    });
  }

  /** Stops the worker; bodies waiting are refused with 503. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.forget(worker);
    this.failAll('the report reader stopped');
    await worker?.terminate();
  }

  private pump(): void {
    if (this.running) return;
    if (this.queue.length === 0) {
      this.worker?.unref();
      return;
    }
    const worker = this.worker ?? this.spawn();
    if (!worker) return;
    worker.ref();
    const pending = this.ready ? this.queue.shift() : undefined;
    if (!pending) return;
    this.queuedBytes -= pending.job.body.length;
    const timer = setTimeout(() => this.overrun(), pending.timeoutMs);
    this.running = { pending, timer };
    worker.postMessage(pending.job, [pending.job.body.buffer as ArrayBuffer]);
  }

  private spawn(): Worker | null {
    let worker: Worker;
    try {
      worker = startWorker();
    } catch (err) {
      this.failAll(`the report reader could not start (${(err as Error).message})`);
      return null;
    }
    this.worker = worker;
    this.ready = false;
    this.lastError = null;
    this.startTimer = setTimeout(
      () => void this.replace(worker, 'the report reader did not start'),
      STARTUP_MS,
    );
    worker.on('message', (m: WorkerMessage) => this.onMessage(worker, m));
    worker.on('error', (err) => {
      this.lastError = err;
    });
    worker.on('exit', () => this.onExit(worker));
    return worker;
  }

  private onMessage(worker: Worker, m: WorkerMessage): void {
    if (worker !== this.worker) return;
    if ('ready' in m) {
      this.ready = true;
      if (this.startTimer) clearTimeout(this.startTimer);
      this.pump();
      return;
    }
    const running = this.running;
    if (!running || running.pending.job.id !== m.id) return;
    clearTimeout(running.timer);
    this.running = null;
    running.pending.resolve(m.result);
    this.pump();
  }

  private onExit(worker: Worker): void {
    if (worker !== this.worker) return;
    const err = this.lastError;
    if (!this.ready) {
      // It died starting up: starting another would only die the same way.
      this.forget(worker);
      this.failAll(`the report reader could not start (${err?.message ?? 'it stopped'})`);
      return;
    }
    const outOfMemory = (err as NodeJS.ErrnoException | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    this.finishRunning(
      outOfMemory
        ? { ok: false, status: 413, error: 'the report needs more memory to read than it is allowed' }
        : {
            ok: false,
            status: 400,
            error: `the report could not be read (${err?.message ?? 'the reader stopped'})`,
          },
    );
    this.forget(worker);
    this.pump();
  }

  private overrun(): void {
    const limit = this.running?.pending.timeoutMs ?? 0;
    void this.replace(this.worker, `the report was not read within ${limit} ms; try again later`);
  }

  /** Ends a worker that overran or never started: the body it held gets 503, the queue goes on in a new one. */
  private async replace(worker: Worker | null, why: string): Promise<void> {
    if (!worker || worker !== this.worker) return;
    this.forget(worker);
    this.finishRunning({ ok: false, status: 503, error: why, retryAfter: 60 });
    if (this.running === null) this.pump();
    await worker.terminate();
  }

  private forget(worker: Worker | null): void {
    if (worker && worker === this.worker) {
      this.worker = null;
      this.ready = false;
      if (this.startTimer) clearTimeout(this.startTimer);
      this.startTimer = null;
    }
  }

  private finishRunning(outcome: ParseOutcome): void {
    const running = this.running;
    if (!running) return;
    clearTimeout(running.timer);
    this.running = null;
    running.pending.resolve(outcome);
  }

  private failAll(why: string): void {
    this.finishRunning({ ok: false, status: 503, error: why, retryAfter: 60 });
    for (const p of this.queue.splice(0)) p.resolve({ ok: false, status: 503, error: why, retryAfter: 60 });
    this.queuedBytes = 0;
  }
}

/**
 * The worker runs parse-worker.js next to this file. Run from the TypeScript sources (the tests, tsx), it loads
 * parse-worker.ts through tsx's loader (its `tsx/esm/api` entry), as the parent does.
 */
function startWorker(): Worker {
  const options = { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } };
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./parse-worker.js', here), options);
  const pkg = createRequire(here).resolve('tsx/package.json');
  const entry = JSON.parse(readFileSync(pkg, 'utf8')).exports['./esm/api'].import.default as string;
  const api = new URL(entry, pathToFileURL(pkg)).href;
  const target = new URL('./parse-worker.ts', here).href;
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(target)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

/** The process's one report reader, started on first use; it does not keep the process alive when idle. */
export const reportParser = new ReportParser();
