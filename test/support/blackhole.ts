import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

/**
 * A TCP port that never completes new connections, as a firewall that drops packets does: a listener in a worker
 * thread whose event loop is then blocked, so nothing is accepted; once its small backlog is filled, the kernel drops
 * further SYNs and a client's connect times out. Stays on loopback.
 */
export class Blackhole {
  private constructor(
    readonly address: string,
    private readonly worker: Worker,
    private readonly fillers: Socket[],
  ) {}

  static async start(host: string, port: number): Promise<Blackhole> {
    const lock = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const net = require('node:net');
       const server = net.createServer();
       server.listen({ host: workerData.host, port: workerData.port, backlog: 1 }, () => {
         parentPort.postMessage('listening');
         setImmediate(() => Atomics.wait(workerData.lock, 0, 0));
       });`,
      { eval: true, workerData: { host, port, lock } },
    );
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    // Fill the accept queue; these stay half-open.
    const fillers: Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = connect({ host, port });
      s.on('error', () => {});
      fillers.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    return new Blackhole(host, worker, fillers);
  }

  async stop(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    await this.worker.terminate();
  }
}
