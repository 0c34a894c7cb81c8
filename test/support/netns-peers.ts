import { createSocket } from 'node:dgram';
import { connect, createServer, isIPv6, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { TestDnsServer, type Zone } from './dns-server.js';
import { servePolicy, TestHttpsServer } from './https-server.js';
import { CountingListener } from './lab.js';
import { TestSmtpServer } from './smtp-server.js';
import { TestCa } from './test-ca.js';

/**
 * The test peers of a network namespace, run inside it (test/support/netns.ts starts them with
 * `ip netns exec <ns> node --import tsx test/support/netns-peers.ts`): DNS on port 53, HTTPS policy hosts on 443 and
 * SMTP servers on 25 of the namespace's addresses, with certificates of a CA made here, and listeners that only count.
 *
 * Protocol on stdio, one JSON line each: the plan in; `{ "rootPem": ... }` out once everything listens (or
 * `{ "error": ... }`). Then "counts" in, the connections (SMTP, counting listeners) and requests (HTTPS) seen so far
 * out, keyed by "address port"; "stop" (or the end of stdin) stops everything and exits.
 */
export interface PeerPlan {
  /** The address the DNS service listens on, port 53 (UDP and TCP). */
  dns: string;
  zone: Zone;
  policyHosts: { address: string; names: string[]; policy: string }[];
  mxHosts: { address: string; names: string[] }[];
  listeners: { address: string; port: number }[];
}

export type PeerCounts = Record<string, number>;

export const where = (address: string, port: number) => `${address} ${port}`;

interface Running {
  counts(): PeerCounts;
  stop(): Promise<void>;
}

async function start(plan: PeerPlan): Promise<Running & { rootPem: string }> {
  const ca = new TestCa('mtasts-bot netns Test Root');
  const dns = await TestDnsServer.start(plan.zone);
  const relay = await relayDns(plan.dns, dns.port);
  const smtpSeen: PeerCounts = {};
  const https = await Promise.all(
    plan.policyHosts.map((h) =>
      TestHttpsServer.start(ca.issue({ names: h.names }), servePolicy(h.policy), h.address, 443),
    ),
  );
  const smtp = await Promise.all(
    plan.mxHosts.map((h) => {
      smtpSeen[where(h.address, 25)] = 0;
      const onConnect = async () => {
        smtpSeen[where(h.address, 25)] = (smtpSeen[where(h.address, 25)] ?? 0) + 1;
      };
      return TestSmtpServer.start({ cert: ca.issue({ names: h.names }), onConnect }, h.address, 25);
    }),
  );
  const listeners = await Promise.all(plan.listeners.map((l) => CountingListener.start(l.address, l.port)));
  return {
    rootPem: ca.rootPem,
    counts: () => ({
      ...smtpSeen,
      ...Object.fromEntries(
        https.map((s, i) => [where(plan.policyHosts[i]?.address ?? '', 443), s.requests.length]),
      ),
      ...Object.fromEntries(listeners.map((l) => [where(l.address, l.port), l.connections])),
    }),
    stop: async () => {
      await Promise.all([
        ...https.map((s) => s.stop()),
        ...smtp.map((s) => s.stop()),
        ...listeners.map((l) => l.stop()),
        dns.stop(),
        relay(),
      ]);
    },
  };
}

/**
 * Port 53 of `address`, relayed to the test DNS server on 127.0.0.1 (which picks its own port): each UDP query over a
 * socket of its own, each TCP connection piped whole.
 */
export async function relayDns(address: string, upstreamPort: number): Promise<() => Promise<void>> {
  const udp = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  udp.on('message', (query, client) => {
    const upstream = createSocket('udp4');
    upstream.on('message', (answer) => {
      udp.send(answer, client.port, client.address);
      upstream.close();
    });
    upstream.send(query, upstreamPort, '127.0.0.1');
  });
  await new Promise<void>((resolve) => udp.bind(53, address, resolve));
  const tcp: Server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) s.on('error', () => s.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => tcp.listen(53, address, resolve));
  return async () => {
    await Promise.all([
      new Promise<void>((resolve) => udp.close(() => resolve())),
      new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  };
}

function say(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

if (process.argv[1]?.endsWith('netns-peers.ts')) {
  let running: Promise<Running & { rootPem: string }> | null = null;
  const finish = async () => {
    await (await running)?.stop();
    process.exit(0);
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (running === null) {
      running = start(JSON.parse(line) as PeerPlan);
      running.then(
        (r) => say({ rootPem: r.rootPem }),
        (err: Error) => {
          say({ error: err.message });
          process.exit(1);
        },
      );
    } else if (line === 'counts') running.then((r) => say(r.counts()));
    else if (line === 'stop') void finish();
  });
  lines.on('close', () => void finish());
}
