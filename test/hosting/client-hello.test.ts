import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClientHelloReader,
  MAX_CLIENT_HELLO_BYTES,
  MAX_HELLO_RECORDS,
  readClientHello,
} from '../../src/hosting/client-hello.js';
import { clientHello, realClientHello } from './hello-bytes.js';

describe('readClientHello', () => {
  it("reads the server name and ALPN protocols of Node's own ClientHello", async () => {
    const hello = await realClientHello('MTA-STS.Example.com', ['acme-tls/1']);
    expect(readClientHello(hello)).toEqual({
      kind: 'hello',
      serverName: 'mta-sts.example.com',
      alpn: ['acme-tls/1'],
    });
  });

  it('asks for more bytes until the whole ClientHello is in, at every cut', async () => {
    const hello = await realClientHello('mta-sts.example.com');
    for (let cut = 0; cut < hello.length; cut += 7)
      expect(readClientHello(hello.subarray(0, cut)).kind).toBe('more');
    expect(readClientHello(hello)).toMatchObject({
      kind: 'hello',
      serverName: 'mta-sts.example.com',
      alpn: [],
    });
  });

  it('reassembles a ClientHello split over several records of 512 bytes or more', () => {
    const alpn = ['http/1.1', ...Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(200, 'x'))];
    const hello = clientHello({ sni: 'mta-sts.example.org', alpn, recordSize: 700 });
    expect(hello.length).toBeGreaterThan(3 * 705);
    expect(readClientHello(hello)).toEqual({ kind: 'hello', serverName: 'mta-sts.example.org', alpn });
  });

  it('refuses a ClientHello spread over small records or over more than 4 records', () => {
    const alpn = Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(200, 'x'));
    for (const recordSize of [1, 10, 511]) {
      const hello = clientHello({ sni: 'mta-sts.example.org', alpn, recordSize });
      // Refused once the first record is in: no more of it is waited for.
      expect(readClientHello(hello.subarray(0, 5 + recordSize)), `${recordSize}`).toMatchObject({
        kind: 'bad',
      });
    }
    expect(MAX_HELLO_RECORDS).toBe(4);
    const five = clientHello({ sni: 'mta-sts.example.org', alpn, recordSize: 512 });
    expect(five.length).toBeGreaterThan(4 * 517 + 5);
    expect(readClientHello(five.subarray(0, 4 * 517))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(five.subarray(0, 3 * 517))).toEqual({ kind: 'more' });
  });

  it('reads each byte once when fed chunk by chunk: a ClientHello dripped in 1-byte records is refused at once', () => {
    // The reviewer's attack: a 16 KiB ClientHello announced, then sent as 1-byte TLS records, 6 bytes on the wire each.
    const announced = Buffer.alloc(4 + 16380);
    announced[0] = 1;
    announced.writeUIntBE(16380, 1, 3);
    const wire = Buffer.concat([...announced].map((b) => Buffer.from([0x16, 3, 1, 0, 1, b])));
    const reader = new ClientHelloReader();
    let pushes = 0;
    let verdict = reader.push(Buffer.alloc(0));
    for (let at = 0; at < wire.length && verdict.kind === 'more'; at += 6) {
      verdict = reader.push(wire.subarray(at, at + 6));
      pushes++;
    }
    expect(verdict).toMatchObject({ kind: 'bad' });
    expect(pushes).toBe(1);
    // A real ClientHello fed a byte at a time is read whole, and what was received is handed back intact.
    const real = clientHello({ sni: 'mta-sts.example.com', alpn: ['acme-tls/1'] });
    const bytewise = new ClientHelloReader();
    let read = bytewise.push(real.subarray(0, 1));
    for (let at = 1; at < real.length; at++) read = bytewise.push(real.subarray(at, at + 1));
    expect(read).toEqual({ kind: 'hello', serverName: 'mta-sts.example.com', alpn: ['acme-tls/1'] });
    expect(bytewise.received().equals(real)).toBe(true);
  });

  it('has no server name without SNI, and refuses an IP literal, a huge or malformed name', () => {
    expect(readClientHello(clientHello({}))).toEqual({ kind: 'hello', serverName: null, alpn: [] });
    for (const sni of [
      '127.0.0.1',
      '::1',
      `${'a'.repeat(300)}.example`,
      'mta-sts..example.com',
      'x',
      'a b.com',
    ])
      expect(readClientHello(clientHello({ sni })).kind, sni).toBe('bad');
    const huge = clientHello({ sni: `${'a.'.repeat(20000)}com` });
    expect(readClientHello(huge)).toMatchObject({ kind: 'bad' });
  });

  it('refuses what is not TLS: HTTP, a wrong record type, a forbidden record length', () => {
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x17, 3, 3, 0, 5]))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x16, 3, 1, 0x48, 0x01]))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0]))).toMatchObject({ kind: 'bad' });
  });

  it('caps the bytes it waits for', () => {
    const records = clientHello({ sni: 'mta-sts.example.com', alpn: ['x'.repeat(200)], recordSize: 1 });
    const many = Buffer.concat(Array.from({ length: 200 }, () => records));
    expect(many.length).toBeGreaterThan(MAX_CLIENT_HELLO_BYTES);
    expect(readClientHello(many).kind).not.toBe('more');
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const withHeader = Buffer.concat([Buffer.from([0x16, 3, 1, 0, bytes.length & 0xff]), bytes]);
        expect(['more', 'bad', 'hello']).toContain(readClientHello(Buffer.from(bytes)).kind);
        expect(['more', 'bad', 'hello']).toContain(readClientHello(withHeader).kind);
      }),
      { numRuns: 2000 },
    );
  });
});
