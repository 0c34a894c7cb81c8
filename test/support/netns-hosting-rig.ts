import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { request } from 'node:https';
import { createInterface } from 'node:readline';
import { type AppProcess, startApp } from './app-process.js';
import { TestDnsServer, type Zone, type ZoneEntry } from './dns-server.js';
import { type ApiCall, FakeSlack, sendSigned, slashCommand } from './fake-slack.js';
import { ROOT } from './netns.js';
import { relayDns } from './netns-peers.js';
import { Pebble } from './pebble.js';
import { TestSmtpServer } from './smtp-server.js';
import { TestCa } from './test-ca.js';

/**
 * The peers of hosted MTA-STS's production-path test, run inside the test's network namespace (started with
 * `ip netns exec <ns> node --import tsx test/support/netns-hosting-rig.ts`), and what the test does there: the test
 * DNS on port 53 of a public address (its zone edited between questions), an SMTP server on port 25 with a certificate
 * of a test CA, Debian's pebble validating tls-alpn-01 on port 443 of whatever address the DNS gives, the fake Slack
 * API, the app processes (dist/main.js), signed slash commands to them and GETs of the policy over TLS.
 *
 * Protocol on stdio, one JSON line each way: `{ "id", "op", "args" }` in, `{ "id", "value" }` or `{ "id", "error" }`
 * out. The end of stdin stops everything (the apps with SIGKILL) and exits.
 */
export interface RigPlan {
  /** The address the DNS service listens on, port 53 (UDP and TCP). */
  dns: string;
  zone: Zone;
  /** The SMTP server on port 25: its address and the names its certificate carries. */
  mx: { address: string; names: string[] };
}

export interface RigStarted {
  /** The test CA (the SMTP server's certificate) and pebble's HTTPS listener's own test CA, PEM. */
  testCaPem: string;
  pebbleListenerPem: string;
  /** The root pebble's issued chains lead to. */
  pebbleRootPem: string;
  /** pebble's directory, as the app is given it (its listener's certificate names "localhost"). */
  directoryUrl: string;
  slackApiUrl: string;
}

export interface SlackSeen {
  posts: ApiCall[];
  responses: { id: string; body: Record<string, unknown> }[];
}

export interface PolicyAnswer {
  status: number;
  contentType: string;
  body: string;
  /** SHA-256 fingerprint of the certificate the listener presented. */
  fingerprint: string;
}

/** The test's side: starts the rig inside the namespace and calls it. */
export class HostingRig {
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stderr = '';
  private exited = false;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => this.answer(line));
    child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error(`the rig exited: ${this.stderr.trim()}`));
      this.waiting.clear();
    });
  }

  static async start(netns: string, plan: RigPlan): Promise<{ rig: HostingRig; started: RigStarted }> {
    const child = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, '--import', 'tsx', 'test/support/netns-hosting-rig.ts'],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const rig = new HostingRig(child);
    const started = (await rig.call('start', plan)) as RigStarted;
    return { rig, started };
  }

  call(op: string, args?: unknown): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error(`the rig exited: ${this.stderr.trim()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  setZone(name: string, entry: ZoneEntry): Promise<unknown> {
    return this.call('zone', { name, entry });
  }

  slack(): Promise<SlackSeen> {
    return this.call('slack') as Promise<SlackSeen>;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15000);
    await gone;
    clearTimeout(timer);
  }

  private answer(line: string): void {
    let message: { id?: number; value?: unknown; error?: string };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      this.stderr += `${line}\n`;
      return;
    }
    const w = this.waiting.get(message.id ?? -1);
    if (!w) return;
    this.waiting.delete(message.id ?? -1);
    if (message.error !== undefined) w.reject(new Error(message.error));
    else w.resolve(message.value);
  }
}

// ---- Inside the namespace ----

interface Running {
  dns: TestDnsServer;
  stopRelay: () => Promise<void>;
  smtp: TestSmtpServer;
  pebble: Pebble;
  slack: FakeSlack;
  apps: AppProcess[];
}

let running: Running | null = null;

async function startRig(plan: RigPlan): Promise<RigStarted> {
  const ca = new TestCa('mtasts-bot netns hosting Test Root');
  const dns = await TestDnsServer.start(plan.zone);
  const stopRelay = await relayDns(plan.dns, dns.port);
  const smtp = await TestSmtpServer.start({ cert: ca.issue({ names: plan.mx.names }) }, plan.mx.address, 25);
  const pebble = await Pebble.start({ dnsServer: `${plan.dns}:53`, tlsPort: 443 });
  const slack = await FakeSlack.start();
  running = { dns, stopRelay, smtp, pebble, slack, apps: [] };
  return {
    testCaPem: ca.rootPem,
    pebbleListenerPem: pebble.listenerCa.rootPem,
    pebbleRootPem: pebble.rootPem,
    directoryUrl: `https://localhost:${pebble.port}/dir`,
    slackApiUrl: slack.apiUrl,
  };
}

function rig(): Running {
  if (!running) throw new Error('the rig is not started');
  return running;
}

function app(index: number): AppProcess {
  const a = rig().apps[index];
  if (!a) throw new Error(`no app ${index}`);
  return a;
}

/** pebble's orders: it logs "There are now N orders in the db" at each new order. */
function pebbleOrders(): number {
  const counts = [...rig().pebble.log.matchAll(/There are now (\d+) orders in the db/g)].map((m) =>
    Number(m[1]),
  );
  return counts.length === 0 ? 0 : Math.max(...counts);
}

const ops: Record<string, (args: never) => Promise<unknown> | unknown> = {
  start: (plan: RigPlan) => startRig(plan),
  zone: ({ name, entry }: { name: string; entry: ZoneEntry }) => {
    rig().dns.zone[name] = entry;
    return null;
  },
  slack: (): SlackSeen => ({
    posts: rig().slack.callsTo('chat.postMessage'),
    responses: rig().slack.responses,
  }),
  responseUrl: (id: string) => rig().slack.responseUrl(id),
  pebble: () => ({ orders: pebbleOrders(), log: rig().pebble.log }),
  startApp: async (env: Record<string, string>) => {
    const a = startApp(env);
    const index = rig().apps.push(a) - 1;
    await a.port(60000);
    return index;
  },
  appLogged: async ({ app: i, text, ms }: { app: number; text: string; ms: number }) => {
    await app(i).logged(new RegExp(text), ms);
    return app(i).output();
  },
  appOutput: ({ app: i }: { app: number }) => app(i).output(),
  stopApp: async ({ app: i }: { app: number }) => {
    const a = app(i);
    a.child.kill('SIGTERM');
    return { code: await a.exited, output: a.output() };
  },
  slash: async ({
    app: i,
    secret,
    text,
    responseId,
  }: {
    app: number;
    secret: string;
    text: string;
    responseId: string;
  }) => {
    const port = await app(i).port();
    const fields = slashCommand(text, { responseUrl: rig().slack.responseUrl(responseId) });
    const r = await sendSigned(`http://127.0.0.1:${port}/slack/events`, secret, fields);
    return { status: r.status, body: r.body };
  },
  policy: ({ address, name, ca, path }: { address: string; name: string; ca: string; path?: string }) =>
    getPolicy(address, name, ca, path ?? '/.well-known/mta-sts.txt'),
};

/** GET over TLS from port 443 of `address`, asking for `name` (SNI and Host) and trusting only `ca`. */
function getPolicy(address: string, name: string, ca: string, path: string): Promise<PolicyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port: 443, servername: name, headers: { host: name }, path, ca, agent: false },
      (res) => {
        const fingerprint =
          (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.().fingerprint256 ?? '';
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body,
            fingerprint,
          }),
        );
      },
    );
    req.setTimeout(20000, () => req.destroy(new Error('the policy GET timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function stopRig(): Promise<void> {
  const r = running;
  if (!r) return;
  for (const a of r.apps)
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await Promise.all([r.pebble.stop(), r.smtp.stop(), r.slack.stop(), r.dns.stop(), r.stopRelay()]);
}

if (process.argv[1]?.endsWith('netns-hosting-rig.ts')) {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const { id, op, args } = JSON.parse(line) as { id: number; op: string; args: never };
    const run = ops[op];
    Promise.resolve()
      .then(() => {
        if (!run) throw new Error(`unknown op ${op}`);
        return run(args);
      })
      .then(
        (value) => process.stdout.write(`${JSON.stringify({ id, value: value ?? null })}\n`),
        (err: Error) => process.stdout.write(`${JSON.stringify({ id, error: err.message })}\n`),
      );
  });
  lines.on('close', () => {
    void stopRig().finally(() => process.exit(0));
  });
}
