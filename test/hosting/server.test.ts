import { connect as tcpConnect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { crypto as acmeCrypto } from 'acme-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeServer, PolicyServer, type PolicyServerLimits } from '../../src/hosting/server.js';
import { CertificateStore } from '../../src/store/certificates.js';
import type { Db } from '../../src/store/db.js';
import { Netns, netnsUnavailable } from '../support/netns.js';
import { TestCa } from '../support/test-ca.js';
import {
  fetchPolicy,
  handshake,
  LIMITS,
  policyText,
  storeCertificate,
  TestPolicies,
  tempDatabase,
} from './fixtures.js';
import { clientHello } from './hello-bytes.js';

const NAME = 'mta-sts.example.com';
const ca = new TestCa();
const roots = [ca.rootPem];

interface Rig {
  server: PolicyServer;
  port: number;
  store: CertificateStore;
  policies: TestPolicies;
  db: Db;
  refused: string[];
  dropped: string[];
  stop: () => Promise<void>;
}

async function rig(limits: Partial<PolicyServerLimits> = {}): Promise<Rig> {
  const file = tempDatabase();
  const db = file.open();
  const store = new CertificateStore(db);
  const policies = new TestPolicies();
  policies.policies.set(NAME, policyText('mx.example.com'));
  await storeCertificate(store, NAME, ca.issue({ names: [NAME] }));
  const refused: string[] = [];
  const dropped: string[] = [];
  const server = new PolicyServer({
    policies,
    certificates: store,
    limits: { ...LIMITS, ...limits },
    events: { onRefused: (w) => refused.push(w), onDropped: (w) => dropped.push(w) },
  });
  const port = await server.listen(0, '127.0.0.1');
  const stop = async () => {
    await server.close(100);
    await db.close();
    file.remove();
  };
  return { server, port, store, policies, db, refused, dropped, stop };
}

/** The self-signed tls-alpn-01 certificate (RFC 8737) of a pending challenge for `name`, and its key. */
async function alpnCertificate(name: string): Promise<{ alpnCertPem: string; alpnKeyPem: string }> {
  const key = await acmeCrypto.createPrivateEcdsaKey();
  const authz = { identifier: { type: 'dns', value: name } };
  const [, cert] = await acmeCrypto.createAlpnCertificate(authz as never, 'token.thumbprint', key);
  return { alpnCertPem: cert.toString(), alpnKeyPem: key.toString() };
}

/** Sends raw bytes over TCP; resolves with what came back once the server closed the connection. */
function rawExchange(port: number, bytes: Buffer, from = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1', localAddress: from });
    const got: Buffer[] = [];
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(got)));
  });
}

/** A TLS connection to NAME that writes `head`, then `drip` every `everyMs`; resolves with the answer at close. */
function tlsDrip(port: number, head: string, drip: string, everyMs: number, total: number) {
  return new Promise<{ answer: string; sent: number }>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: NAME, ca: roots });
    let answer = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('secureConnect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent >= total) return clearInterval(timer);
        socket.write(drip);
        sent += drip.length;
      }, everyMs);
    });
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, sent });
    });
  });
}

describe('the policy listener', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig();
  });
  afterAll(() => r.stop());

  it('serves the policy of the SNI name: 200, text/plain, no caching, exactly the text', async () => {
    const got = await fetchPolicy(r.port, NAME, roots);
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(got.headers['cache-control']).toBe('no-store');
    expect(got.body).toBe(policyText('mx.example.com'));
  });

  it('reads the policy on each request: a change is served at once', async () => {
    r.policies.policies.set(NAME, policyText('mx2.example.com'));
    expect((await fetchPolicy(r.port, NAME, roots)).body).toBe(policyText('mx2.example.com'));
    r.policies.policies.set(NAME, policyText('mx.example.com'));
  });

  it('answers HEAD with the headers only', async () => {
    const got = await fetchPolicy(r.port, NAME, roots, { method: 'HEAD' });
    expect(got.status).toBe(200);
    expect(got.body).toBe('');
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(policyText('mx.example.com'))));
  });

  it('answers any other path 404 and any other method 405, with fixed bodies that reflect nothing', async () => {
    const other = await fetchPolicy(r.port, NAME, roots, { path: '/<script>alert(1)</script>' });
    expect([other.status, other.body]).toEqual([404, 'not found\n']);
    const query = await fetchPolicy(r.port, NAME, roots, { path: '/.well-known/mta-sts.txt?x=1' });
    expect(query.status).toBe(404);
    const post = await fetchPolicy(r.port, NAME, roots, { method: 'POST' });
    expect([post.status, post.body, post.headers.allow]).toEqual([405, 'method not allowed\n', 'GET, HEAD']);
    const misdirected = await fetchPolicy(r.port, NAME, roots, { host: 'evil.example.net' });
    expect([misdirected.status, misdirected.body]).toEqual([421, 'misdirected request\n']);
  });

  it('refuses the handshake for an unknown name and without SNI, with unrecognized_name', async () => {
    const unknown = await handshake(r.port, 'mta-sts.unknown.example', roots);
    expect(unknown.ok).toBe(false);
    expect(unknown.error).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME');
    const none = await handshake(r.port, null, roots);
    expect(none.ok).toBe(false);
    expect(r.refused).toEqual(expect.arrayContaining(['unknown-name', 'no-name']));
  });

  it('refuses a name that is enrolled but has no certificate yet, and one with a certificate but no policy', async () => {
    r.policies.policies.set('mta-sts.new.example', policyText('mx.new.example'));
    expect((await handshake(r.port, 'mta-sts.new.example', roots)).ok).toBe(false);
    await storeCertificate(r.store, 'mta-sts.gone.example', ca.issue({ names: ['mta-sts.gone.example'] }));
    expect((await handshake(r.port, 'mta-sts.gone.example', roots)).ok).toBe(false);
  });

  it('refuses an IP-literal or huge server name and bytes that are not TLS, answering nothing', async () => {
    for (const sni of ['127.0.0.1', `${'a'.repeat(250)}.example.com`, `${'a.'.repeat(9000)}com`]) {
      const answer = await rawExchange(r.port, clientHello({ sni }));
      expect(answer.length <= 7, sni.slice(0, 20)).toBe(true);
    }
    expect((await rawExchange(r.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).length).toBe(0);
    expect((await rawExchange(r.port, Buffer.from([0x16, 3, 1, 0xff, 0xff, 1, 2]))).length).toBe(0);
    expect(r.refused).toContain('not-tls');
    expect((await fetchPolicy(r.port, NAME, roots)).status).toBe(200);
  });

  it('refuses a ClientHello dripped in 1-byte records at its first record, not at the handshake timeout', async () => {
    const announced = Buffer.alloc(4 + 16380);
    announced[0] = 1;
    announced.writeUIntBE(16380, 1, 3);
    const wire = Buffer.concat([...announced].map((b) => Buffer.from([0x16, 3, 1, 0, 1, b])));
    const before = r.refused.length;
    expect((await rawExchange(r.port, wire.subarray(0, 6 * 600))).length).toBe(0);
    expect(r.refused.slice(before)).toEqual(['not-tls']);
  });

  it('serves concurrent handshakes for one name, each reading the store', async () => {
    const all = await Promise.all(Array.from({ length: 8 }, () => fetchPolicy(r.port, NAME, roots)));
    expect(all.map((g) => g.status)).toEqual(Array(8).fill(200));
  });

  it('answers oversized headers 431 and closes', async () => {
    const big = await tlsDrip(
      r.port,
      `GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: ${NAME}\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
      '',
      1,
      0,
    );
    expect(big.answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(big.answer).not.toContain('aaaa');
  });

  it('ends a request whose headers trickle in (slowloris) with 408 long before the client is done', async () => {
    const got = await tlsDrip(
      r.port,
      `GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: ${NAME}\r\n`,
      'X: y\r\n',
      50,
      600,
    );
    expect(got.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(got.sent).toBeLessThan(600);
  });

  it('answers 400 to a repeated Content-Length or Host, a body on GET, and HTTP/1.1 without Host: nothing is smuggled', async () => {
    const P = '/.well-known/mta-sts.txt';
    const statuses = async (head: string) =>
      ((await tlsDrip(r.port, head, '', 1, 0)).answer.match(/HTTP\/1\.1 \d{3}/g) ?? []).join(',');
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`;
    expect(
      await statuses(
        `GET ${P} HTTP/1.1\r\nHost: ${NAME}\r\nContent-Length: 0\r\nContent-Length: 43\r\n\r\n${smuggled}`,
      ),
    ).toBe('HTTP/1.1 400');
    expect(
      await statuses(`GET ${P} HTTP/1.1\r\nHost: ${NAME}\r\ncontent-length: 0\r\nContent-Length: 0\r\n\r\n`),
    ).toBe('HTTP/1.1 400');
    expect(
      await statuses(`GET ${P} HTTP/1.1\r\nHost: ${NAME}\r\nContent-Length: 43\r\n\r\n${smuggled}`),
    ).toBe('HTTP/1.1 400');
    expect(await statuses(`GET ${P} HTTP/1.1\r\nHost: ${NAME}\r\nHost: evil.example\r\n\r\n`)).toBe(
      'HTTP/1.1 400',
    );
    expect(await statuses(`GET ${P} HTTP/1.1\r\nConnection: close\r\n\r\n`)).toBe('HTTP/1.1 400');
    expect(await statuses(`GET ${P} HTTP/1.0\r\n\r\n`)).toBe('HTTP/1.1 200');
    expect(
      await statuses(`GET ${P} HTTP/1.1\r\nHost: ${NAME}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`),
    ).toBe('HTTP/1.1 200');
  });

  it('answers a request line that is not HTTP 400', async () => {
    const got = await tlsDrip(r.port, 'HELLO\r\n\r\n', '', 1, 0);
    expect(got.answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('chooses the current certificate at each handshake: a new one in the store is seen at once', async () => {
    const before = await fetchPolicy(r.port, NAME, roots);
    const other = new TestCa();
    const fingerprint = await storeCertificate(r.store, NAME, other.issue({ names: [NAME] }));
    expect(fingerprint).not.toBe(before.fingerprint);
    expect((await handshake(r.port, NAME, roots)).ok).toBe(false);
    const after = await fetchPolicy(r.port, NAME, [other.rootPem]);
    expect([after.status, after.fingerprint]).toEqual([200, fingerprint]);
    await storeCertificate(r.store, NAME, ca.issue({ names: [NAME] }));
    expect((await fetchPolicy(r.port, NAME, roots)).status).toBe(200);
  });
});

describe('tls-alpn-01 on the policy listener', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig();
  });
  afterAll(() => r.stop());

  it('refuses acme-tls/1 for a name without a pending challenge, even an enrolled one', async () => {
    const got = await handshake(r.port, NAME, roots, ['acme-tls/1']);
    expect(got.ok).toBe(false);
    expect(r.refused).toContain('no-challenge');
  });

  it('answers a pending challenge with the RFC 8737 certificate, negotiates acme-tls/1, then closes', async () => {
    await r.store.putChallenge({
      name: 'mta-sts.pending.example',
      type: 'tls-alpn-01',
      token: 'token',
      keyAuthorization: 'token.thumbprint',
      ...(await alpnCertificate('mta-sts.pending.example')),
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    });
    const got = await handshake(r.port, 'mta-sts.pending.example', [], ['acme-tls/1']);
    expect(got.ok).toBe(true);
    expect(got.alpn).toBe('acme-tls/1');
    expect(got.cert?.subjectaltname).toBe('DNS:mta-sts.pending.example');
    // The same name without acme-tls/1 is not served: it is not enrolled.
    expect((await handshake(r.port, 'mta-sts.pending.example', [])).ok).toBe(false);
  });
});

describe('connection caps', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig({ maxConnectionsPerAddress: 3, handshakeTimeoutMs: 60_000 });
  });
  afterAll(() => r.stop());

  it('drops connections over the per-address cap and still serves other addresses', async () => {
    const held = Array.from({ length: 3 }, () =>
      tcpConnect({ port: r.port, host: '127.0.0.1', localAddress: '127.0.0.9' }),
    );
    await Promise.all(held.map((s) => new Promise((ok) => s.once('connect', ok))));
    const extra = await rawExchange(r.port, clientHello({ sni: NAME }), '127.0.0.9');
    expect(extra.length).toBe(0);
    expect(r.dropped).toContain('address');
    expect((await fetchPolicy(r.port, NAME, roots)).status).toBe(200);
    for (const s of held) s.destroy();
  });
});

/** tls.connect honours allowHalfOpen (it goes to the TLSSocket's own stream options); its types leave it out. */
const HALF_OPEN = { allowHalfOpen: true } as unknown as ConnectionOptions;

/**
 * A TLS connection that never ends its own side: resolves with what it was answered once the server has ended its
 * side (or closed the connection). `halfOpen: false`: an ordinary client, resolving once the connection is closed.
 */
function heldOpen(
  port: number,
  from: string,
  first: string,
  options: { servername?: string; alpn?: string[]; halfOpen?: boolean } = {},
): Promise<string> {
  const halfOpen = options.halfOpen ?? true;
  return new Promise((resolve) => {
    const tcp = tcpConnect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: halfOpen });
    const socket = tlsConnect({
      socket: tcp,
      servername: options.servername ?? NAME,
      ca: roots,
      ...(halfOpen ? HALF_OPEN : {}),
      ...(options.alpn ? { ALPNProtocols: options.alpn, rejectUnauthorized: false } : {}),
    });
    tcp.on('error', () => {});
    let answer = '';
    socket.on('secureConnect', () => socket.write(first));
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    if (halfOpen) socket.once('end', () => resolve(answer));
    socket.once('close', () => resolve(answer));
  });
}

/** Tries `attempt` every 200 ms until it is true, at most `tries` times; whether it ever was. */
async function eventually(attempt: () => Promise<boolean>, tries = 30): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await attempt()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('connections the client never closes', () => {
  const request = (extra = '') => `GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: ${NAME}\r\n${extra}\r\n`;

  it('are closed by the server after each answer that ends the connection, freeing the per-address slots', async () => {
    const r = await rig({ maxConnectionsPerAddress: 5, maxRequestsPerConnection: 2 });
    let calls = 0;
    const policyFor = r.policies.policyFor.bind(r.policies);
    r.policies.policyFor = async (name) => {
      if (name === 'mta-sts.broken.example' && ++calls > 1) throw new Error('store down');
      return name === 'mta-sts.broken.example' ? 'x' : policyFor(name);
    };
    await storeCertificate(
      r.store,
      'mta-sts.broken.example',
      ca.issue({ names: ['mta-sts.broken.example'] }),
    );
    await r.store.putChallenge({
      name: 'mta-sts.pending.example',
      type: 'tls-alpn-01',
      token: 'token',
      keyAuthorization: 'token.thumbprint',
      ...(await alpnCertificate('mta-sts.pending.example')),
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    });
    const from = '127.0.0.21';
    const answers = await Promise.all([
      heldOpen(r.port, from, request('Connection: close\r\n')),
      heldOpen(r.port, from, `DELETE /x HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`),
      heldOpen(r.port, from, request().repeat(2)),
      heldOpen(r.port, from, request().replaceAll(NAME, 'mta-sts.broken.example'), {
        servername: 'mta-sts.broken.example',
      }),
      heldOpen(r.port, from, '', { servername: 'mta-sts.pending.example', alpn: ['acme-tls/1'] }),
    ]);
    expect(answers.map((a) => /^HTTP\/1\.1 (\d{3})/.exec(a)?.[1] ?? '')).toEqual([
      '200',
      '405',
      '200',
      '503',
      '',
    ]);
    // The server closes the five for good (the clients never will), so five more from the address are served.
    const freed = await eventually(async () => {
      const again = await Promise.all(
        Array.from({ length: 5 }, () =>
          heldOpen(r.port, from, request('Connection: close\r\n'), { halfOpen: false }),
        ),
      );
      return again.every((a) => a.startsWith('HTTP/1.1 200 '));
    });
    expect(freed).toBe(true);
    await r.stop();
  });

  it('are closed at the lifetime cap, however busy they keep the server', async () => {
    const r = await rig({ maxConnectionMs: 800 });
    const got = await tlsDrip(r.port, request(), request(), 100, 1_000_000);
    const answered = got.answer.match(/HTTP\/1\.1 200 /g)?.length ?? 0;
    expect(answered).toBeGreaterThan(1);
    expect(answered).toBeLessThan(100);
    await r.stop();
  });

  it('are closed after the idle timeout while a request hangs', async () => {
    const r = await rig({ idleTimeoutMs: 300, maxConnectionMs: 60_000 });
    r.policies.policyFor = (name) =>
      name === NAME && r.policies.asked++ > 0 ? new Promise(() => {}) : Promise.resolve(policyText('mx'));
    expect(await heldOpen(r.port, '127.0.0.22', request())).toBe('');
    await r.stop();
  });
});

/** Run inside a namespace whose loopback carries three IPv6 addresses, two of them in one /64: what the cap drops. */
const IPV6_CAP = `
import { connect } from 'node:net';
import { PolicyServer } from './src/hosting/server.ts';
const dropped = [];
const server = new PolicyServer({
  policies: { policyFor: async () => undefined, namesNeedingCertificates: async () => [] },
  certificates: { certificate: async () => undefined, alpnChallenge: async () => undefined },
  limits: { ...${JSON.stringify(LIMITS)}, maxConnectionsPerAddress: 2, handshakeTimeoutMs: 60000 },
  events: { onDropped: (why) => dropped.push(why) },
});
const port = await server.listen(0, '::');
const closed = [];
for (const from of ['2001:db8:1::1', '2001:db8:1::1', '2001:db8:1::2', '2001:db8:2::1']) {
  const s = connect({ host: '2001:db8:2::1', port, localAddress: from });
  s.on('error', () => {});
  s.on('close', () => closed.push(from));
  await new Promise((ok) => s.once('connect', ok));
}
await new Promise((ok) => setTimeout(ok, 500));
console.log(JSON.stringify({ dropped, closed }));
process.exit(0);
`;

describe.skipIf(netnsUnavailable() !== null)('the per-address cap over IPv6', () => {
  it('counts the addresses of one /64 together (one host is given a whole /64), other networks apart', async () => {
    const ns = Netns.create(['2001:db8:1::1', '2001:db8:1::2', '2001:db8:2::1']);
    try {
      const run = await ns.run(['node', '--import', 'tsx', '--input-type=module', '-e', IPV6_CAP], {});
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual({ dropped: ['address'], closed: ['2001:db8:1::2'] });
    } finally {
      ns.delete();
    }
  });
});

describe('a handshake that never comes', () => {
  it('is closed after the handshake timeout', async () => {
    const r = await rig({ handshakeTimeoutMs: 200 });
    const answer = await rawExchange(r.port, Buffer.from([0x16, 3, 1, 0, 200]));
    expect(answer.length).toBe(0);
    expect(r.refused).toContain('handshake-timeout');
    await r.stop();
  });
});

describe('the http-01 listener', () => {
  it('answers a pending token with its key authorization and everything else 404, reflecting nothing', async () => {
    const file = tempDatabase();
    const db = file.open();
    const store = new CertificateStore(db);
    await store.putChallenge({
      name: NAME,
      type: 'http-01',
      token: 'tok_EN-1',
      keyAuthorization: 'tok_EN-1.thumbprint',
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    });
    await store.putChallenge({
      name: 'mta-sts.old.example',
      type: 'http-01',
      token: 'expired',
      keyAuthorization: 'expired.thumbprint',
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    const server = challengeServer({ certificates: store, limits: LIMITS });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    const get = async (path: string, method = 'GET') => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      return [res.status, await res.text()];
    };
    expect(await get('/.well-known/acme-challenge/tok_EN-1')).toEqual([200, 'tok_EN-1.thumbprint']);
    expect(await get('/.well-known/acme-challenge/expired')).toEqual([404, 'not found\n']);
    expect(await get('/.well-known/acme-challenge/unknown')).toEqual([404, 'not found\n']);
    expect(await get('/.well-known/acme-challenge/../../etc/passwd')).toEqual([404, 'not found\n']);
    expect(await get('/.well-known/acme-challenge/tok_EN-1?<x>')).toEqual([404, 'not found\n']);
    expect(await get('/.well-known/acme-challenge/tok_EN-1', 'POST')).toEqual([404, 'not found\n']);
    expect(await get('/.well-known/mta-sts.txt')).toEqual([404, 'not found\n']);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await db.close();
    file.remove();
  });
});

describe('the http-01 listener under hostile input', () => {
  let file: ReturnType<typeof tempDatabase>;
  let db: Db;
  let server: ReturnType<typeof challengeServer>;
  let port = 0;
  beforeAll(async () => {
    file = tempDatabase();
    db = file.open();
    const store = new CertificateStore(db);
    await store.putChallenge({
      name: NAME,
      type: 'http-01',
      token: 'tok_busy',
      keyAuthorization: 'tok_busy.thumbprint',
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    });
    server = challengeServer({ certificates: store, limits: { ...LIMITS, maxConnections: 5 } });
    port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await db.close();
    file.remove();
  });

  /** Sends `head`, then `piece` every `everyMs` up to `times`; resolves with what came back and how many were sent. */
  const drip = (head: string, piece: string, times: number, everyMs: number) =>
    new Promise<{ answer: string; sent: number }>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      let answer = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('data', (d) => {
        answer += d.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, sent });
      });
      socket.write(head);
      timer = setInterval(() => {
        if (sent >= times || socket.destroyed) return socket.end();
        sent++;
        socket.write(piece);
      }, everyMs);
    });

  it('answers oversized headers 431, reflecting nothing', async () => {
    const got = await drip(
      `GET /.well-known/acme-challenge/tok_busy HTTP/1.1\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
      '',
      0,
      10,
    );
    expect(got.answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(got.answer).not.toContain('aaaa');
  });

  it('ends a request whose headers trickle in (slowloris) long before the client is done', async () => {
    const got = await drip('GET /.well-known/acme-challenge/tok_busy HTTP/1.1\r\n', 'X: y\r\n', 200, 100);
    expect(got.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(got.sent).toBeLessThan(200);
  });

  it('holds at most its connection cap; the validation still gets through once a slot is free', async () => {
    const idle = await Promise.all(
      Array.from({ length: 8 }, () => {
        const s = tcpConnect(port, '127.0.0.1');
        s.on('error', () => {});
        return new Promise<typeof s>((resolve) => s.once('connect', () => resolve(s)));
      }),
    );
    const closedByServer = await Promise.all(
      idle.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            s.once('close', () => resolve(true));
            setTimeout(() => resolve(false), 300);
          }),
      ),
    );
    expect(closedByServer.filter(Boolean).length).toBe(3); // 8 opened, 5 held
    for (const s of idle) s.destroy();
    const open = () => new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
    while ((await open()) > 0) await new Promise((r) => setTimeout(r, 20));
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(`http://127.0.0.1:${port}/.well-known/acme-challenge/tok_busy`).then(async (r) => [
          r.status,
          await r.text(),
        ]),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 5 }, () => [200, 'tok_busy.thumbprint']));
  });
});
