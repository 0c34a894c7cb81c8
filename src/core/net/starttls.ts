import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type CertificateEvidence, certificateEvidence } from './certificate.js';
import {
  abortError,
  hostPort,
  type NetError,
  netError,
  tcpConnect,
  tlsHandshake,
  whenAborted,
} from './connect.js';

export interface StarttlsProbeOptions {
  /** The MX host name: SNI and the name the certificate must be valid for. */
  host: string;
  address: string;
  port?: number;
  /** Name sent in EHLO. */
  ehloName: string;
  ca?: string[];
  timeoutMs: number;
  now: Date;
  /** Ends the probe where it stands (connect, any reply wait, the handshake), closing the connection. */
  signal?: AbortSignal;
}

export interface StarttlsEvidence {
  host: string;
  address: string;
  port: number;
  connected: boolean;
  banner: string | null;
  /** EHLO keywords the server announced before STARTTLS (upper case). */
  extensions: string[];
  starttlsOffered: boolean;
  tls: { protocol: string; cipher: string; certificate: CertificateEvidence | null } | null;
  /** Which step failed, and how; null when the probe ran to the end. */
  failedAt: 'connect' | 'banner' | 'ehlo' | 'starttls' | 'tls' | null;
  error: NetError | null;
  durationMs: number;
}

const MAX_REPLY_BYTES = 16 * 1024;

/**
 * Probes one address of one MX host as a sending MTA does: TCP to port 25, banner, EHLO, STARTTLS, then a TLS
 * handshake with SNI. TLS versions down to 1.0 are offered so that an outdated server is named, not just failed;
 * the check then judges the version. Ends with QUIT. Never throws. When `signal` aborts, the step under way fails with
 * an `aborted` error and the connection is closed; an already aborted signal makes no connection.
 */
export async function probeStarttls(options: StarttlsProbeOptions): Promise<StarttlsEvidence> {
  const port = options.port ?? 25;
  const started = Date.now();
  const evidence: StarttlsEvidence = {
    host: options.host,
    address: options.address,
    port,
    connected: false,
    banner: null,
    extensions: [],
    starttlsOffered: false,
    tls: null,
    failedAt: null,
    error: null,
    durationMs: 0,
  };
  const where = `${options.host} at ${hostPort(options.address, port)}`;
  const probe: Probe = { options, port, evidence, step: 'connect', socket: null, tls: null, reader: null };
  try {
    if (await greet(probe)) await startTls(probe);
  } catch (err) {
    evidence.failedAt = probe.step;
    evidence.error = netError(err, `${probe.step} with ${where}`);
  } finally {
    probe.reader?.detach();
    probe.tls?.destroy();
    probe.socket?.destroy();
    evidence.durationMs = Date.now() - started;
  }
  return evidence;
}

/** One probe under way: the step it is at, and what it has open (closed by probeStarttls whatever happens). */
interface Probe {
  readonly options: StarttlsProbeOptions;
  readonly port: number;
  readonly evidence: StarttlsEvidence;
  step: NonNullable<StarttlsEvidence['failedAt']>;
  socket: Socket | null;
  tls: TLSSocket | null;
  reader: ReplyReader | null;
}

/** Connect, banner, EHLO. True when the server offers STARTTLS; otherwise QUIT is sent and the probe ends there. */
async function greet(probe: Probe): Promise<boolean> {
  const { options, evidence } = probe;
  const socket = await tcpConnect(options.address, probe.port, options.timeoutMs, options.signal);
  probe.socket = socket;
  evidence.connected = true;
  const reader = new ReplyReader(socket, options.timeoutMs, options.signal);
  probe.reader = reader;
  probe.step = 'banner';
  const banner = await reader.read();
  evidence.banner = banner.lines.join('\n');
  if (banner.code !== 220) throw protocolError(`the server greeted with ${banner.code} instead of 220`);
  probe.step = 'ehlo';
  socket.write(`EHLO ${options.ehloName}\r\n`);
  const ehlo = await reader.read();
  if (ehlo.code !== 250)
    throw protocolError(`EHLO was answered with ${ehlo.code} ${ehlo.lines[0] ?? ''}`.trim());
  evidence.extensions = ehlo.lines.slice(1).map((l) => l.split(' ')[0]?.toUpperCase() ?? '');
  evidence.starttlsOffered = evidence.extensions.includes('STARTTLS');
  probe.step = 'starttls';
  if (evidence.starttlsOffered) return true;
  await quit(socket, reader);
  evidence.failedAt = 'starttls';
  return false;
}

/** STARTTLS, the TLS handshake with SNI (its result recorded), then QUIT inside TLS. */
async function startTls(probe: Probe): Promise<void> {
  const { options, evidence, socket, reader } = probe;
  if (!socket || !reader) throw protocolError('no SMTP session to start TLS on');
  socket.write('STARTTLS\r\n');
  const ready = await reader.read();
  if (ready.code !== 220)
    throw protocolError(`STARTTLS was answered with ${ready.code} ${ready.lines[0] ?? ''}`.trim());
  reader.detach();
  probe.step = 'tls';
  const tls = await tlsHandshake(
    { socket },
    {
      servername: options.host,
      timeoutMs: options.timeoutMs,
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  probe.tls = tls;
  evidence.tls = {
    protocol: tls.getProtocol() ?? 'unknown',
    cipher: tls.getCipher()?.name ?? 'unknown',
    certificate: certificateEvidence(tls, options.host, options.now),
  };
  await quit(tls, new ReplyReader(tls, options.timeoutMs, options.signal));
}

/** Sends QUIT and waits briefly for the answer; a server that just closes is fine. */
async function quit(socket: Socket, reader: ReplyReader): Promise<void> {
  try {
    socket.write('QUIT\r\n');
    await reader.read();
  } catch {
    // QUIT is a courtesy: its failure says nothing about the server.
  } finally {
    reader.detach();
  }
}

function protocolError(message: string): Error {
  return Object.assign(new Error(message), { code: 'EPROTO_SMTP' });
}

interface Reply {
  code: number;
  lines: string[];
}

/** Reads SMTP replies (RFC 5321 §4.2: "250-" continues, "250 " ends), capped in size and time, until `signal` aborts. */
class ReplyReader {
  private buffer = '';
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.buffer += chunk.toString('latin1');
    if (this.buffer.length > MAX_REPLY_BYTES) this.fail(protocolError('the server sent an overlong reply'));
    else this.deliver();
  };
  private readonly onEnd = () =>
    this.fail(Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' }));
  private readonly onError = (err: Error) => this.fail(err);
  private readonly unlisten: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    signal: AbortSignal | undefined,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    this.unlisten = whenAborted(signal, () => this.fail(abortError('SMTP reply')));
  }

  read(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const timer = setTimeout(
        () =>
          this.fail(
            Object.assign(new Error(`no SMTP reply within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }),
          ),
        this.timeoutMs,
      );
      this.waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.deliver();
    });
  }

  /** Stops listening, e.g. before the socket is handed to TLS. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.unlisten();
  }

  private deliver(): void {
    if (!this.waiting) return;
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf('\n', offset);
      if (end < 0) return; // wait for more
      const line = this.buffer.slice(offset, end).replace(/\r$/, '');
      offset = end + 1;
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) {
        this.fail(protocolError(`the server sent a line that is not an SMTP reply: "${line.slice(0, 80)}"`));
        return;
      }
      lines.push(`${m[3] ?? ''}`);
      if (m[2] !== '-') {
        this.buffer = this.buffer.slice(offset);
        const waiting = this.waiting;
        this.waiting = null;
        waiting.resolve({ code: Number(m[1]), lines });
        return;
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(this.failure);
  }
}
