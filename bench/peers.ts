import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { TestDnsServer, type Zone } from '../test/support/dns-server.js';
import { TestCa } from '../test/support/test-ca.js';
import { address, benchDomain, PROVIDERS } from './population.js';

/**
 * The benchmark's Internet, run in a process of its own so that its memory and CPU are not counted as the monitor's:
 * one DNS server, one HTTPS server and one SMTP server, each answering for thousands of hosts (every host has its own
 * loopback address; TLS certificates are chosen by SNI). Every reply waits `delay` ms, standing in for a round trip.
 * With a third argument `real-ports`, the hosts of domain 7 (a healthy one with MX hosts of its own) also answer on
 * ports 443 and 25 of their addresses, so that the `mtasts` binary, which knows no other ports, can check it (root).
 * Asked 'fetches' over IPC, it tells how many connections each domain's policy host took since it was last asked.
 */

interface HostConfig {
  starttls: boolean;
}

async function main(): Promise<void> {
  const domains = Number(process.argv[2] ?? '10000');
  const delay = Number(process.argv[3] ?? '20');
  const started = Date.now();
  const ca = new TestCa('mtasts-bot bench root');
  const contexts = new Map<string, SecureContext>();
  const hosts = new Map<string, HostConfig>();
  const policies = new Map<string, { status: number; text: string }>();
  // Connections to each domain's policy host (an address of its own) since the parent last asked ('fetches'): a check
  // fetches the policy once, on a connection of its own, whether the fetch then succeeds or not.
  const policyAt = new Map<string, number>();
  const fetches = new Uint32Array(domains);
  const zone: Zone = {};
  let k = 0;
  const context = (names: string[], notAfterDays = 365, notBeforeDays = -1) => {
    const cert = ca.issue({ names, notAfterDays, notBeforeDays });
    const ctx = createSecureContext({ cert: cert.cert, key: cert.key });
    for (const n of names) contexts.set(n, ctx);
  };

  for (const mx of PROVIDERS) {
    context(mx);
    for (const host of mx) {
      const a = address(++k);
      zone[host] = { A: [a] };
      hosts.set(a, { starttls: true });
    }
  }
  for (let i = 0; i < domains; i++) {
    const d = benchDomain(i);
    const policyHost = `mta-sts.${d.name}`;
    const pa = address(++k);
    zone[d.name] = { MX: d.mx.map((exchange, n) => ({ preference: 10 * (n + 1), exchange })) };
    zone[`_mta-sts.${d.name}`] = { TXT: [`v=STSv1; id=bench${i}`] };
    zone[`_smtp._tls.${d.name}`] = { TXT: [`v=TLSRPTv1; rua=mailto:tlsrpt@${d.name}`] };
    zone[policyHost] = { A: [pa] };
    policyAt.set(pa, i);
    const listed = d.fault === 'mx-not-in-policy' ? d.mx.slice(0, 1) : d.mx;
    policies.set(policyHost, {
      status: d.fault === 'policy-404' ? 404 : 200,
      text: `version: STSv1\nmode: enforce\n${listed.map((m) => `mx: ${m}\n`).join('')}max_age: 1209600\n`,
    });
    if (d.ownMx) {
      if (d.fault === 'mx-cert-expired') {
        context([policyHost]);
        context(d.mx, -3, -400);
      } else context([policyHost, ...d.mx]);
      for (const host of d.mx) {
        const a = address(++k);
        zone[host] = { A: [a] };
        hosts.set(a, { starttls: d.fault !== 'no-starttls' });
      }
    } else context([policyHost]);
  }
  const fallback = contexts.values().next().value as SecureContext;
  const sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
    cb(null, contexts.get(servername.toLowerCase()) ?? fallback);

  const dns = await TestDnsServer.start(zone);
  dns.delayMs = delay;

  const https = createHttpsServer({ SNICallback: sni }, (req, res) => {
    const policy = policies.get((req.headers.host ?? '').toLowerCase());
    setTimeout(() => {
      const served = policy?.status === 200 && req.url === '/.well-known/mta-sts.txt' ? policy.text : null;
      if (served === null) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      else res.writeHead(200, { 'Content-Type': 'text/plain' }).end(served);
    }, delay);
  });
  https.on('tlsClientError', () => {});
  https.on('connection', (socket: Socket) => {
    const i = policyAt.get(socket.localAddress?.replace(/^::ffff:/, '') ?? '');
    if (i !== undefined) fetches[i] = (fetches[i] ?? 0) + 1;
  });
  await new Promise<void>((resolve) => https.listen(0, '0.0.0.0', 2048, resolve));

  const smtp = createServer((socket) =>
    serveSmtp(socket, hosts.get(socket.localAddress?.replace(/^::ffff:/, '') ?? ''), delay, sni),
  );
  await new Promise<void>((resolve) => smtp.listen(0, '0.0.0.0', 2048, resolve));

  const realPorts = process.argv[4] === 'real-ports' ? await listenOnRealPorts(zone, https, smtp) : null;
  process.send?.({
    ready: true,
    realPorts,
    dns: dns.address,
    httpsPort: (https.address() as { port: number }).port,
    smtpPort: (smtp.address() as { port: number }).port,
    caPem: ca.rootPem,
    hosts: k,
    certificates: new Set(contexts.values()).size,
    setupMs: Date.now() - started,
  });
  process.on('message', (m) => {
    if (m === 'stop') process.exit(0);
    if (m === 'fetches') {
      process.send?.({ fetches: Array.from(fetches) });
      fetches.fill(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * Domain 7's policy host on port 443 and its MX hosts on port 25 of their own addresses, served by the same servers;
 * null (and why) when those ports cannot be had (not root, or taken).
 */
async function listenOnRealPorts(
  zone: Zone,
  https: ReturnType<typeof createHttpsServer>,
  smtp: ReturnType<typeof createServer>,
): Promise<{ domain: string } | { error: string }> {
  const d = benchDomain(7);
  const address = (host: string) => zone[host]?.A?.[0] ?? '';
  const listeners = [
    { server: https, host: address(`mta-sts.${d.name}`), port: 443 },
    ...d.mx.map((mx) => ({ server: smtp, host: address(mx), port: 25 })),
  ];
  try {
    for (const l of listeners) {
      const extra = createServer((socket) => l.server.emit('connection', socket));
      await new Promise<void>((resolve, reject) => {
        extra.once('error', reject);
        extra.listen(l.port, l.host, resolve);
      });
    }
    return { domain: d.name };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** A minimal SMTP server: greeting, EHLO, STARTTLS, QUIT, each answered after the delay. */
function serveSmtp(
  raw: Socket,
  host: HostConfig | undefined,
  delay: number,
  sni: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void,
): void {
  raw.on('error', () => {});
  const config = host ?? { starttls: false };
  let socket: Socket = raw;
  let buffer = '';
  const reply = (text: string, then?: () => void) =>
    setTimeout(() => {
      if (socket.destroyed) return;
      socket.write(text);
      then?.();
    }, delay);
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '').toUpperCase();
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      if (line.startsWith('EHLO')) {
        reply(
          `250-bench.mx Hello\r\n${config.starttls && !(socket instanceof TLSSocket) ? '250-STARTTLS\r\n' : ''}250 8BITMIME\r\n`,
        );
      } else if (line.startsWith('STARTTLS') && config.starttls) {
        socket.off('data', onData);
        reply('220 Ready to start TLS\r\n', () => {
          const tls = new TLSSocket(raw, { isServer: true, SNICallback: sni });
          tls.on('error', () => {});
          tls.on('data', onData);
          socket = tls;
        });
        return;
      } else if (line.startsWith('QUIT')) {
        reply('221 Bye\r\n', () => socket.end());
      } else reply('502 Command not implemented\r\n');
    }
  };
  socket.on('data', onData);
  reply('220 bench.mx ESMTP\r\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench peers: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
