import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { installFaultHandlers } from '../../src/faults.js';

/**
 * A process with the app's fault handlers and a listener whose paths fail the way a bug would: a rejected promise
 * nobody awaits, an exception thrown in a callback, an error after which the database is gone. Run by faults.test.ts.
 */
const server = createServer((req, res) => {
  const fail = (what: () => never) => setImmediate(what);
  if (req.url === '/reject')
    void Promise.reject(new TypeError("Cannot read properties of null (reading 'type')"));
  if (req.url === '/throw')
    fail(() => {
      throw new Error('thrown in a callback');
    });
  if (req.url === '/string')
    fail(() => {
      throw 'a bare string';
    });
  if (req.url === '/fatal')
    fail(() => {
      throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
    });
  res.end('ok');
});
installFaultHandlers(
  { error: (m) => process.stderr.write(`LOG ${m.split('\n')[0]}\n`) },
  (code) => {
    process.stderr.write(`STOP ${code}\n`);
    server.close();
    server.closeAllConnections();
    process.exitCode = code;
  },
  { maxPerMinute: Number(process.argv[2] ?? 20) },
);
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`));
