import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';

/**
 * A DNS server on loopback (UDP and TCP) answering from a zone the test edits between queries. It answers like a
 * recursive resolver: CNAME chains are followed into the answer section; a CNAME question gets the name's own CNAME;
 * a name with no entry of its own takes a `*.<parent>` entry's records (a wildcard, one label deep). Answers too
 * large for 512 bytes over UDP are truncated (TC), so resolvers retry over TCP as they do on the Internet.
 */
export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  /** Each record is one string or several strings (multi-string TXT). */
  TXT?: (string | string[])[];
  MX?: { preference: number; exchange: string }[];
  CNAME?: string;
  /** Marks a zone apex: answered with an SOA record. */
  SOA?: boolean;
  /** Answer SERVFAIL for this name. */
  servfail?: boolean;
  /** Never answer for this name (a timeout). */
  drop?: boolean;
}

export type Zone = Record<string, ZoneEntry>;

const SERVFAIL = 2;
const NXDOMAIN = 3;

export class TestDnsServer {
  zone: Zone = {};
  /** Every question asked, as "TYPE name", for assertions. */
  readonly queries: string[] = [];
  private udp!: UdpSocket;
  private tcp!: Server;
  private readonly tcpClients = new Set<Socket>();
  port = 0;
  /** Milliseconds every answer waits, standing in for a network round trip. */
  delayMs = 0;

  static async start(zone: Zone = {}): Promise<TestDnsServer> {
    const server = new TestDnsServer();
    server.zone = zone;
    await server.listen();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private async listen(): Promise<void> {
    // The same port for UDP and TCP; retry when TCP finds it taken.
    for (let attempt = 0; attempt < 20; attempt++) {
      this.udp = createSocket('udp4');
      await new Promise<void>((resolve) => this.udp.bind(0, '127.0.0.1', resolve));
      this.port = this.udp.address().port;
      this.tcp = createServer((socket) => this.serveTcp(socket));
      const ok = await new Promise<boolean>((resolve) => {
        this.tcp.once('error', () => resolve(false));
        this.tcp.listen(this.port, '127.0.0.1', () => resolve(true));
      });
      if (ok) break;
      this.udp.close();
    }
    this.udp.on('message', (msg, rinfo) => {
      const reply = this.answer(msg, true);
      if (!reply) return;
      if (this.delayMs > 0) setTimeout(() => this.udp.send(reply, rinfo.port, rinfo.address), this.delayMs);
      else this.udp.send(reply, rinfo.port, rinfo.address);
    });
  }

  private serveTcp(socket: Socket): void {
    this.tcpClients.add(socket);
    socket.on('close', () => this.tcpClients.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 2) {
        const length = buffer.readUInt16BE(0);
        if (buffer.length < 2 + length) return;
        const msg = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        const reply = this.answer(msg, false);
        if (reply) {
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        }
      }
    });
  }

  private answer(msg: Buffer, udp: boolean): Buffer | null {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    const question = query.questions?.[0];
    if (!question) return null;
    const qname = question.name.toLowerCase().replace(/\.$/, '');
    this.queries.push(`${question.type} ${qname}${udp ? '' : ' (tcp)'}`);
    const answers: dnsPacket.Answer[] = [];
    let rcode = 0;
    let name = qname;
    for (let hops = 0; hops < 8; hops++) {
      const entry = this.zone[name] ?? this.zone[`*.${name.slice(name.indexOf('.') + 1)}`];
      if (!entry) {
        if (hops === 0) rcode = NXDOMAIN;
        break;
      }
      if (entry.drop) return null;
      if (entry.servfail) {
        rcode = SERVFAIL;
        answers.length = 0;
        break;
      }
      if (entry.CNAME && question.type !== 'CNAME') {
        answers.push({ type: 'CNAME', name, ttl: 300, class: 'IN', data: entry.CNAME });
        name = entry.CNAME.toLowerCase();
        continue;
      }
      answers.push(...records(name, question.type, entry));
      break;
    }
    const response: dnsPacket.Packet = {
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions: [question],
      answers: rcode === 0 ? answers : [],
    };
    let reply = dnsPacket.encode(response);
    if (udp && reply.length > 512) {
      reply = dnsPacket.encode({
        ...response,
        answers: [],
        flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      });
    }
    return reply;
  }

  async stop(): Promise<void> {
    for (const c of this.tcpClients) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }
}

function records(name: string, type: string, entry: ZoneEntry): dnsPacket.Answer[] {
  const base = { name, ttl: 300, class: 'IN' as const };
  switch (type) {
    case 'A':
      return (entry.A ?? []).map((data) => ({ ...base, type: 'A', data }));
    case 'AAAA':
      return (entry.AAAA ?? []).map((data) => ({ ...base, type: 'AAAA', data }));
    case 'TXT':
      return (entry.TXT ?? []).map((data) => ({
        ...base,
        type: 'TXT',
        data: Array.isArray(data) ? data : [data],
      }));
    case 'MX':
      return (entry.MX ?? []).map((data) => ({ ...base, type: 'MX', data }));
    case 'CNAME':
      return entry.CNAME ? [{ ...base, type: 'CNAME', data: entry.CNAME }] : [];
    case 'SOA':
      return entry.SOA
        ? [
            {
              ...base,
              type: 'SOA',
              data: {
                mname: `ns1.${name}`,
                rname: `hostmaster.${name}`,
                serial: 2026112901,
                refresh: 3600,
                retry: 600,
                expire: 604800,
                minimum: 300,
              },
            },
          ]
        : [];
    default:
      return [];
  }
}
