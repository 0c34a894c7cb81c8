import { connect, type Socket } from 'node:net';

/** How a raw connection ended: the status line the server sent (null: none), and how many body bytes got out. */
export interface Ending {
  status: number | null;
  sent: number;
}

export interface RawConnection {
  socket: Socket;
  /** Resolves when the connection has closed, whoever closed it. */
  ended: Promise<Ending>;
}

/**
 * Opens a connection from `from` (a 127.x address of its own, so that the server sees a separate client), writes
 * `head` and then, every `everyMs`, `drip` (bytes of a header or of a body) until the server closes the connection or
 * `total` drip bytes are out. The client never closes first: only the server's limits end it.
 */
export function drip(
  port: number,
  from: string,
  head: string,
  options: { drip: string; everyMs: number; total: number },
): RawConnection {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let received = '';
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (sent >= options.total || socket.destroyed) return clearInterval(timer);
      socket.write(options.drip);
      sent += options.drip.length;
    }, options.everyMs);
  });
  socket.on('data', (d: Buffer) => {
    received += d.toString('latin1');
  });
  const ended = new Promise<Ending>((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : null, sent });
    });
  });
  return { socket, ended };
}

/**
 * Sends `head` and then as much of a `bodyBytes` body as the server takes, in 64 KiB writes that wait for the socket
 * to drain, stopping at the first byte of an answer. Resolves with the status line and the bytes written.
 */
export function pushBody(port: number, head: string, bodyBytes: number): Promise<Ending> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunk = Buffer.alloc(65536, 'a');
    let received = '';
    let sent = 0;
    const pump = () => {
      while (sent < bodyBytes && received === '' && !socket.destroyed) {
        const n = Math.min(chunk.length, bodyBytes - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : null, sent });
    });
    // Once answered, the client is done; the server closes its end too.
    socket.on('data', () => socket.end());
  });
}
