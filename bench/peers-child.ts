import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What the peers child (peers.ts) tells once it is ready. */
export interface Peers {
  dns: string;
  httpsPort: number;
  smtpPort: number;
  caPem: string;
  hosts: number;
  certificates: number;
  setupMs: number;
}

export interface PeersHandle {
  peers: Peers;
  /**
   * The policy fetches (GET of the domain's mta-sts.txt) each domain of the population got since the last call, by
   * domain number; the counts start again from zero.
   */
  fetches(): Promise<number[]>;
  stop(): void;
}

/** Starts the bench's loopback peers (peers.ts) for `domains` domains in a process of their own. */
export function startPeers(domains: number, delay: number): Promise<PeersHandle> {
  const child = fork(
    fileURLToPath(new URL('./peers.js', import.meta.url)),
    [String(domains), String(delay)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const fetches = () =>
    new Promise<number[]>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        const counts = (m as { fetches?: number[] }).fetches;
        if (!counts) return;
        child.off('message', onMessage);
        resolve(counts);
      };
      child.on('message', onMessage);
      child.send('fetches', (err) => {
        if (!err) return;
        child.off('message', onMessage);
        reject(err);
      });
    });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ peers: m as Peers, fetches, stop: () => child.kill() }));
    child.once('exit', (code) => reject(new Error(`the peers exited (${code}) before they were ready`)));
  });
}
