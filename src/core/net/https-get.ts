import { type IncomingMessage, request } from 'node:http';
import { type CertificateEvidence, certificateEvidence } from './certificate.js';
import { abortError, hostPort, type NetError, netError, tlsHandshake, whenAborted } from './connect.js';

export interface HttpsGetOptions {
  /** The host name: used for SNI, the Host header and certificate validation. */
  host: string;
  /** Its addresses, already resolved and allowed; tried in order until one answers. */
  addresses: readonly string[];
  port?: number;
  /** Path and query, starting with "/". */
  path: string;
  /** The body is refused beyond this many bytes, by Content-Length and by the stream. */
  maxBytes: number;
  accept: string;
  ca?: string[];
  timeoutMs: number;
  now: Date;
  /** Ends the request where it stands (handshake, head, body), closing the connection; no address is tried after. */
  signal?: AbortSignal;
}

export interface HttpsGetAttempt {
  address: string;
  error: NetError | null;
}

export interface HttpsGetEvidence {
  url: string;
  /** Every address tried, and why it failed. */
  attempts: HttpsGetAttempt[];
  /** The address that answered, if any. */
  address: string | null;
  tls: { protocol: string; cipher: string; certificate: CertificateEvidence | null } | null;
  http: {
    status: number;
    contentType: string | null;
    location: string | null;
    contentLength: number | null;
    /** Bytes read, up to the cap (plus one chunk). */
    bytesRead: number;
    tooLarge: boolean;
    /** The body as text when it was read whole and within the cap. */
    body: string | null;
  } | null;
  /** Why no HTTP answer could be read at all (`aborted` when the signal ended it); null when `http` is set. */
  error: NetError | null;
}

/**
 * One HTTPS GET as a strict client makes it: SNI, no redirects followed, the body capped by Content-Length and by the
 * stream, a timeout on every step, addresses tried in order. Certificate problems are recorded rather than fatal, so
 * the caller can judge them and still read the answer. Never throws. An aborted `signal` ends the attempt under way
 * with an `aborted` error and tries no further address; none is connected to if it had aborted already.
 */
export async function httpsGet(options: HttpsGetOptions): Promise<HttpsGetEvidence> {
  const port = options.port ?? 443;
  const url = `https://${options.host}${port === 443 ? '' : `:${port}`}${options.path}`;
  const evidence: HttpsGetEvidence = {
    url,
    attempts: [],
    address: null,
    tls: null,
    http: null,
    error: null,
  };
  for (const address of options.addresses) {
    if (options.signal?.aborted) {
      evidence.error = netError(abortError(url), url);
      break;
    }
    const outcome = await fetchFrom(address, port, options);
    if ('error' in outcome) {
      evidence.attempts.push({ address, error: outcome.error });
      evidence.error = outcome.error;
      if (outcome.tls) evidence.tls = outcome.tls;
      continue;
    }
    evidence.attempts.push({ address, error: null });
    evidence.address = address;
    evidence.tls = outcome.tls;
    evidence.http = outcome.http;
    evidence.error = null;
    return evidence;
  }
  if (options.addresses.length === 0)
    evidence.error = { kind: 'unreachable', message: `${options.host} has no address` };
  return evidence;
}

type Outcome =
  | { tls: NonNullable<HttpsGetEvidence['tls']>; http: NonNullable<HttpsGetEvidence['http']> }
  | { error: NetError; tls?: HttpsGetEvidence['tls'] };

async function fetchFrom(address: string, port: number, options: HttpsGetOptions): Promise<Outcome> {
  const where = `https://${options.host} at ${hostPort(address, port)}`;
  let socket: Awaited<ReturnType<typeof tlsHandshake>>;
  try {
    socket = await tlsHandshake(
      { host: address, port },
      {
        servername: options.host,
        timeoutMs: options.timeoutMs,
        ALPNProtocols: ['http/1.1'],
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  } catch (err) {
    return { error: netError(err, where) };
  }
  const tls = {
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    certificate: certificateEvidence(socket, options.host, options.now),
  };
  try {
    const http = await httpGet(socket, options);
    return { tls, http };
  } catch (err) {
    return { error: netError(err, where), tls };
  } finally {
    socket.destroy();
  }
}

type HttpAnswer = NonNullable<HttpsGetEvidence['http']>;

/** The GET on an open TLS socket: the answer's head within the timeout, then its body; the signal ends either. */
function httpGet(
  socket: Awaited<ReturnType<typeof tlsHandshake>>,
  options: HttpsGetOptions,
): Promise<HttpAnswer> {
  let unlisten = () => {};
  const answer = new Promise<HttpAnswer>((resolve, reject) => {
    const req = request({
      createConnection: () => socket,
      host: options.host,
      method: 'GET',
      path: options.path,
      headers: { Host: options.host, 'User-Agent': 'mtasts-bot (MTA-STS checker)', Accept: options.accept },
      maxHeaderSize: 16 * 1024,
    });
    const timer = setTimeout(
      () => req.destroy(timeoutError('no HTTP answer', options.timeoutMs)),
      options.timeoutMs,
    );
    unlisten = whenAborted(options.signal, () => {
      clearTimeout(timer);
      reject(abortError('HTTP GET'));
      req.destroy();
      socket.destroy();
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      readAnswer(res, options).then(resolve, reject);
    });
    req.end();
  });
  return answer.finally(() => unlisten());
}

/** The answer's head, then its body: refused by Content-Length first, then by the stream, whatever the server claims. */
async function readAnswer(res: IncomingMessage, options: HttpsGetOptions): Promise<HttpAnswer> {
  const headerLength = res.headers['content-length'];
  const contentLength =
    headerLength !== undefined && /^\d+$/.test(headerLength) ? Number(headerLength) : null;
  const head = {
    status: res.statusCode ?? 0,
    contentType: res.headers['content-type'] ?? null,
    location: typeof res.headers.location === 'string' ? res.headers.location : null,
    contentLength,
  };
  if (contentLength !== null && contentLength > options.maxBytes) {
    res.destroy();
    return { ...head, bytesRead: 0, tooLarge: true, body: null };
  }
  return { ...head, ...(await readBody(res, options)) };
}

/** Reads the body within the timeout, up to the cap (plus one chunk); a body cut short is an error, not a policy. */
function readBody(
  res: IncomingMessage,
  options: HttpsGetOptions,
): Promise<Pick<HttpAnswer, 'bytesRead' | 'tooLarge' | 'body'>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytesRead = 0;
    let finished = false;
    const end = (outcome: () => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      outcome();
    };
    const finish = (tooLarge: boolean) =>
      end(() =>
        resolve({ bytesRead, tooLarge, body: tooLarge ? null : Buffer.concat(chunks).toString('utf8') }),
      );
    const timer = setTimeout(() => {
      res.destroy();
      end(() => reject(timeoutError('policy body not received', options.timeoutMs)));
    }, options.timeoutMs);
    res.on('data', (chunk: Buffer) => {
      bytesRead += chunk.length;
      if (bytesRead > options.maxBytes) {
        finish(true);
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => finish(false));
    res.on('error', (err) => end(() => reject(err)));
    res.on('close', () => {
      // A connection closed before the declared length arrived: the policy is truncated.
      if (res.complete) return;
      const truncated = new Error('the connection closed before the whole policy arrived');
      end(() => reject(Object.assign(truncated, { code: 'ECONNRESET' })));
    });
  });
}

function timeoutError(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} within ${ms} ms`), { code: 'ETIMEDOUT' });
}
